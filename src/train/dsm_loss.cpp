#include "sbgm/train/dsm_loss.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "sbgm/nets/score_net.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/optimal_transport.hpp"
#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<LossWeighting, 2> kWeightingNames{
    {{LossWeighting::Sigma2, "sigma2"}, {LossWeighting::Likelihood, "likelihood"}}};
}

std::string to_string(LossWeighting w) { return enum_to_string(w, kWeightingNames); }
LossWeighting loss_weighting_from_string(const std::string& s) {
  return enum_from_string(s, kWeightingNames, "loss weighting");
}

namespace {
constexpr EnumNames<TimeSampling, 3> kTimeSamplingNames{
    {{TimeSampling::Uniform, "uniform"}, {TimeSampling::LogSNR, "logsnr"}, {TimeSampling::LogNormal, "lognormal"}}};
}  // namespace
std::string to_string(TimeSampling s) { return enum_to_string(s, kTimeSamplingNames); }
TimeSampling time_sampling_from_string(const std::string& s) { return enum_from_string(s, kTimeSamplingNames, "time sampling"); }

namespace {

// The inverse CDF of log(sigma / m) ~ N(mean, std^2) truncated to [log r(t_eps), log r(T)] at u,
// mapped to t by the path's noise-to-signal ratio r (the linear path's r(T) is infinite: no upper
// truncation there).
at::Tensor log_normal_noise_times(const SDE& sde, const at::Tensor& u, const DSMConfig& config) {
  const double mean = config.log_noise_mean, sd = config.log_noise_std;
  const auto cdf = [&](double r) { return 0.5 * std::erfc(-(std::log(r) - mean) / (sd * std::sqrt(2.0))); };
  const double lo = cdf(sde.noise_to_signal(sde.t_eps())), hi = cdf(sde.noise_to_signal(sde.T()));
  const at::Tensor log_r = at::special_ndtri((u.to(at::kDouble).cpu() * (hi - lo) + lo).clamp(1e-300, 1 - 1e-16)) * sd + mean;
  at::Tensor t = at::empty_like(log_r);
  const double* lp = log_r.data_ptr<double>();
  double* tp = t.data_ptr<double>();
  for (int64_t i = 0; i < t.numel(); ++i) tp[i] = std::clamp(sde.time_of_noise_to_signal(std::exp(lp[i])), sde.t_eps(), sde.T());
  return t.to(u.options());
}

}  // namespace

void check_loss_config(const DSMConfig& config, Parameterization output, bool conditional) {
  const bool flow = output == Parameterization::Velocity;
  if (flow && config.time_sampling == TimeSampling::LogSNR)
    throw InvalidArgument("train.time_sampling = " + to_string(config.time_sampling) +
                          " draws t by the log-SNR, which the linear path of flow matching has infinite at t = 1");
  if (flow && config.weighting != LossWeighting::Sigma2)
    throw InvalidArgument("train.weighting = " + to_string(config.weighting) +
                          " weights the score-matching loss; flow matching (model.objective = flow) is unweighted");
  if (config.time_sampling == TimeSampling::LogNormal) {
    if (!(config.log_noise_std > 0 && std::isfinite(config.log_noise_std)))
      throw InvalidArgument("train.log_noise_std must be positive and finite, got " + std::to_string(config.log_noise_std));
    if (!std::isfinite(config.log_noise_mean)) throw InvalidArgument("train.log_noise_mean must be finite");
  }
  if (config.ot_coupling && !flow)
    throw InvalidArgument("train.ot_coupling pairs data and noise for flow matching (model.objective = flow); score "
                          "matching needs independent noise");
  if (config.ot_coupling && conditional)
    throw InvalidArgument("train.ot_coupling would pair each row's noise with rows of other conditions: it takes "
                          "unconditional data only");
}

ProposedTimes times_from_uniform(const SDE& sde, const at::Tensor& u, const DSMConfig& config) {
  if (config.time_sampling == TimeSampling::Uniform) return {u * (sde.T() - sde.t_eps()) + sde.t_eps(), at::Tensor()};
  if (config.time_sampling == TimeSampling::LogNormal) return {log_normal_noise_times(sde, u, config), at::Tensor()};
  // The uniform density 1 / (T - t_eps) over the proposal's, 1 / |dt/du|.
  const LogSNRTimes times = log_snr_times(sde, u);
  return {times.t, times.dt_du / (sde.T() - sde.t_eps())};
}

