#include "sbgm/score/mixture_score.hpp"

#include <ATen/ATen.h>

#include "sbgm/sde/sde.hpp"

namespace sbgm {

GaussianMixtureScore::GaussianMixtureScore(GaussianMixture mixture, std::shared_ptr<const SDE> sde)
    : mixture_(std::move(mixture)), sde_(std::move(sde)) {}

at::Tensor GaussianMixtureScore::score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const at::Tensor flat = x.reshape({x.size(0), -1});
  const at::Tensor y_flat = y.defined() ? y.reshape({y.size(0), -1}) : y;
  const at::Tensor tc = t.to(at::kDouble).cpu();
  auto score_at = [&](double ti, const at::Tensor& rows, const at::Tensor& conds) {
    return mixture_.diffused(sde_->mean_coeff(ti), sde_->marginal_std(ti)).score(rows, conds);
  };
  const double t0 = tc[0].item<double>();
  if ((tc == t0).all().item<bool>())
    return score_at(t0, flat.cpu(), y_flat.defined() ? y_flat.cpu() : y_flat).to(x.device()).reshape(x.sizes());
  const at::Tensor like = at::empty({x.size(0)}, tc.options());
  return mixture_
      .diffused_score(flat.cpu(), sde_->mean_coeff(tc, like), sde_->marginal_std(tc, like),
                      y_flat.defined() ? y_flat.cpu() : y_flat)
      .to(x.device())
      .reshape(x.sizes());
}

at::Tensor GaussianMixtureScore::velocity(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y, const SDE&) {
  const at::Tensor flat = x.reshape({x.size(0), -1});
  const at::Tensor y_flat = y.defined() ? y.reshape({y.size(0), -1}) : y;
  const at::Tensor tc = t.to(at::kDouble).cpu().reshape({-1}).expand({x.size(0)});
  return mixture_
      .diffused_velocity(flat.cpu(), sde_->mean_coeff(tc, tc), sde_->marginal_std(tc, tc), sde_->mean_coeff_rate(tc, tc),
                         sde_->marginal_std_rate(tc, tc), y_flat.defined() ? y_flat.cpu() : y_flat)
      .to(x.device())
      .reshape(x.sizes());
}

ScoreModel::VelocityWithDivergence GaussianMixtureScore::velocity_and_divergence(const at::Tensor& x,
                                                                                 const at::Tensor& t,
                                                                                 const at::Tensor& y, const SDE& sde) {
  const ValueWithDivergence v = autograd_divergence([&](const at::Tensor& xg) { return velocity(xg, t, y, sde); }, x);
  return {v.value, v.divergence};
}

at::Tensor GaussianMixtureScore::log_prob(const at::Tensor& x, double t, const at::Tensor& y) const {
  return mixture_.diffused(sde_->mean_coeff(t), sde_->marginal_std(t))
      .log_prob(x.reshape({x.size(0), -1}).cpu(), y.defined() ? y.reshape({y.size(0), -1}).cpu() : y)
      .to(x.device());
}

}  // namespace sbgm
