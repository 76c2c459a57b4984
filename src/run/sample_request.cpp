#include "sbgm/run/sample_request.hpp"

#include <algorithm>
#include <optional>

#include "sbgm/data/dataset.hpp"
#include "sbgm/data/gaussian_mixture.hpp"
#include "sbgm/data/toy.hpp"
#include "sbgm/run/likelihood_request.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/run_defaults.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {

SamplerOptions resolve_sampling(const Model& model, const SampleRequest& request) {
  const std::optional<SamplerKind> asked =
      !request.sampler.empty() ? std::optional(sampler_kind_from_string(request.sampler))
      : request.log_prob       ? std::optional(SamplerKind::ProbabilityFlow)
                               : std::nullopt;
  const SamplerOptions chosen = sampling_for(model.config, model.cond_dim, asked);
  SamplerOptions options = request.sampling;
  options.kind = chosen.kind;
  if (!request.steps_given) options.steps = chosen.steps;
  if (!options.lambda) options.lambda = chosen.lambda;
  return options;
}

void check_request(const Model& model, const SampleRequest& request) {
  using Kind = SampleRequest::Kind;
  if (request.n < 1) throw InvalidArgument("n must be at least 1, got " + std::to_string(request.n));
  if (request.steps_given && request.sampling.steps < 1)
    throw InvalidArgument("steps must be at least 1, got " + std::to_string(request.sampling.steps));
  // An unknown sampler, options it cannot take, or a sampler the model's path cannot take, fail
  // before any work.
  const SamplerOptions sampling = resolve_sampling(model, request);
  make_sampler(sampling);
  check_sampler_fits(sampling.kind, *model.sde);
  if (!follows_the_ode(sampling)) require_path_score(model, "the " + to_string(sampling.kind) + " sampler (with fresh noise)");
  if (is_multistep(sampling.kind)) check_step_schedule(*model.sde, sampling.multistep.schedule, sampling.steps, sampling.multistep.rho);
  if (request.kind == Kind::IIDPosterior && !model.sde->has_reverse_sde())
    throw InvalidArgument("an iid posterior composes scores, which on the " + to_string(model.sde->kind()) +
                          " path of a flow model have no velocity at t = T: not available for flow models");
  if (request.kind == Kind::IIDPosterior && !request.cond.defined())
    throw InvalidArgument("an iid posterior needs the observations (one condition row each)");
  if (request.kind == Kind::Modes) request.mode.validate();
  model.score_model(request.score);  // guidance or bfloat16 a model cannot take, and guidance < -1
  // Conditions of the wrong width, or given to an unconditional model, fail here; none for a
  // conditional model fails in the sampling below, before any work.
  if (request.cond.defined()) model_conditions(model, request.cond, request.cond.size(0));
  if (request.kind == Kind::IIDPosterior) iid_prior_source(model, request.iid);  // a prior must be had
  if (request.log_prob) {
    if (request.kind != Kind::Samples)
      throw InvalidArgument("log-densities come with samples only: an iid posterior's composed score and a mode have none");
    if (sampling.kind != SamplerKind::ProbabilityFlow)
      throw InvalidArgument("the samples' log-densities are those of the probability-flow ODE's draws: ask for the ode "
                            "sampler, not " + to_string(sampling.kind));
    if (request.score.precision != Precision::Float32)
      throw InvalidArgument("log-densities are computed in the model's own precision, not bfloat16");
    if (request.probes < 1) throw InvalidArgument("probes must be at least 1, got " + std::to_string(request.probes));
    support_draws_of(model, request.support_draws);
  } else if (request.support_draws) {
    throw InvalidArgument("{support_draws} go with the samples' log-densities ({log_prob})");
  }
}

