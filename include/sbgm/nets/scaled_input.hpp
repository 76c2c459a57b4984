#pragma once
// A network that sees x_t at unit variance: x_t / sqrt(m(t)^2 + sigma(t)^2), the variance of x_t
// for data of unit variance (standardised data; EDM's c_in, Karras et al. 2022). On the VE path
// x_t's spread grows from the data's to sigma_max (50 by default): unscaled, an MLP's first layer
// sees inputs fifty times larger at t = T than near t = 0, and must learn the score at every
// scale. On VP-type paths m^2 + sigma^2 = 1 and the scale is one (model.input_scaling).

#include <ATen/core/Tensor.h>

#include <memory>

#include "sbgm/nets/score_net.hpp"

namespace sbgm {

class SDE;

class ScaledInputNet final : public WrappedScoreNet {
 public:
  ScaledInputNet(std::shared_ptr<ScoreNet> net, std::shared_ptr<const SDE> sde);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  // d out_k / d x_k = c * (d net_k / d u_k)(c x): the network's divergence times the scale.
  at::Tensor forward_with_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                     at::Tensor& divergence) override;
  at::Tensor forward_for_backward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;

 private:
  at::Tensor scale(const at::Tensor& t, const at::Tensor& x) const;  // [B, 1, ...]

  std::shared_ptr<const SDE> sde_;
};

}  // namespace sbgm
