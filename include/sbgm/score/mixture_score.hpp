#pragma once
// A Gaussian mixture (data/gaussian_mixture.hpp) diffused by an SDE, as a score model: the exact
// score and velocity wherever a network's would be used, so samplers, solvers and likelihoods can
// be checked against exact answers (`--gmm` on the CLI).

#include <ATen/core/Tensor.h>

#include <memory>

#include "sbgm/data/gaussian_mixture.hpp"
#include "sbgm/score/score_model.hpp"

namespace sbgm {

// The exact score of a mixture diffused by an SDE, as a ScoreModel (one t for the whole batch, as
// in most samplers, or one per row, as in per-row ODE solves and training).
// The mixture's arithmetic stays on the CPU in float64 whatever the device of x: results are
// moved to x's device, so a solver on a GPU uses the exact score as it does on the CPU.
class GaussianMixtureScore final : public ScoreModel {
 public:
  GaussianMixtureScore(GaussianMixture mixture, std::shared_ptr<const SDE> sde);
  at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  // Exact, also where the SDE's f and g^2 are infinite (diffused_velocity); the divergence by autograd.
  at::Tensor velocity(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y, const SDE& sde) override;
  VelocityWithDivergence velocity_and_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                                 const SDE& sde) override;
  // log p_t(x | y) at a single time t.
  at::Tensor log_prob(const at::Tensor& x, double t, const at::Tensor& y = {}) const;
  const GaussianMixture& mixture() const { return mixture_; }

 private:
  GaussianMixture mixture_;
  std::shared_ptr<const SDE> sde_;
};

}  // namespace sbgm
