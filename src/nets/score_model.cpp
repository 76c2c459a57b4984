#include "sbgm/nets/score_model.hpp"

#include <ATen/ATen.h>

#include "sbgm/nets/score_net.hpp"
#include "sbgm/sde/sde.hpp"

namespace sbgm {

NetworkScore::NetworkScore(std::shared_ptr<ScoreNet> net, std::shared_ptr<const SDE> sde, Parameterization output)
    : net_(std::move(net)), sde_(std::move(sde)), output_(output) {}

at::Tensor NetworkScore::score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  at::Tensor out = net_->forward(x, t, y);
  if (output_ == Parameterization::Noise) out = out / sde_->marginal_std(t, x).neg();
  return out;
}

}  // namespace sbgm
