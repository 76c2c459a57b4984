#pragma once
// A Gaussian mixture sum_k w_k N(mu_k, Sigma_k), and its exact score after diffusion, x -> m x +
// sigma z (as by an SDE at time t): again a mixture, with components N(m mu_k, m^2 Sigma_k +
// sigma^2 I). It is the analytic reference that samplers, solvers and likelihoods are tested
// against (as a score model: score/mixture_score.hpp).
//
// A conditional mixture p(x | y) has means affine in a condition y: mu_k(y) = mu_k + A_k y. With
// one component that is every Gaussian posterior of a linear-Gaussian model (the analytic
// reference for conditional sampling and simulation-based inference).

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace sbgm {

class GaussianMixture {
 public:
  // weights [K] (positive, normalised here), means [K, D], covs [K, D, D] (symmetric positive
  // definite), cond_maps [K, D, C] (the A_k of a conditional mixture) or undefined. Throws
  // InvalidArgument naming what is wrong.
  GaussianMixture(at::Tensor weights, at::Tensor means, at::Tensor covs, at::Tensor cond_maps = {});

  int64_t components() const { return weights_.size(0); }
  int64_t dim() const { return means_.size(1); }
  const at::Tensor& weights() const { return weights_; }
  const at::Tensor& means() const { return means_; }
  const at::Tensor& covs() const { return covs_; }
  const at::Tensor& cond_maps() const { return cond_maps_; }
  int64_t cond_dim() const { return cond_maps_.defined() ? cond_maps_.size(2) : 0; }

  // Every y below is [B, C] for a conditional mixture (one condition per row) and must be
  // undefined for an unconditional one.
  // log p(x | y) for x [B, D] -> [B] (float64 inside; returned in x's dtype).
  at::Tensor log_prob(const at::Tensor& x, const at::Tensor& y = {}) const;
  // grad_x log p(x | y) -> [B, D].
  at::Tensor score(const at::Tensor& x, const at::Tensor& y = {}) const;
  // Component responsibilities p(k | x, y) -> [B, K].
  at::Tensor responsibilities(const at::Tensor& x, const at::Tensor& y = {}) const;
  // n draws (float32), one per row of y when the mixture is conditional.
  at::Tensor sample(int64_t n, at::Generator gen, const at::Tensor& y = {}) const;

  // The mixture transformed by x -> m x + sigma z: weights kept, means m mu (and maps m A), covs
  // m^2 Sigma + sigma^2 I.
  GaussianMixture diffused(double m, double sigma) const;
  // The score of diffused(m_b, sigma_b) at x_b, a different (m, sigma) for every row: m and sigma
  // [B]. Through the eigendecomposition of each Sigma_k, so that no row needs a factorisation.
  at::Tensor diffused_score(const at::Tensor& x, const at::Tensor& m, const at::Tensor& sigma,
                            const at::Tensor& y = {}) const;
  // E[dm x0 + dsigma z | x_b] under x = m x0 + sigma z, x0 from the mixture, z ~ N(0, I), per row
  // (all [B]): the velocity of a Gaussian path whose coefficients move at dm, dsigma. Written with
  // the components' posterior means, so it stays finite at m = 0 (the linear path's t = 1).
  at::Tensor diffused_velocity(const at::Tensor& x, const at::Tensor& m, const at::Tensor& sigma, const at::Tensor& dm,
                               const at::Tensor& dsigma, const at::Tensor& y = {}) const;

 private:
  // For diffused mixtures per row: responsibilities [B, K], U_k^T (x - m mu_k) [B, K, D] and the
  // variances m^2 lambda_k + sigma^2 [B, K, D] (mb, sb: m and sigma shaped [B, 1, 1], float64).
  struct DiffusedParts {
    at::Tensor responsibilities, rotated, variances;
  };
  DiffusedParts diffused_parts(const at::Tensor& x, const at::Tensor& mb, const at::Tensor& sb, const at::Tensor& y) const;
  // The component means for conditions y: [1, K, D] (unconditional) or [B, K, D].
  at::Tensor means_for(const at::Tensor& y, int64_t batch) const;
  // log w_k + log N(x; mu_k, Sigma_k) -> [B, K], and (optionally) Sigma_k^{-1}(x - mu_k) -> [B, K, D].
  at::Tensor component_log_probs(const at::Tensor& x, const at::Tensor& y, at::Tensor* precision_times_diff) const;

  at::Tensor weights_, means_, covs_, cond_maps_;  // float64
  at::Tensor precisions_, log_dets_, chol_;
  at::Tensor eigenvalues_, eigenvectors_;  // Sigma_k = U_k diag(lambda_k) U_k^T: [K, D], [K, D, D]
};

// The posterior p(theta | x) of the linear-Gaussian model theta ~ N(prior_mean, prior_cov),
// x = H theta + N(0, noise_cov), as a one-component conditional mixture with condition x:
// covariance S = (prior_cov^-1 + H^T noise_cov^-1 H)^-1, mean S prior_cov^-1 prior_mean + S H^T
// noise_cov^-1 x. prior_mean [P], prior_cov [P, P], H [X, P], noise_cov [X, X].
GaussianMixture linear_gaussian_posterior(const at::Tensor& prior_mean, const at::Tensor& prior_cov, const at::Tensor& H,
                                          const at::Tensor& noise_cov);

}  // namespace sbgm
