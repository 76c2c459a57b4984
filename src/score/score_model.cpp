#include "sbgm/score/score_model.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <utility>
#include <vector>

#include "sbgm/nets/score_net.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

ValueWithDivergence autograd_divergence(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& x) {
  at::AutoGradMode grad(true);
  const int64_t b = x.size(0), d = x.numel() / b;
  const at::Tensor xg = x.detach().requires_grad_(true);
  const at::Tensor value = fn(xg).reshape({b, d});
  at::Tensor div = at::zeros({b}, x.options());
  for (int64_t i = 0; i < d; ++i) {
    const at::Tensor g = torch::autograd::grad({value.select(1, i).sum()}, {xg}, {}, /*retain_graph=*/i + 1 < d)[0];
    div.add_(g.reshape({b, d}).select(1, i));
  }
  return {value.detach().reshape(x.sizes()), div};
}

ValueWithDivergence hutchinson_divergence(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& x,
                                          const at::Tensor& probes) {
  at::AutoGradMode grad(true);
  const int64_t b = x.size(0), d = x.numel() / b, p = probes.size(0);
  const at::Tensor xg = x.detach().requires_grad_(true);
  const at::Tensor value = fn(xg).reshape({b, d});
  std::vector<at::Tensor> estimates;
  for (int64_t k = 0; k < p; ++k) {
    const at::Tensor g = torch::autograd::grad({(value * probes[k]).sum()}, {xg}, {}, /*retain_graph=*/k + 1 < p)[0];
    estimates.push_back((g.reshape({b, d}) * probes[k]).sum(1, /*keepdim=*/true));
  }
  return {value.detach().reshape(x.sizes()), at::cat(estimates, 1)};
}

ScoreModel::WithDivergence ScoreModel::score_and_divergence(const at::Tensor& x, const at::Tensor& t,
                                                            const at::Tensor& y) {
  ValueWithDivergence s = autograd_divergence([&](const at::Tensor& xg) { return score(xg, t, y); }, x);
  return {s.value, s.divergence};
}

at::Tensor ScoreModel::velocity(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y, const SDE& sde) {
  return sde.probability_flow_drift(x, score(x, t, y), t);
}

ScoreModel::VelocityWithDivergence ScoreModel::velocity_and_divergence(const at::Tensor& x, const at::Tensor& t,
                                                                       const at::Tensor& y, const SDE& sde) {
  const WithDivergence s = score_and_divergence(x, t, y);
  const double d = static_cast<double>(x.numel() / x.size(0));
  at::Tensor div = s.divergence.mul(sde.diffusion_sq(t, s.divergence) * -0.5).add_(sde.drift_coeff(t, s.divergence) * d);
  return {sde.probability_flow_drift(x, s.score, t), div};
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

void NetworkScore::forget_kept_state() { net_->forget_kept_state(); }

namespace {

// Rows [0, b) of a doubled batch were evaluated with the condition, rows [b, 2b) without it.
at::Tensor guided(const at::Tensor& doubled, double w) {
  const int64_t b = doubled.size(0) / 2;
  return doubled.narrow(0, 0, b) * (1 + w) - doubled.narrow(0, b, b) * w;
}

}  // namespace

at::Tensor NetworkScore::output(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
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
  return guidance_ != 0 ? guided(out, guidance_) : out;
}

ValueWithDivergence NetworkScore::output_and_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  // In x's own precision for the duration (the header).
  struct FullPrecision {
    Precision& p;
    Precision saved;
    ~FullPrecision() { p = saved; }
  } full{precision_, std::exchange(precision_, Precision::Float32)};
  if (!net_->prefers_own_divergence(x))
    return autograd_divergence([&](const at::Tensor& xg) { return output(xg, t, y); }, x);
  at::Tensor divergence, out;
  if (guidance_ != 0) {
    const at::Tensor both = at::cat({condition_.present(y), condition_.absent(x.size(0), x.options())});
    out = guided(net_->forward_with_divergence(at::cat({x, x}), at::cat({t, t}), both, divergence), guidance_);
    divergence = guided(divergence, guidance_);
  } else {
    out = net_->forward_with_divergence(x, t, condition_.present(y), divergence);
  }
  return {out, divergence};
}

namespace {

// The score from a velocity v: with x = m x0 + sigma z and v = m' x0 + sigma' z (in expectation
// given x), E[z | x] = (m v - m' x) / (m sigma' - m' sigma), and s = -E[z | x] / sigma. The
// denominator is m^2 d(sigma/m)/dt > 0, finite wherever m and sigma are (also at m = 0).
struct VelocityToScore {
  at::Tensor scale, offset;  // s = scale * v + offset * x, both [B, 1, ...]
};
VelocityToScore velocity_to_score(const SDE& sde, const at::Tensor& t, const at::Tensor& x) {
  const at::Tensor m = sde.mean_coeff(t, x), s = sde.marginal_std(t, x);
  const at::Tensor dm = sde.mean_coeff_rate(t, x), ds = sde.marginal_std_rate(t, x);
  const at::Tensor denominator = (m * ds - dm * s) * s;
  return {-m / denominator, dm / denominator};
}

}  // namespace

at::Tensor NetworkScore::score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const at::Tensor out = output(x, t, y);
  switch (output_) {
    case Parameterization::Score: return out;
    case Parameterization::Noise: return out / sde_->marginal_std(t, x).neg();
    case Parameterization::Velocity: {
      const VelocityToScore k = velocity_to_score(*sde_, t, x);
      return out * k.scale + x * k.offset;
    }
  }
  return out;
}

ScoreModel::WithDivergence NetworkScore::score_and_divergence(const at::Tensor& x, const at::Tensor& t,
                                                              const at::Tensor& y) {
  const ValueWithDivergence out = output_and_divergence(x, t, y);
  switch (output_) {
    case Parameterization::Score: return {out.value, out.divergence};
    case Parameterization::Noise: {
      const at::Tensor minus_inv_std = sde_->marginal_std(t, x).reciprocal().neg();
      return {out.value * minus_inv_std, out.divergence * minus_inv_std.reshape({-1})};
    }
    case Parameterization::Velocity: {
      const VelocityToScore k = velocity_to_score(*sde_, t, x);
      const double d = static_cast<double>(x.numel() / x.size(0));
      return {out.value * k.scale + x * k.offset, out.divergence * k.scale.reshape({-1}) + k.offset.reshape({-1}) * d};
    }
  }
  return {out.value, out.divergence};
}

at::Tensor NetworkScore::velocity(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y, const SDE& sde) {
  if (output_ == Parameterization::Velocity) return output(x, t, y);
  return ScoreModel::velocity(x, t, y, sde);
}

ScoreModel::VelocityWithDivergence NetworkScore::velocity_and_divergence(const at::Tensor& x, const at::Tensor& t,
                                                                         const at::Tensor& y, const SDE& sde) {
  if (output_ != Parameterization::Velocity) return ScoreModel::velocity_and_divergence(x, t, y, sde);
  const ValueWithDivergence out = output_and_divergence(x, t, y);
  return {out.value, out.divergence};
}

}  // namespace sbgm
