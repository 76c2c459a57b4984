#pragma once
// Posterior samples given several independent observations of one parameter, from a model of
// p(theta | x) trained on single observations (score/iid_score.hpp composes the scores). The
// prior's score is taken from, in order: a Gaussian mixture the caller gives (data space); the
// network itself when it was trained with condition dropout (its unconditional mode); a Gaussian
// fitted to the training parameters (kept in the checkpoint). The gauss method weighs the terms
// with Gaussian approximations: each posterior's covariance from draws for its observation
// alone, the prior's from the mixture or the training parameters.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

#include "sbgm/dist/communicator.hpp"
#include "sbgm/run/score_options.hpp"
#include "sbgm/sample/sampler.hpp"
#include "sbgm/score/iid_score.hpp"

namespace sbgm {

struct Model;
struct SupportStats;
class GaussianMixture;

struct IIDConfig {
  IIDMethod method = IIDMethod::Gauss;
  int64_t covariance_samples = 1000;             // gauss: draws per observation for its covariance
  std::shared_ptr<const GaussianMixture> prior;  // the prior in data space, or null (see above)
};

// Where the prior's score comes from for this model and config, in words (for messages), or
// InvalidArgument naming what to give when there is no source.
std::string iid_prior_source(const Model& model, const IIDConfig& config);

// n samples [n, ...] in data space of p(theta | x_1..x_m) for observations [m, ...] (data space).
// InvalidArgument for an unconditional model, observations of the wrong width or with NaN, a
// prior of another dimension, or one given in data space to a model with bounds.
// score: guidance and precision of the posterior network's evaluations (a prior taken from the
// network's unconditional mode is its evaluation at w = -1, in that precision).
// report (optional) gains how the posterior's draws met a support the model keeps.
at::Tensor sample_model_iid(const Model& model, Sampler& sampler, const at::Tensor& observations, int64_t n,
                            const IIDConfig& config, uint64_t seed, const ProgressFn& progress = {},
                            const ScoreOptions& score = {}, SupportStats* report = nullptr, const Communicator& comm = Communicator());

}  // namespace sbgm
