#include "sbgm/data/gaussian_mixture.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <tuple>

#include "sbgm/util/error.hpp"

namespace sbgm {

GaussianMixture::GaussianMixture(at::Tensor weights, at::Tensor means, at::Tensor covs, at::Tensor cond_maps) {
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
  if (cond_maps.defined()) {
    if (cond_maps.dim() != 3 || cond_maps.size(0) != k || cond_maps.size(1) != d || cond_maps.size(2) < 1)
      throw InvalidArgument("mixture cond_maps must have shape [K, D, C] with K, D those of the means");
    cond_maps_ = cond_maps.to(at::kDouble).contiguous();
    if (!at::isfinite(cond_maps_).all().item<bool>()) throw InvalidArgument("mixture cond_maps contain NaN or Inf");
  }
  weights_ = weights_ / weights_.sum();
  if (!at::allclose(covs_, covs_.transpose(1, 2), 1e-8, 1e-10))
    throw InvalidArgument("mixture covariances must be symmetric");
  auto [chol, info] = at::linalg_cholesky_ex(covs_);
  if ((info != 0).any().item<bool>()) throw InvalidArgument("mixture covariances must be positive definite");
  chol_ = chol;
  precisions_ = at::cholesky_inverse(chol_);
  log_dets_ = 2 * at::log(at::diagonal(chol_, 0, 1, 2)).sum(1);
  std::tie(eigenvalues_, eigenvectors_) = at::linalg_eigh(covs_);
}

at::Tensor GaussianMixture::means_for(const at::Tensor& y, int64_t batch) const {
  if (cond_dim() == 0) {
    if (y.defined()) throw InvalidArgument("this mixture is unconditional but a condition was given");
    return means_.unsqueeze(0);
  }
  if (!y.defined()) throw InvalidArgument("this mixture is conditional: it needs a condition y");
  if (y.dim() != 2 || y.size(0) != batch || y.size(1) != cond_dim())
    throw InvalidArgument("expected conditions of shape [" + std::to_string(batch) + ", " + std::to_string(cond_dim()) + "]");
  return means_.unsqueeze(0) + at::einsum("kdc,bc->bkd", {cond_maps_, y.to(at::kDouble)});
}

at::Tensor GaussianMixture::component_log_probs(const at::Tensor& x, const at::Tensor& y,
                                                at::Tensor* precision_times_diff) const {
  if (x.dim() != 2 || x.size(1) != dim())
    throw InvalidArgument("expected points of shape [B, " + std::to_string(dim()) + "]");
  const at::Tensor xd = x.to(at::kDouble);
  const at::Tensor diff = xd.unsqueeze(1) - means_for(y, x.size(0));              // [B, K, D]
  const at::Tensor pd = at::einsum("bkd,kde->bke", {diff, precisions_});          // [B, K, D]
  const at::Tensor maha = (pd * diff).sum(2);                                      // [B, K]
  if (precision_times_diff) *precision_times_diff = pd;
  return at::log(weights_).unsqueeze(0) - 0.5 * (maha + log_dets_.unsqueeze(0) + dim() * std::log(2 * M_PI));
}

at::Tensor GaussianMixture::log_prob(const at::Tensor& x, const at::Tensor& y) const {
  return at::logsumexp(component_log_probs(x, y, nullptr), 1).to(x.scalar_type());
}

at::Tensor GaussianMixture::responsibilities(const at::Tensor& x, const at::Tensor& y) const {
  return at::softmax(component_log_probs(x, y, nullptr), 1).to(x.scalar_type());
}

at::Tensor GaussianMixture::score(const at::Tensor& x, const at::Tensor& y) const {
  at::Tensor pd;
  const at::Tensor r = at::softmax(component_log_probs(x, y, &pd), 1);  // [B, K]
  return (-(r.unsqueeze(2) * pd).sum(1)).to(x.scalar_type());
}

at::Tensor GaussianMixture::sample(int64_t n, at::Generator gen, const at::Tensor& y) const {
  const at::Tensor means = means_for(y, n);  // [1 or n, K, D]
  const at::Tensor k = at::multinomial(weights_, n, /*replacement=*/true, gen);
  const at::Tensor z = at::normal(0.0, 1.0, {n, dim(), 1}, gen, at::TensorOptions().dtype(at::kDouble));
  const at::Tensor chosen = means.size(0) == 1 ? means[0].index_select(0, k)
                                               : means.gather(1, k.view({n, 1, 1}).expand({n, 1, dim()})).squeeze(1);
  return (chosen + at::matmul(chol_.index_select(0, k), z).squeeze(2)).to(at::kFloat);
}

GaussianMixture GaussianMixture::diffused(double m, double sigma) const {
  const at::Tensor eye = at::eye(dim(), at::TensorOptions().dtype(at::kDouble)).unsqueeze(0);
  return GaussianMixture(weights_, means_ * m, covs_ * (m * m) + eye * (sigma * sigma),
                         cond_maps_.defined() ? cond_maps_ * m : at::Tensor());
}

GaussianMixture::DiffusedParts GaussianMixture::diffused_parts(const at::Tensor& x, const at::Tensor& mb,
                                                               const at::Tensor& sb, const at::Tensor& y) const {
  if (x.dim() != 2 || x.size(1) != dim())
    throw InvalidArgument("expected points of shape [B, " + std::to_string(dim()) + "]");
  DiffusedParts p;
  // m^2 Sigma_k + sigma^2 I = U_k diag(m^2 lambda_k + sigma^2) U_k^T.
  p.variances = mb * mb * eigenvalues_.unsqueeze(0) + sb * sb;                                // [B, K, D]
  const at::Tensor diff = x.to(at::kDouble).unsqueeze(1) - mb * means_for(y, x.size(0));    // [B, K, D]
  p.rotated = at::einsum("bkd,kde->bke", {diff, eigenvectors_});                            // U^T diff
  const at::Tensor logits =
      at::log(weights_).unsqueeze(0) - 0.5 * ((p.rotated * p.rotated / p.variances).sum(2) + at::log(p.variances).sum(2));
  p.responsibilities = at::softmax(logits, 1);
  return p;
}

namespace {
at::Tensor per_row(const at::Tensor& v) { return v.to(at::kDouble).view({-1, 1, 1}); }
}  // namespace

at::Tensor GaussianMixture::diffused_score(const at::Tensor& x, const at::Tensor& m, const at::Tensor& sigma,
                                          const at::Tensor& y) const {
  const DiffusedParts p = diffused_parts(x, per_row(m), per_row(sigma), y);
  const at::Tensor precision_times_diff = at::einsum("bke,kde->bkd", {p.rotated / p.variances, eigenvectors_});
  return (-(p.responsibilities.unsqueeze(2) * precision_times_diff).sum(1)).to(x.scalar_type());
}

at::Tensor GaussianMixture::diffused_velocity(const at::Tensor& x, const at::Tensor& m, const at::Tensor& sigma,
                                             const at::Tensor& dm, const at::Tensor& dsigma, const at::Tensor& y) const {
  const at::Tensor mb = per_row(m), sb = per_row(sigma), dmb = per_row(dm), dsb = per_row(dsigma);
  const DiffusedParts p = diffused_parts(x, mb, sb, y);
  // Per component, E[x0 | x] = mu + m Sigma P (x - m mu) and E[z | x] = sigma P (x - m mu), with
  // P = (m^2 Sigma + sigma^2 I)^-1; so dm E[x0] + dsigma E[z] = dm mu + U diag((dm m lambda +
  // dsigma sigma) / (m^2 lambda + sigma^2)) U^T (x - m mu).
  const at::Tensor gain = (dmb * mb * eigenvalues_.unsqueeze(0) + dsb * sb) / p.variances;  // [B, K, D]
  const at::Tensor moved = at::einsum("bke,kde->bkd", {p.rotated * gain, eigenvectors_}) + dmb * means_for(y, x.size(0));
  return (p.responsibilities.unsqueeze(2) * moved).sum(1).to(x.scalar_type());
}

GaussianMixture linear_gaussian_posterior(const at::Tensor& prior_mean, const at::Tensor& prior_cov, const at::Tensor& H,
                                          const at::Tensor& noise_cov) {
  const int64_t p = prior_mean.numel();
  if (prior_mean.dim() != 1 || prior_cov.sizes() != at::IntArrayRef{p, p} || H.dim() != 2 || H.size(1) != p ||
      noise_cov.sizes() != at::IntArrayRef{H.size(0), H.size(0)})
    throw InvalidArgument("linear-Gaussian model: expected prior_mean [P], prior_cov [P, P], H [X, P], noise_cov [X, X]");
  const auto dbl = [](const at::Tensor& t) { return t.to(at::kDouble); };
  const at::Tensor prior_precision = at::linalg_inv(dbl(prior_cov));
  const at::Tensor ht_noise_precision = at::matmul(dbl(H).t(), at::linalg_inv(dbl(noise_cov)));  // [P, X]
  at::Tensor cov = at::linalg_inv(prior_precision + at::matmul(ht_noise_precision, dbl(H)));
  cov = (cov + cov.t()) / 2;  // exactly symmetric
  const at::Tensor mean = at::matmul(cov, at::matmul(prior_precision, dbl(prior_mean)));
  return GaussianMixture(at::ones({1}, at::kDouble), mean.unsqueeze(0), cov.unsqueeze(0),
                         at::matmul(cov, ht_noise_precision).unsqueeze(0));
}

}  // namespace sbgm
