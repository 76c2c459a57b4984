#pragma once
// Predictor-corrector sampling (Song et al. 2021, alg. 1-3): a predictor step on the reverse SDE
// (Euler-Maruyama, or the ancestral / reverse-diffusion step of ancestral.hpp), then `corrector_steps` Langevin MCMC steps at the new time whose step size
// is set by a signal-to-noise ratio: eps = 2 alpha (snr |z| / |s|)^2, x <- x + eps s + sqrt(2 eps) z
// (alpha = 1 - beta(t) h for VP-type SDEs, 1 for VE).

#include <string>

#include "sbgm/sample/sampler.hpp"

namespace sbgm {

enum class PredictorKind { EulerMaruyama, Ancestral };
std::string to_string(PredictorKind kind);
PredictorKind predictor_kind_from_string(const std::string& name);

struct PredictorCorrectorConfig {
  int64_t steps = 1000;
  PredictorKind predictor = PredictorKind::EulerMaruyama;
  int64_t corrector_steps = 1;
  double snr = 0.16;
  bool noise_free_last_step = true;
};

class PredictorCorrector final : public Sampler {
 public:
  explicit PredictorCorrector(PredictorCorrectorConfig config);
  at::Tensor run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y, at::Generator gen,
                 const StepFn& on_step) override;

 private:
  PredictorCorrectorConfig config_;
};

}  // namespace sbgm
