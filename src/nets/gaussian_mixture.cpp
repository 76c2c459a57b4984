#include "sbgm/nets/gaussian_mixture.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

GaussianMixture::GaussianMixture(at::Tensor weights, at::Tensor means, at::Tensor covs) {
  if (weights.dim() != 1) throw InvalidArgument("mixture weights must have shape [K]");
  if (means.dim() != 2) throw InvalidArgument("mixture means must have shape [K, D]");
  if (covs.dim() != 3) throw InvalidArgument("mixture covs must have shape [K, D, D]");
  const int64_t k = weights.size(0), d = means.size(1);
  if (k < 1) throw InvalidArgument("mixture needs at least one component");
  if (means.size(0) != k || covs.size(0) != k)
    throw InvalidArgument("mixture weights, means and covs disagree on the number of components");
  if (covs.size(1) != d || covs.size(2) != d) throw InvalidArgument("mixture covs must have shape [K, D, D] with D = means.shape[1]");
  weights_ = weights.to(at::kDouble).contiguous();
  means_ = means.to(at::kDouble).contiguous();
  covs_ = covs.to(at::kDouble).contiguous();
  if (!at::isfinite(weights_).all().item<bool>() || !at::isfinite(means_).all().item<bool>() ||
      !at::isfinite(covs_).all().item<bool>())
    throw InvalidArgument("mixture parameters contain NaN or Inf");
  if ((weights_ <= 0).any().item<bool>()) throw InvalidArgument("mixture weights must be positive");
  weights_ = weights_ / weights_.sum();
  if (!at::allclose(covs_, covs_.transpose(1, 2), 1e-8, 1e-10))
    throw InvalidArgument("mixture covariances must be symmetric");
  auto [chol, info] = at::linalg_cholesky_ex(covs_);
  if ((info != 0).any().item<bool>()) throw InvalidArgument("mixture covariances must be positive definite");
  chol_ = chol;
  precisions_ = at::cholesky_inverse(chol_);
  log_dets_ = 2 * at::log(at::diagonal(chol_, 0, 1, 2)).sum(1);
}

at::Tensor GaussianMixture::component_log_probs(const at::Tensor& x, at::Tensor* precision_times_diff) const {
  if (x.dim() != 2 || x.size(1) != dim())
    throw InvalidArgument("expected points of shape [B, " + std::to_string(dim()) + "]");
  const at::Tensor xd = x.to(at::kDouble);
  const at::Tensor diff = xd.unsqueeze(1) - means_.unsqueeze(0);                   // [B, K, D]
  const at::Tensor pd = at::einsum("bkd,kde->bke", {diff, precisions_});          // [B, K, D]
  const at::Tensor maha = (pd * diff).sum(2);                                      // [B, K]
  if (precision_times_diff) *precision_times_diff = pd;
  return at::log(weights_).unsqueeze(0) - 0.5 * (maha + log_dets_.unsqueeze(0) + dim() * std::log(2 * M_PI));
}

at::Tensor GaussianMixture::log_prob(const at::Tensor& x) const {
  return at::logsumexp(component_log_probs(x, nullptr), 1).to(x.scalar_type());
}

at::Tensor GaussianMixture::responsibilities(const at::Tensor& x) const {
  return at::softmax(component_log_probs(x, nullptr), 1).to(x.scalar_type());
}

at::Tensor GaussianMixture::score(const at::Tensor& x) const {
  at::Tensor pd;
  const at::Tensor r = at::softmax(component_log_probs(x, &pd), 1);  // [B, K]
  return (-(r.unsqueeze(2) * pd).sum(1)).to(x.scalar_type());
}

at::Tensor GaussianMixture::sample(int64_t n, at::Generator gen) const {
  const at::Tensor k = at::multinomial(weights_, n, /*replacement=*/true, gen);
  const at::Tensor z = at::normal(0.0, 1.0, {n, dim(), 1}, gen, at::TensorOptions().dtype(at::kDouble));
  return (means_.index_select(0, k) + at::matmul(chol_.index_select(0, k), z).squeeze(2)).to(at::kFloat);
}

GaussianMixture GaussianMixture::diffused(double m, double sigma) const {
  const at::Tensor eye = at::eye(dim(), at::TensorOptions().dtype(at::kDouble)).unsqueeze(0);
  return GaussianMixture(weights_, means_ * m, covs_ * (m * m) + eye * (sigma * sigma));
}

GaussianMixtureScore::GaussianMixtureScore(GaussianMixture mixture, std::shared_ptr<const SDE> sde)
    : mixture_(std::move(mixture)), sde_(std::move(sde)) {}

at::Tensor GaussianMixtureScore::score(const at::Tensor& x, const at::Tensor& t, const at::Tensor&) {
  const at::Tensor flat = x.reshape({x.size(0), -1});
  const at::Tensor tc = t.to(at::kDouble).cpu();
  auto score_at = [&](double ti, const at::Tensor& rows) {
    return mixture_.diffused(sde_->mean_coeff(ti), sde_->marginal_std(ti)).score(rows);
  };
  const double t0 = tc[0].item<double>();
  if ((tc == t0).all().item<bool>()) return score_at(t0, flat).reshape(x.sizes());
  std::vector<at::Tensor> rows;
  for (int64_t i = 0; i < x.size(0); ++i) rows.push_back(score_at(tc[i].item<double>(), flat.narrow(0, i, 1)));
  return at::cat(rows, 0).reshape(x.sizes());
}

at::Tensor GaussianMixtureScore::log_prob(const at::Tensor& x, double t) const {
  return mixture_.diffused(sde_->mean_coeff(t), sde_->marginal_std(t)).log_prob(x.reshape({x.size(0), -1}));
}

}  // namespace sbgm
