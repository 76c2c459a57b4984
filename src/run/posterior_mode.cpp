#include "sbgm/run/posterior_mode.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "sbgm/run/model.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

// The ascent follows the score of the density smoothed at a noise level (EDM's sigma, in the
// model's standardised units) that falls geometrically from kStartNoise to kEndNoise over the
// iterations. Not the score at t_eps: a trained network's output there is divided by sigma(t_eps)
// (0.01 for VE) and whatever it did not learn at the smallest levels dominates — a linear-Gaussian
// posterior's model whose samples and log p were exact sent every ascent 7 posterior standard
// deviations away. At 5% of the prior's scale the smoothing moves a mode by a negligible amount
// for posteriors wider than that, and the end points are ranked by their exact log p below.
constexpr double kStartNoise = 0.5, kEndNoise = 0.05;

// The time at which the SDE's noise-to-signal ratio is `level` (t_eps or T when out of range).
double time_at_noise(const SDE& sde, double level) {
  double lo = sde.t_eps(), hi = sde.T();
  if (sde.noise_to_signal(lo) >= level) return lo;
  if (sde.noise_to_signal(hi) <= level) return hi;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (sde.noise_to_signal(mid) < level ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace

void ModeConfig::validate() const {
  if (starts < 1) throw InvalidArgument("the mode search needs at least one starting sample");
  if (iterations < 0) throw InvalidArgument("the mode search's iterations must not be negative");
  if (!(lr > 0) || !std::isfinite(lr)) throw InvalidArgument("the mode search's step size must be positive");
  likelihood.validate();
}

at::Tensor model_mode(const Model& model, Sampler& sampler, const at::Tensor& cond, const ModeConfig& config,
                      uint64_t seed, const ProgressFn& progress, const ScoreOptions& options, const Communicator& comm) {
  config.validate();
  const int64_t k = config.starts;
  const at::Tensor starts = cond.defined()
                                ? sample_model_given(model, sampler, cond, k, seed, progress, options, nullptr, comm)
                                : sample_model(model, sampler, k, seed, progress, options, nullptr, comm).unsqueeze(0);
  const int64_t m = starts.size(0);
  std::vector<int64_t> rows{m * k};
  rows.insert(rows.end(), model.data_shape.begin(), model.data_shape.end());
  const at::Tensor y = cond.defined() ? model_conditions(model, cond, m).repeat_interleave(k, 0) : at::Tensor();

  // Adam on the samples in the model's space, where one step size suits every feature. The mode
  // sought is the data's: with bounds, the gradient of the map's log-Jacobian joins the score.
  auto score = model.score_model(options);
  auto jacobian_gradient = [&](const at::Tensor& z) {
    at::AutoGradMode grad_mode(true);
    const at::Tensor leaf = z.detach().requires_grad_(true);
    // log p(x) = log p(z) + log |dz/dx| at x(z), so the mode's gradient in z gains that term's.
    const at::Tensor log_det = model.log_abs_det_jacobian(model.to_data_space(leaf)).sum();
    return torch::autograd::grad({log_det}, {leaf})[0].detach().to(z.dtype());
  };
  at::NoGradGuard no_grad;
  at::Tensor x = model.to_model_space(starts.reshape(rows).to(model.dtype)).to(model.device);
  at::Tensor first = at::zeros_like(x), second = at::zeros_like(x);
  constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8, kFinalFraction = 1e-3;
  for (int64_t i = 0; i < config.iterations; ++i) {
    const double fraction = config.iterations > 1 ? static_cast<double>(i) / static_cast<double>(config.iterations - 1) : 1.0;
    const double level = kStartNoise * std::pow(kEndNoise / kStartNoise, fraction);
    const double ti = time_at_noise(*model.sde, level), mean = model.sde->mean_coeff(ti);
    // d/dx log p_t(m x) = m s(m x, t): the smoothed density of the data, not of the scaled x_t.
    at::Tensor g = score->score(x * mean, at::full({x.size(0)}, ti, x.options()), y) * mean;
    if (!model.bounds.none()) g = g + jacobian_gradient(x);
    first.mul_(kBeta1).add_(g, 1 - kBeta1);
    second.mul_(kBeta2).addcmul_(g, g, 1 - kBeta2);
    const double cosine = 0.5 * (1 + std::cos(M_PI * static_cast<double>(i) / static_cast<double>(config.iterations)));
    const double lr = config.lr * (kFinalFraction + (1 - kFinalFraction) * cosine);
    const double c1 = 1 - std::pow(kBeta1, static_cast<double>(i + 1)), c2 = 1 - std::pow(kBeta2, static_cast<double>(i + 1));
    x.addcdiv_(first / c1, (second / c2).sqrt_().add_(kEps), lr);
    // A model kept within its support by rejection has no density outside: the ascent is projected
    // back onto the box.
    if (!model.support.none()) x = model.to_model_space(model.support.clamp(model.to_data_space(x))).to(x.device());
    if (progress) progress(i + 1, config.iterations);
  }
  const at::Tensor ends = model.to_data_space(x).cpu();
  if (!at::isfinite(ends).all().item<bool>()) throw InvalidArgument("the mode search diverged (the score is not finite)");
  const at::Tensor conds =
      cond.defined() ? (cond.dim() <= 1 ? cond.reshape({1, -1}) : cond.reshape({m, -1})).repeat_interleave(k, 0) : at::Tensor();
  const at::Tensor log_p =
      model_log_likelihood_unnormalised(model, ends, config.likelihood, seed, progress, conds, comm, options.set_orders)
          .log_prob;
  const at::Tensor best = log_p.reshape({m, k}).argmax(1) + at::arange(m, at::kLong) * k;
  return ends.index_select(0, best);
}

}  // namespace sbgm
