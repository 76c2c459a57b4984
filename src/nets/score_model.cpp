#include "sbgm/nets/score_model.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <utility>

#include "sbgm/nets/score_net.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

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

NetworkScore::NetworkScore(std::shared_ptr<ScoreNet> net, std::shared_ptr<const SDE> sde, Parameterization output,
                           ConditionInput condition, double guidance, Precision precision)
    : net_(std::move(net)),
      sde_(std::move(sde)),
      output_(output),
      condition_(condition),
      guidance_(guidance),
      precision_(precision) {
  if (!(guidance >= -1) || !std::isfinite(guidance)) throw InvalidArgument("the guidance scale must be finite and >= -1");
  if (guidance != 0 && !condition.droppable)
    throw InvalidArgument("guidance needs a conditional model trained with condition dropout (train.cond_dropout > 0)");
}

namespace {

// Rows [0, b) of a doubled batch were evaluated with the condition, rows [b, 2b) without it.
at::Tensor guided(const at::Tensor& doubled, double w) {
  const int64_t b = doubled.size(0) / 2;
  return doubled.narrow(0, 0, b) * (1 + w) - doubled.narrow(0, b, b) * w;
}

}  // namespace

at::Tensor NetworkScore::score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  at::Tensor out;
  {
    const AutocastScope autocast(x.device().type(), precision_);
    if (guidance_ != 0) {
      const at::Tensor both = at::cat({condition_.present(y), condition_.absent(x.size(0), x.options())});
      out = net_->forward(at::cat({x, x}), at::cat({t, t}), both);
    } else {
      out = net_->forward(x, t, condition_.present(y));
    }
  }
  out = out.to(x.scalar_type());
  if (guidance_ != 0) out = guided(out, guidance_);
  if (output_ == Parameterization::Noise) out = out / sde_->marginal_std(t, x).neg();
  return out;
}

ScoreModel::WithDivergence NetworkScore::score_and_divergence(const at::Tensor& x, const at::Tensor& t,
                                                              const at::Tensor& y) {
  if (!net_->prefers_own_divergence(x)) {
    // The default differentiates score(): in full precision for the duration.
    struct FullPrecision {
      Precision& p;
      Precision saved;
      ~FullPrecision() { p = saved; }
    } full{precision_, std::exchange(precision_, Precision::Float32)};
    return ScoreModel::score_and_divergence(x, t, y);
  }
  at::Tensor divergence, out;
  if (guidance_ != 0) {
    const at::Tensor both = at::cat({condition_.present(y), condition_.absent(x.size(0), x.options())});
    out = guided(net_->forward_with_divergence(at::cat({x, x}), at::cat({t, t}), both, divergence), guidance_);
    divergence = guided(divergence, guidance_);
  } else {
    out = net_->forward_with_divergence(x, t, condition_.present(y), divergence);
  }
  if (output_ == Parameterization::Noise) {
    const at::Tensor minus_inv_std = sde_->marginal_std(t, x).reciprocal().neg();
    out = out * minus_inv_std;
    divergence = divergence * minus_inv_std.reshape({-1});
  }
  return {out, divergence};
}

}  // namespace sbgm