namespace {

// Samples with their log-densities (SampleRequest::log_prob), shaped as the samples alone are.
void draw_with_density(const Model& model, const SampleRequest& request, const SamplerOptions& sampling,
                       const ProgressFn& progress, SampleReport& report) {
  const at::Tensor& cond = request.cond;
  const int64_t n = request.n;
  // No conditions for a conditional model: model_conditions says so.
  const at::Tensor y = cond.defined() || model.cond_dim > 0 ? conditions_of_samples(model, cond, n) : at::Tensor();
  const int64_t m = y.defined() ? y.size(0) / n : 1;
  LikelihoodConfig config;
  config.solver = sampling.solver;
  config.solver.steps = sampling.steps;  // a fixed-step solver's, as the ode sampler takes them
  config.divergence = request.divergence;
  config.probes = request.probes;
  config.chunk_size = likelihood_chunk_rows(model);
  const std::unique_ptr<ScoreModel> score = model.score_model(request.score);
  const ModelDraws d = sample_model_with_density(model, *score, config, m * n, y, request.seed, progress, &report.support,
                                                 request.comm, support_draws_of(model, request.support_draws));
  std::vector<int64_t> shape{n};
  if (cond.defined()) shape.insert(shape.begin(), m);
  report.log_prob = d.log_prob.reshape(shape);
  report.log_prob_std_error = d.std_error.reshape(shape);
  const at::Tensor finite = at::isfinite(d.log_prob);
  const at::Tensor values = d.log_prob.masked_select(finite);
  const int64_t rows = values.numel();
  if (rows > 0) {
    report.mean_log_prob = values.mean().item<double>();
    const double spread = rows > 1 ? values.std().item<double>() / std::sqrt(static_cast<double>(rows)) : 0.0;
    const double shared =
        d.shared_error.defined()
            ? shared_error_of_mean(d.shared_error.masked_select(finite), d.shared_group.masked_select(finite), rows)
            : 0.0;
    report.mean_log_prob_std_error = std::hypot(spread, shared);
  }
  shape.insert(shape.end(), model.data_shape.begin(), model.data_shape.end());
  report.samples = d.x.reshape(shape);
}

}  // namespace

SampleReport run_sample_request(const Model& model, const SampleRequest& request, const ProgressFn& progress) {
  check_request(model, request);
  const std::unique_ptr<Sampler> sampler = make_sampler(resolve_sampling(model, request));
  SampleReport report;
  switch (request.kind) {
    case SampleRequest::Kind::Modes:
      report.samples =
          model_mode(model, *sampler, request.cond, request.mode, request.seed, progress, request.score, request.comm);
      break;
    case SampleRequest::Kind::IIDPosterior:
      report.samples = sample_model_iid(model, *sampler, request.cond, request.n, request.iid, request.seed, progress,
                                        request.score, &report.support, request.comm);
      break;
    case SampleRequest::Kind::Samples:
      if (request.log_prob) {
        draw_with_density(model, request, resolve_sampling(model, request), progress, report);
        break;
      }
      report.samples = request.cond.defined() ? sample_model_given(model, *sampler, request.cond, request.n, request.seed,
                                                                   progress, request.score, &report.support, request.comm)
                                              : sample_model(model, *sampler, request.n, request.seed, progress,
                                                             request.score, &report.support, request.comm);
      break;
  }
  return report;
}

at::Tensor picture_reference(const Model& model, const SampleRequest& request) {
  const at::Generator gen = make_generator(c10::kCPU, 1);
  const at::Tensor& cond = request.cond;
  if (model.mixture && cond.defined()) {
    const at::Tensor rows = model_conditions(model, cond, cond.size(0)).cpu().repeat_interleave(request.n, 0);
    return model.mixture->sample(rows.size(0), gen, rows);
  }
  if (model.mixture) return model.mixture->sample(5000, gen);
  if (cond.defined()) return at::Tensor();
  const RunConfig& c = model.config;
  try {
    if (!c.data.dataset.empty()) return make_toy_dataset(c.data.dataset, std::min<int64_t>(c.data.size, 5000), c.train.seed);
    return load_data_file(c.data.file);
  } catch (const std::exception&) {
    return at::Tensor();  // the file has moved or changed: the samples are pictured alone
  }
}

}  // namespace sbgm
