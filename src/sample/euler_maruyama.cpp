#include "sbgm/sample/euler_maruyama.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

EulerMaruyama::EulerMaruyama(EulerMaruyamaConfig config) : config_(config) {
  if (config_.steps < 1) throw InvalidArgument("sampler steps must be at least 1");
  if (!(config_.lambda >= 0 && config_.lambda <= 1)) throw InvalidArgument("{lambda} must lie in [0, 1]");
}

at::Tensor& reverse_euler_maruyama_step(ScoreModel& model, const SDE& sde, at::Tensor& x, const at::Tensor& y,
                                        const at::Tensor& t_buffer, double t, double h, at::Tensor& noise,
                                        bool add_noise, at::Generator gen, double lambda) {
  t_buffer.fill_(t);
  const at::Tensor score = model.score(x, t_buffer, y);
  // x <- x - h [f x - (1 - lambda/2) g^2 s] + sqrt((1 - lambda) h) g z, all in place.
  const double g2 = sde.diffusion_sq(t);
  x.mul_(1.0 - h * sde.drift_coeff(t)).add_(score, h * g2 * (1 - lambda / 2));
  if (add_noise && lambda < 1) {
    noise.normal_(0.0, 1.0, gen);
    x.add_(noise, std::sqrt(g2 * h * (1 - lambda)));
  }
  return x;
}

at::Tensor EulerMaruyama::run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y, at::Generator gen,
                              const StepFn& on_step) {
  check_sampler_fits(SamplerKind::EulerMaruyama, sde);
  at::NoGradGuard no_grad;
  const at::Tensor t_buffer = at::empty({x.size(0)}, x.options());
  at::Tensor noise = at::empty_like(x);
  for_each_reverse_step(sde, config_.steps, [&](double t, double s, bool last) {
    reverse_euler_maruyama_step(model, sde, x, y, t_buffer, t, t - s, noise, !last || !config_.noise_free_last_step, gen,
                                config_.lambda);
    if (on_step) on_step(s, x);
  });
  return x;
}

}  // namespace sbgm
