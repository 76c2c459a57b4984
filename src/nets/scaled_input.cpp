#include "sbgm/nets/scaled_input.hpp"

#include <ATen/ATen.h>

#include "sbgm/sde/sde.hpp"

namespace sbgm {

ScaledInputNet::ScaledInputNet(std::shared_ptr<ScoreNet> net, std::shared_ptr<const SDE> sde)
    : WrappedScoreNet(std::move(net)), sde_(std::move(sde)) {}

at::Tensor ScaledInputNet::scale(const at::Tensor& t, const at::Tensor& x) const {
  const at::Tensor m = sde_->mean_coeff(t, x), sigma = sde_->marginal_std(t, x);
  return (m * m + sigma * sigma).rsqrt();
}

at::Tensor ScaledInputNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  return net_->forward(x * scale(t, x), t, y);
}

at::Tensor ScaledInputNet::forward_with_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                                   at::Tensor& divergence) {
  const at::Tensor c = scale(t, x);
  at::Tensor out = net_->forward_with_divergence(x * c, t, y, divergence);
  divergence = divergence * c.reshape({-1});
  return out;
}

at::Tensor ScaledInputNet::forward_for_backward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  return net_->forward_for_backward(x * scale(t, x), t, y);
}

}  // namespace sbgm
