#include "sbgm/run/diagnose.hpp"

#include <ATen/ATen.h>

#include <string>

#include "sbgm/run/model.hpp"
#include "sbgm/run/sample_request.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {

void DiagnoseConfig::validate() const {
  if (samples < 1) throw InvalidArgument("the number of posterior samples per simulation must be at least 1");
  if (hpd_samples < 0 || hpd_samples > samples)
    throw InvalidArgument("the HPD check's samples must be between 0 and the posterior samples per simulation");
  likelihood.validate();
}

CalibrationReport diagnose_model(const Model& model, Sampler& sampler, const at::Tensor& theta, const at::Tensor& x,
                                 const DiagnoseConfig& config, uint64_t seed, const ProgressFn& progress) {
  config.validate();
  if (model.cond_dim == 0)
    throw InvalidArgument("calibration is a property of a conditional model, and this one was trained without conditions");
  if (model.data_shape.size() != 1)
    throw InvalidArgument("calibration checks need parameter vectors, not samples of shape [" +
                          std::to_string(model.data_shape.size()) + " axes]");
  const int64_t dim = model.data_shape[0];
  if (theta.dim() != 2 || theta.size(1) != dim)
    throw InvalidArgument("the held-out parameters must have shape [S, " + std::to_string(dim) + "]");
  if (theta.size(0) < 2) throw InvalidArgument("calibration needs at least 2 held-out simulations");
  if (!at::isfinite(theta).all().item<bool>()) throw InvalidArgument("the held-out parameters contain NaN or Inf");
  const int64_t sims = theta.size(0);
  model_conditions(model, x, sims);  // the conditions' width, rows and values, before any work

  CalibrationReport report;
  report.simulations = sims;
  report.samples = config.samples;
  report.hpd_samples = config.hpd_samples;
  const at::Tensor truth = theta.to(at::kDouble);
  ScoreOptions score;
  score.set_orders = config.set_orders;
  const at::Tensor samples = sample_model_given(model, sampler, x, config.samples, seed, progress, score).to(at::kDouble);
  report.ranks = sbc_ranks(samples, truth);
  const at::Tensor u = rank_fractions(report.ranks, config.samples);
  for (int64_t d = 0; d < dim; ++d) {
    const at::Tensor ud = u.select(1, d);
    report.checks.push_back(calibration_check("sbc theta_" + std::to_string(d), ud, central_fractions(ud)));
  }
  if (config.hpd_samples > 0) {
    // One solve for the truths and the first K samples of every simulation, each with its x.
    const int64_t k = config.hpd_samples;
    const at::Tensor rows = at::cat({truth, samples.narrow(1, 0, k).reshape({sims * k, dim})});
    const at::Tensor conds = at::cat({x, x.repeat_interleave(k, 0)});
    const at::Tensor log_p = model_log_likelihood_unnormalised(model, rows, config.likelihood, seed, progress, conds,
                                                                     Communicator(), config.set_orders)
                                     .log_prob;
    const at::Tensor h = hpd_fractions(log_p.narrow(0, sims, sims * k).reshape({sims, k}), log_p.narrow(0, 0, sims));
    report.checks.push_back(calibration_check("hpd", h, h));
  }
  const at::Tensor f = tarp_fractions(samples, truth, make_generator(c10::kCPU, seed ^ 0x74617270ULL));
  report.checks.push_back(calibration_check("tarp", f, f));
  return report;
}

Diagnosis run_diagnose_request(const Model& model, const DiagnoseRequest& request, const ProgressFn& progress) {
  request.config.validate();
  if (model.cond_dim == 0)
    throw InvalidArgument("calibration is a property of a conditional model, and this one was trained without conditions");
  if (!request.theta.defined() || !request.x.defined() || request.theta.dim() < 1 || request.x.dim() < 1)
    throw InvalidArgument("calibration needs the held-out parameters and their observations, one row each");
  if (request.x.size(0) != request.theta.size(0))
    throw InvalidArgument("the held-out parameters have " + std::to_string(request.theta.size(0)) +
                          " rows but their observations " + std::to_string(request.x.size(0)));
  if (request.steps_given && request.sampling.steps < 1)
    throw InvalidArgument("steps must be at least 1, got " + std::to_string(request.sampling.steps));
  SampleRequest sampling;
  sampling.sampler = request.sampler;
  sampling.sampling = request.sampling;
  sampling.steps_given = request.steps_given;
  Diagnosis d;
  d.sampling = resolve_sampling(model, sampling);
  const std::unique_ptr<Sampler> sampler = make_sampler(d.sampling);
  check_sampler_fits(d.sampling.kind, *model.sde);
  d.report = diagnose_model(model, *sampler, request.theta.reshape({request.theta.size(0), -1}), request.x,
                            request.config, request.seed, progress);
  return d;
}

}  // namespace sbgm
