#include "sbgm/sample/ancestral.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

AncestralSampler::AncestralSampler(AncestralConfig config) : config_(config) {
  if (config_.steps < 1) throw InvalidArgument("sampler steps must be at least 1");
}

at::Tensor& ancestral_step(ScoreModel& model, const SDE& sde, at::Tensor& x, const at::Tensor& y,
                           const at::Tensor& t_buffer, double t, double s, at::Tensor& noise, bool add_noise,
                           at::Generator gen) {
  t_buffer.fill_(t);
  const at::Tensor score = model.score(x, t_buffer, y);
  const double m_t = sde.mean_coeff(t), m_s = sde.mean_coeff(s);
  const double var_t = std::pow(sde.marginal_std(t), 2), var_s = std::pow(sde.marginal_std(s), 2);
  const double a = m_t / m_s;
  const double v = std::max(var_t - a * a * var_s, 0.0);
  // mean = c_x x_t + c_0 x0 with x0 = (x_t + var_t score) / m_t, folded into x and score.
  const double c_x = a * var_s / var_t, c_0 = m_s * v / var_t;
  x.mul_(c_x + c_0 / m_t).add_(score, c_0 * var_t / m_t);
  if (add_noise) {
    noise.normal_(0.0, 1.0, gen);
    x.add_(noise, std::sqrt(v * var_s / var_t));
  }
  return x;
}

at::Tensor AncestralSampler::run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y,
                                 at::Generator gen, const StepFn& on_step) {
  check_sampler_fits(SamplerKind::Ancestral, sde);
  at::NoGradGuard no_grad;
  const at::Tensor t_buffer = at::empty({x.size(0)}, x.options());
  at::Tensor noise = at::empty_like(x);
  for_each_reverse_step(sde, config_.steps, [&](double t, double s, bool last) {
    ancestral_step(model, sde, x, y, t_buffer, t, s, noise, !last || !config_.noise_free_last_step, gen);
    if (on_step) on_step(s, x);
  });
  return x;
}

}  // namespace sbgm
