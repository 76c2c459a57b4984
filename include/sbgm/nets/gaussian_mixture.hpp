#pragma once
// A Gaussian mixture sum_k w_k N(mu_k, Sigma_k), and its exact score after diffusion by an SDE:
// p_t is again a mixture, with components N(m(t) mu_k, m(t)^2 Sigma_k + sigma(t)^2 I). It is the
// analytic reference that samplers, solvers and likelihoods are tested against.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <memory>

#include "sbgm/nets/score_model.hpp"

namespace sbgm {

class GaussianMixture {
 public:
  // weights [K] (positive, normalised here), means [K, D], covs [K, D, D] (symmetric positive
  // definite). Throws InvalidArgument naming what is wrong.
  GaussianMixture(at::Tensor weights, at::Tensor means, at::Tensor covs);

  int64_t components() const { return weights_.size(0); }
  int64_t dim() const { return means_.size(1); }
  const at::Tensor& weights() const { return weights_; }
  const at::Tensor& means() const { return means_; }
  const at::Tensor& covs() const { return covs_; }

  // log p(x) for x [B, D] -> [B] (float64 inside; returned in x's dtype).
  at::Tensor log_prob(const at::Tensor& x) const;
  // grad log p(x) -> [B, D].
  at::Tensor score(const at::Tensor& x) const;
  // Component responsibilities p(k | x) -> [B, K].
  at::Tensor responsibilities(const at::Tensor& x) const;
  at::Tensor sample(int64_t n, at::Generator gen) const;

  // The mixture transformed by x -> m x + sigma z: weights kept, means m mu, covs m^2 Sigma + sigma^2 I.
  GaussianMixture diffused(double m, double sigma) const;

 private:
  // log w_k + log N(x; mu_k, Sigma_k) -> [B, K], and (optionally) Sigma_k^{-1}(x - mu_k) -> [B, K, D].
  at::Tensor component_log_probs(const at::Tensor& x, at::Tensor* precision_times_diff) const;

  at::Tensor weights_, means_, covs_;      // float64
  at::Tensor precisions_, log_dets_, chol_;
};

// The exact score of a mixture diffused by an SDE, as a ScoreModel (t must be the same for the
// whole batch, as in every sampler; per-sample t is also handled, row by row).
class GaussianMixtureScore final : public ScoreModel {
 public:
  GaussianMixtureScore(GaussianMixture mixture, std::shared_ptr<const SDE> sde);
  at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  // log p_t(x) at a single time t.
  at::Tensor log_prob(const at::Tensor& x, double t) const;
  const GaussianMixture& mixture() const { return mixture_; }

 private:
  GaussianMixture mixture_;
  std::shared_ptr<const SDE> sde_;
};

}  // namespace sbgm
