#include "sbgm/sample/edm_heun.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

EDMHeunSampler::EDMHeunSampler(EDMHeunConfig config) : config_(config) {
  if (config_.steps < 1) throw InvalidArgument("sampler steps must be at least 1");
  if (!(config_.rho > 0)) throw InvalidArgument("{rho} (EDM schedule) must be positive");
  if (!(config_.churn >= 0)) throw InvalidArgument("{churn} (EDM) must not be negative");
  if (!(config_.churn_noise >= 0)) throw InvalidArgument("EDM churn noise must not be negative");
}

std::vector<double> EDMHeunSampler::noise_levels(const SDE& sde) const {
  const double hi = std::pow(sde.noise_to_signal(sde.T()), 1 / config_.rho);
  const double lo = std::pow(sde.noise_to_signal(sde.t_eps()), 1 / config_.rho);
  const int64_t n = config_.steps;
  std::vector<double> sigmas;
  for (int64_t i = 0; i < n; ++i) sigmas.push_back(std::pow(n == 1 ? hi : hi + (lo - hi) * i / double(n - 1), config_.rho));
  sigmas.push_back(0.0);
  return sigmas;
}

at::Tensor EDMHeunSampler::run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y,
                               at::Generator gen, const StepFn& on_step) {
  check_sampler_fits(SamplerKind::EDMHeun, sde);
  at::NoGradGuard no_grad;
  const std::vector<double> sigmas = noise_levels(sde);
  const at::Tensor t_buffer = at::empty({x.size(0)}, x.options());
  // d x_hat / d sigma = -sigma m(t) score(m(t) x_hat, t) at the time t of level sigma.
  auto slope = [&](const at::Tensor& x_hat, double sigma) {
    const double t = sde.time_of_noise_to_signal(sigma), m = sde.mean_coeff(t);
    t_buffer.fill_(t);
    return model.score(x_hat * m, t_buffer, y).mul_(-sigma * m);
  };
  const double sigma_top = sigmas.front();
  at::Tensor x_hat = x / sde.mean_coeff(sde.T());
  const double gamma_max = std::min(config_.churn / config_.steps, std::sqrt(2.0) - 1);
  for (int64_t i = 0; i + 1 < static_cast<int64_t>(sigmas.size()); ++i) {
    double sigma = sigmas[i];
    const double next = sigmas[i + 1];
    if (config_.churn > 0 && sigma >= config_.churn_min && sigma <= config_.churn_max) {
      // Raise the noise level to sigma (1 + gamma) by adding fresh noise (never above the top level).
      const double raised = std::min(sigma * (1 + gamma_max), sigma_top);
      const double extra = std::sqrt(std::max(raised * raised - sigma * sigma, 0.0)) * config_.churn_noise;
      if (extra > 0) x_hat = x_hat + at::normal(0.0, 1.0, x_hat.sizes(), gen, x_hat.options()) * extra;
      sigma = raised;
    }
    const at::Tensor d = slope(x_hat, sigma);
    at::Tensor euler = x_hat + d * (next - sigma);
    if (next > 0) {
      const at::Tensor d_next = slope(euler, next);
      x_hat = x_hat + (d + d_next) * (0.5 * (next - sigma));
    } else {
      x_hat = std::move(euler);
    }
    if (on_step) {
      const double t = next > 0 ? sde.time_of_noise_to_signal(next) : sde.t_eps();
      on_step(t, next > 0 ? x_hat * sde.mean_coeff(t) : x_hat);
    }
  }
  return x_hat;
}

}  // namespace sbgm
