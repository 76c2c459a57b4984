#include "sbgm/nets/score_model.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "sbgm/nets/score_net.hpp"
#include "sbgm/sde/sde.hpp"

namespace sbgm {

ScoreModel::WithDivergence ScoreModel::score_and_divergence(const at::Tensor& x, const at::Tensor& t,
                                                            const at::Tensor& y) {
  at::AutoGradMode grad(true);
  const int64_t b = x.size(0), d = x.numel() / b;
  const at::Tensor xg = x.detach().requires_grad_(true);
  const at::Tensor s = score(xg, t, y).reshape({b, d});
  at::Tensor div = at::zeros({b}, x.options());
  for (int64_t i = 0; i < d; ++i) {
    const at::Tensor g = torch::autograd::grad({s.select(1, i).sum()}, {xg}, {}, /*retain_graph=*/i + 1 < d)[0];
    div.add_(g.reshape({b, d}).select(1, i));
  }
  return {s.detach().reshape(x.sizes()), div};
}

NetworkScore::NetworkScore(std::shared_ptr<ScoreNet> net, std::shared_ptr<const SDE> sde, Parameterization output)
    : net_(std::move(net)), sde_(std::move(sde)), output_(output) {}

at::Tensor NetworkScore::score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  at::Tensor out = net_->forward(x, t, y);
  if (output_ == Parameterization::Noise) out = out / sde_->marginal_std(t, x).neg();
  return out;
}

ScoreModel::WithDivergence NetworkScore::score_and_divergence(const at::Tensor& x, const at::Tensor& t,
                                                              const at::Tensor& y) {
  // Forward tangents cost the same matmuls as reverse passes but batch them: measured
  // (bench/divergence_bench.cpp, docs/benchmarks.md) 2-6% slower at D = 2, even at D = 8, and
  // 1.2-1.8x faster from D = 32 on.
  constexpr int64_t kForwardTangentsFromFeatures = 8;
  if (!net_->supports_divergence() || x.numel() / x.size(0) < kForwardTangentsFromFeatures)
    return ScoreModel::score_and_divergence(x, t, y);
  at::Tensor divergence;
  at::Tensor out = net_->forward_with_divergence(x, t, y, divergence);
  if (output_ == Parameterization::Noise) {
    const at::Tensor minus_inv_std = sde_->marginal_std(t, x).reciprocal().neg();
    out = out * minus_inv_std;
    divergence = divergence * minus_inv_std.reshape({-1});
  }
  return {out, divergence};
}

}  // namespace sbgm