namespace {

// What both the autograd and the manual path need: x_t, sigma [B, 1, ...], the per-sample
// weight lambda / sigma^2 ([B], undefined for the sigma^2 weighting where it is 1) and, for a
// velocity network, the target m' x0 + sigma' z.
struct Perturbed {
  at::Tensor xt, sigma, weight, velocity;
};

Perturbed perturb(const SDE& sde, Parameterization output, LossWeighting weighting, const at::Tensor& x0,
                  const at::Tensor& t, const at::Tensor& z, const at::Tensor& importance) {
  Perturbed p;
  p.sigma = sde.marginal_std(t, x0);
  p.xt = at::addcmul(sde.mean_coeff(t, x0) * x0, p.sigma, z);
  if (output == Parameterization::Velocity) {
    p.velocity = at::addcmul(sde.mean_coeff_rate(t, x0) * x0, sde.marginal_std_rate(t, x0), z);
    p.weight = importance;
    return p;
  }
  if (weighting == LossWeighting::Likelihood) {
    const at::Tensor t_flat = t.reshape({-1});
    p.weight = sde.diffusion_sq(t_flat, t_flat) / p.sigma.reshape({-1}).pow(2);
  }
  if (importance.defined()) p.weight = p.weight.defined() ? p.weight * importance : importance;
  return p;
}

// sigma s + z, written so that neither parameterisation divides by sigma; for a velocity network
// the flow-matching residual v - (m' x0 + sigma' z).
at::Tensor residual(Parameterization output, const Perturbed& p, const at::Tensor& z, const at::Tensor& out) {
  switch (output) {
    case Parameterization::Score: return at::addcmul(z, p.sigma, out);
    case Parameterization::Noise: return z - out;
    case Parameterization::Velocity: return out - p.velocity;
  }
  return z - out;
}

at::Tensor weighted_mean(const Perturbed& p, const at::Tensor& r) {
  at::Tensor per_sample = r.pow(2).reshape({r.size(0), -1}).sum(1);
  if (p.weight.defined()) per_sample = per_sample * p.weight;
  return per_sample.mean();
}

}  // namespace

at::Tensor dsm_loss(ScoreNet& net, Parameterization output, const SDE& sde, LossWeighting weighting,
                    const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t, const at::Tensor& z,
                    const at::Tensor& importance) {
  const Perturbed p = perturb(sde, output, weighting, x0, t, z, importance);
  // In x0's precision whatever the network's (bfloat16 under autocast).
  const at::Tensor out = net.forward(p.xt, t, y).to(x0.scalar_type());
  return weighted_mean(p, residual(output, p, z, out));
}

DSMManual dsm_loss_manual(ScoreNet& net, Parameterization output, const SDE& sde, LossWeighting weighting,
                          const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t, const at::Tensor& z,
                          const at::Tensor& importance) {
  at::NoGradGuard no_grad;
  const Perturbed p = perturb(sde, output, weighting, x0, t, z, importance);
  const at::Tensor r = residual(output, p, z, net.forward_for_backward(p.xt, t, y));
  // d/d out of mean_b w_b |r_b|^2 is 2 w_b r_b / B times d r / d out (sigma, -1 for noise, 1 for velocity).
  const double two_over_b = 2.0 / static_cast<double>(x0.size(0));
  at::Tensor scale = output == Parameterization::Score
                         ? p.sigma * two_over_b
                         : at::full({}, output == Parameterization::Noise ? -two_over_b : two_over_b, x0.options());
  if (p.weight.defined()) scale = scale * p.weight.reshape(p.sigma.sizes());
  return {weighted_mean(p, r), r * scale};
}

at::Tensor dsm_loss(ScoreNet& net, Parameterization output, const SDE& sde, const DSMConfig& config,
                    const at::Tensor& x0, const at::Tensor& y, at::Generator gen) {
  at::Tensor u = at::rand({x0.size(0)}, gen, x0.options());
  if (config.stratified_time) u = (at::arange(x0.size(0), x0.options()) + u) / static_cast<double>(x0.size(0));
  const ProposedTimes times = times_from_uniform(sde, u, config);
  at::Tensor z = at::normal(0.0, 1.0, x0.sizes(), gen, x0.options());
  if (config.ot_coupling) z = ot_paired_noise(x0, z);
  return dsm_loss(net, output, sde, config.weighting, x0, y, times.t, z, times.importance);
}

}  // namespace sbgm
