#include "sbgm/sample/predictor_corrector.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "sbgm/sample/ancestral.hpp"
#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<PredictorKind, 2> kPredictorNames{
    {{PredictorKind::EulerMaruyama, "em"}, {PredictorKind::Ancestral, "ancestral"}}};
}

std::string to_string(PredictorKind kind) { return enum_to_string(kind, kPredictorNames); }
PredictorKind predictor_kind_from_string(const std::string& name) {
  return enum_from_string(name, kPredictorNames, "predictor");
}

PredictorCorrector::PredictorCorrector(PredictorCorrectorConfig config) : config_(config) {
  if (config_.steps < 1) throw InvalidArgument("sampler steps must be at least 1");
  if (config_.corrector_steps < 0) throw InvalidArgument("corrector steps must not be negative");
  if (!(config_.snr > 0)) throw InvalidArgument("{snr} must be positive");
}

at::Tensor PredictorCorrector::run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y,
                                   at::Generator gen, const StepFn& on_step) {
  check_sampler_fits(SamplerKind::PredictorCorrector, sde);
  at::NoGradGuard no_grad;
  const int64_t b = x.size(0);
  const at::Tensor t = at::empty({b}, x.options());
  at::Tensor noise = at::empty_like(x);
  for_each_reverse_step(sde, config_.steps, [&](double ti, double next, bool last) {
    const double h = ti - next;
    const bool add_noise = !last || !config_.noise_free_last_step;
    if (config_.predictor == PredictorKind::Ancestral) ancestral_step(model, sde, x, y, t, ti, next, noise, add_noise, gen);
    else reverse_euler_maruyama_step(model, sde, x, y, t, ti, h, noise, add_noise, gen);
    if (!last) {
      // Langevin correction towards p_next. alpha: the VP discretisation's 1 - beta h.
      const double alpha = sde.drift_coeff(next) != 0 ? 1.0 - sde.diffusion_sq(next) * h : 1.0;
      t.fill_(next);
      for (int64_t j = 0; j < config_.corrector_steps; ++j) {
        const at::Tensor score = model.score(x, t, y);
        noise.normal_(0.0, 1.0, gen);
        const double score_norm = score.reshape({b, -1}).norm(2, 1).mean().item<double>();
        const double noise_norm = noise.reshape({b, -1}).norm(2, 1).mean().item<double>();
        const double ratio = config_.snr * noise_norm / std::max(score_norm, 1e-12);
        const double eps = 2.0 * std::max(alpha, 0.0) * ratio * ratio;
        x.add_(score, eps).add_(noise, std::sqrt(2.0 * eps));
      }
    }
    if (on_step) on_step(next, x);
  });
  return x;
}

}  // namespace sbgm
