#pragma once
// Euler-Maruyama on the reverse-time SDE dx = [f - g^2 s] dt + g dw (dt < 0), on a uniform time
// grid from T to t_eps. The last step adds no noise (it would only blur the result by g sqrt(dt)).

#include "sbgm/sample/sampler.hpp"

namespace sbgm {

struct EulerMaruyamaConfig {
  int64_t steps = 1000;
  bool noise_free_last_step = true;
};

class EulerMaruyama final : public Sampler {
 public:
  explicit EulerMaruyama(EulerMaruyamaConfig config);
  int64_t steps() const override { return config_.steps; }
  at::Tensor run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y, at::Generator gen,
                 const std::function<void()>& on_step) override;

 private:
  EulerMaruyamaConfig config_;
};

}  // namespace sbgm
