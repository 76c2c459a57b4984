#pragma once
// Euler-Maruyama on the reverse-time SDE dx = [f - g^2 s] dt + g dw (dt < 0), on a uniform time
// grid from T to t_eps. The last step adds no noise (it would only blur the result by g sqrt(dt)).
//
// With lambda in (0, 1] it integrates instead the plug-in reverse SDE of Huang, Lim & Courville
// (2021) dx = [f - (1 - lambda/2) g^2 s] dt + sqrt(1 - lambda) g dw, which has the same marginals
// for every lambda: lambda = 0 is the reverse SDE above, lambda = 1 the probability-flow ODE
// (by Euler's method).

#include "sbgm/sample/sampler.hpp"

namespace sbgm {

struct EulerMaruyamaConfig {
  int64_t steps = 1000;
  bool noise_free_last_step = true;
  double lambda = 0.0;  // the plug-in reverse SDE's lambda, in [0, 1]
};

// One Euler-Maruyama step of the reverse SDE (of the plug-in family's lambda) from t to t - h, in
// place on x; noise is the buffer for the Gaussian draw (no noise when add_noise is false).
// Returns x.
at::Tensor& reverse_euler_maruyama_step(ScoreModel& model, const SDE& sde, at::Tensor& x, const at::Tensor& y,
                                        const at::Tensor& t_buffer, double t, double h, at::Tensor& noise,
                                        bool add_noise, at::Generator gen, double lambda = 0.0);

class EulerMaruyama final : public Sampler {
 public:
  explicit EulerMaruyama(EulerMaruyamaConfig config);
  at::Tensor run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y, at::Generator gen,
                 const StepFn& on_step) override;

 private:
  EulerMaruyamaConfig config_;
};

}  // namespace sbgm
