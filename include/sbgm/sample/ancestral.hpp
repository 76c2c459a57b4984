#pragma once
// Ancestral sampling (Ho et al. 2020; score_sde's ancestral predictor): each step from t down to
// s < t draws from the Gaussian posterior q(x_s | x_t, x0) with x0 replaced by its Tweedie
// estimate x0 = (x_t + sigma_t^2 score) / m_t. Written for the transition kernel of any linear
// SDE, q(x_t | x_s) = N(a x_s, v I) with a = m_t / m_s and v = sigma_t^2 - a^2 sigma_s^2, it is
// DDPM's sampler for VP and the SMLD ancestral sampler for VE:
//   mean = (a sigma_s^2 / sigma_t^2) x_t + (m_s v / sigma_t^2) x0,   var = v sigma_s^2 / sigma_t^2.

#include "sbgm/sample/sampler.hpp"

namespace sbgm {

struct AncestralConfig {
  int64_t steps = 1000;
  bool noise_free_last_step = true;
};

// One ancestral step from t to s < t, in place on x (noise is a buffer for the Gaussian draw).
at::Tensor& ancestral_step(ScoreModel& model, const SDE& sde, at::Tensor& x, const at::Tensor& y,
                           const at::Tensor& t_buffer, double t, double s, at::Tensor& noise, bool add_noise,
                           at::Generator gen);

class AncestralSampler final : public Sampler {
 public:
  explicit AncestralSampler(AncestralConfig config);
  at::Tensor run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y, at::Generator gen,
                 const StepFn& on_step) override;

 private:
  AncestralConfig config_;
};

}  // namespace sbgm
