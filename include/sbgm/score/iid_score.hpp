#pragma once
// The score of the posterior given n independent observations of one parameter,
// p(theta | x_1..x_n) ∝ p(theta)^(1-n) prod_i p(theta | x_i), composed from a model of p(theta | x)
// trained on single observations and a score of the prior (Geffner, Papamakarios & Mnih 2023;
// Linhart et al. 2024). After diffusion the product no longer factorises, so the composition is
// one of:
//   factorized: sum_i s(theta_t | x_i) + (1 - n) s_prior(theta_t), exact only as t -> 0;
//   gauss:      each term weighted by its denoising precision L = C^-1 + (m^2 / sigma^2) I, from a
//               Gaussian approximation of each posterior (covariance C_i) and of the prior (C_p):
//               s = (sum_i L_i + (1 - n) L_p)^-1 (sum_i L_i s_i + (1 - n) L_p s_p),
//               exact at every t when the posteriors and the prior are Gaussian.

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

#include "sbgm/score/score_model.hpp"

namespace sbgm {

enum class IIDMethod { Factorized, Gauss };
std::string to_string(IIDMethod method);
IIDMethod iid_method_from_string(const std::string& name);

class IIDScore final : public ScoreModel {
 public:
  // posterior: the score of p(theta_t | x) for conditions [B, C]; prior: the unconditional score
  // of p(theta_t) (given no condition). observations [n, C] as posterior takes them. gauss needs
  // posterior_covs [n, D, D] and prior_cov [D, D]; InvalidArgument when they make no positive
  // definite precision for the n-observation posterior.
  IIDScore(std::shared_ptr<ScoreModel> posterior, std::shared_ptr<ScoreModel> prior, std::shared_ptr<const SDE> sde,
           at::Tensor observations, IIDMethod method, const at::Tensor& posterior_covs = {},
           const at::Tensor& prior_cov = {});
  // y must be undefined: the observations are the model's own.
  at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;

 private:
  std::shared_ptr<ScoreModel> posterior_, prior_;
  std::shared_ptr<const SDE> sde_;
  at::Tensor observations_;
  IIDMethod method_;
  // gauss: the posterior precisions [n, D, D], the prior's [D, D], and the eigendecomposition of
  // sum_i P_i + (1 - n) P_p (the n-observation posterior's precision): values [D], vectors [D, D].
  at::Tensor precisions_, prior_precision_, combined_values_, combined_vectors_;
};

}  // namespace sbgm
