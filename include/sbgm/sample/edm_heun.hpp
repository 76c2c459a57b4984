#pragma once
// Few-step deterministic sampling (Karras et al. 2022, "EDM", alg. 1 and 2): Heun's method on the
// probability-flow ODE written in EDM's variables, x_hat = x / m(t) at noise level
// sigma = sigma(t) / m(t), where it reads d x_hat / d sigma = -sigma grad log p(x_hat; sigma) and
// its curvature is small. The noise levels follow EDM's schedule
//   sigma_i = (sigma_max^(1/rho) + i / (N - 1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,
// between the SDE's levels at T and t_eps (N = steps levels), then one Euler step to sigma = 0
// (Tweedie's denoiser). Network evaluations: 2 N - 1. With churn > 0 it is EDM's stochastic
// sampler: before each step noise is added to raise sigma by a factor (1 + gamma).
// Works for every SDE: the model is evaluated at the time t(sigma) that SDE gives that level.

#include "sbgm/sample/sampler.hpp"

namespace sbgm {

struct EDMHeunConfig {
  int64_t steps = 18;   // noise levels N
  double rho = 7.0;     // schedule curvature (EDM: 7)
  double churn = 0.0;   // S_churn: total stochasticity (0: deterministic)
  double churn_min = 0.0, churn_max = 1e30;  // S_tmin, S_tmax: noise levels where churn applies
  double churn_noise = 1.0;                  // S_noise
};

class EDMHeunSampler final : public Sampler {
 public:
  explicit EDMHeunSampler(EDMHeunConfig config);
  // Network evaluations one sample costs.
  int64_t evaluations() const { return 2 * config_.steps - 1; }
  // The schedule sigma_0 > ... > sigma_{N-1} for an SDE, followed by 0.
  std::vector<double> noise_levels(const SDE& sde) const;
  at::Tensor run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y, at::Generator gen,
                 const StepFn& on_step) override;

 private:
  EDMHeunConfig config_;
};

}  // namespace sbgm
