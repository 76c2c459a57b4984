#include "sbgm/sample/euler_maruyama.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "sbgm/nets/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

EulerMaruyama::EulerMaruyama(EulerMaruyamaConfig config) : config_(config) {
  if (config_.steps < 1) throw InvalidArgument("sampler steps must be at least 1");
}

at::Tensor EulerMaruyama::run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y, at::Generator gen,
                              const std::function<void()>& on_step) {
  at::NoGradGuard no_grad;
  const int64_t k = config_.steps;
  const double h = (sde.T() - sde.t_eps()) / static_cast<double>(k);
  at::Tensor t = at::empty({x.size(0)}, x.options());
  at::Tensor noise = at::empty_like(x);
  for (int64_t i = 0; i < k; ++i) {
    const double ti = sde.T() - i * h;
    t.fill_(ti);
    const at::Tensor score = model.score(x, t, y);
    // x <- x - h [f x - g^2 s] + g sqrt(h) z, all in place.
    const double g2 = sde.diffusion_sq(ti);
    x.mul_(1.0 - h * sde.drift_coeff(ti)).add_(score, h * g2);
    if (i + 1 < k || !config_.noise_free_last_step) {
      noise.normal_(0.0, 1.0, gen);
      x.add_(noise, std::sqrt(g2 * h));
    }
    if (on_step) on_step();
  }
  return x;
}

}  // namespace sbgm
