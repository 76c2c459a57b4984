#include "sbgm/run/iid_posterior.hpp"

#include <ATen/ATen.h>
#include <c10/util/accumulate.h>

#include "sbgm/run/model.hpp"
#include "sbgm/score/mixture_score.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

// A score model given one fixed condition for every row: the network's unconditional mode still
// takes a condition to drop.
class WithFixedCondition final : public ScoreModel {
 public:
  WithFixedCondition(std::shared_ptr<ScoreModel> inner, at::Tensor row) : inner_(std::move(inner)), row_(std::move(row)) {}
  at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor&) override {
    return inner_->score(x, t, row_.to(x.device(), x.scalar_type()).expand({x.size(0), row_.size(1)}));
  }

 private:
  std::shared_ptr<ScoreModel> inner_;
  at::Tensor row_;
};

int64_t feature_count(const Model& model) { return c10::multiply_integers(model.data_shape); }

// The prior mixture carried into the model's space: the scaling is affine, so it stays a mixture.
GaussianMixture prior_in_model_space(const Model& model, const GaussianMixture& prior) {
  if (prior.cond_dim() > 0) throw InvalidArgument("the prior must be an unconditional mixture");
  if (prior.dim() != feature_count(model))
    throw InvalidArgument("the prior is over " + std::to_string(prior.dim()) + " features but the model's samples have " +
                          std::to_string(feature_count(model)));
  if (!model.bounds.none())
    throw InvalidArgument("a prior given in data space cannot follow the bounds' map (data.lower, data.upper): leave it "
                          "out to use the training parameters' Gaussian fit");
  if (model.scaling.is_identity()) return prior;
  const at::Tensor shift = model.scaling.shift.flatten().to(at::kDouble), scale = model.scaling.scale.flatten().to(at::kDouble);
  return GaussianMixture(prior.weights(), (prior.means() - shift) / scale,
                         prior.covs() / (scale.unsqueeze(1) * scale.unsqueeze(0)));
}

// The covariance of a whole mixture: sum_k w_k (C_k + mu_k mu_k^T) - mu mu^T.
at::Tensor mixture_covariance(const GaussianMixture& g) {
  const at::Tensor w = g.weights().reshape({-1, 1, 1});
  const at::Tensor mean = at::matmul(g.weights(), g.means());
  const at::Tensor outer = g.means().unsqueeze(2) * g.means().unsqueeze(1);
  return (w * (g.covs() + outer)).sum(0) - mean.unsqueeze(1) * mean.unsqueeze(0);
}

// Covariances [m, D, D] from draws [m, K, D] whose inverses are unbiased precisions: the inverse
// of a sample covariance overestimates the precision by (K - 1) / (K - D - 2) (Wishart), an error
// that the gauss composition's sum of M precisions would add up.
at::Tensor covariances(const at::Tensor& draws) {
  const int64_t k = draws.size(1), d = draws.size(2);
  const at::Tensor centred = draws - draws.mean(1, /*keepdim=*/true);
  const double unbiased = static_cast<double>(std::max<int64_t>(1, k - d - 2));
  return at::matmul(centred.transpose(1, 2), centred) / unbiased;
}

}  // namespace

std::string iid_prior_source(const Model& model, const IIDConfig& config) {
  if (config.prior) return "the given prior";
  if (model.condition_input().droppable) return "the network's unconditional mode (trained with condition dropout)";
  if (model.data_mean.defined()) return "a Gaussian fitted to the training parameters";
  throw InvalidArgument("iid sampling needs the prior's score: give the prior as a Gaussian mixture ({prior} FILE.npz), "
                        "or train with condition dropout (train.cond_dropout)");
}

at::Tensor sample_model_iid(const Model& model, Sampler& sampler, const at::Tensor& observations, int64_t n,
                            const IIDConfig& config, uint64_t seed, const ProgressFn& progress,
                            const ScoreOptions& options, SupportStats* report, const Communicator& comm) {
  if (model.cond_dim == 0) throw InvalidArgument("iid sampling composes a conditional model's posteriors: the model is unconditional");
  if (n < 1) throw InvalidArgument("the number of samples must be at least 1");
  if (config.method == IIDMethod::Gauss && config.covariance_samples < feature_count(model) + 3)
    throw InvalidArgument("the gauss iid method needs more draws per observation than the parameters' dimension + 2");
  const int64_t m = observations.dim() <= 1 ? 1 : observations.size(0);
  const at::Tensor y = model_conditions(model, observations, m);  // checks the width, NaN and Inf
  iid_prior_source(model, config);                                 // throws when there is none
  const int64_t d = feature_count(model);

  std::shared_ptr<ScoreModel> prior;
  at::Tensor prior_cov;
  if (config.prior) {
    const GaussianMixture g = prior_in_model_space(model, *config.prior);
    prior = std::make_shared<GaussianMixtureScore>(g, model.sde);
    prior_cov = mixture_covariance(g);
  } else if (model.condition_input().droppable) {
    // (1 + w) s(x | y) - w s(x) at w = -1: the network's unconditional mode.
    prior = std::make_shared<WithFixedCondition>(model.score_model({-1, options.precision}), y.narrow(0, 0, 1));
    prior_cov = model.data_cov;
  } else {
    const GaussianMixture g(at::ones({1}, at::kDouble), model.data_mean.to(at::kDouble).unsqueeze(0),
                            model.data_cov.to(at::kDouble).unsqueeze(0));
    prior = std::make_shared<GaussianMixtureScore>(g, model.sde);
    prior_cov = model.data_cov;
  }

  at::Tensor posterior_covs;
  if (config.method == IIDMethod::Gauss) {
    if (!prior_cov.defined())
      throw InvalidArgument("the gauss iid method needs the prior's covariance, which this checkpoint does not keep: give "
                            "the prior ({prior} FILE.npz) or use the factorized method");
    const int64_t k = config.covariance_samples;
    const at::Tensor draws = sample_model_given(model, sampler, observations, k, seed ^ 0x696964ULL, progress, options,
                                                  nullptr, comm);
    std::vector<int64_t> rows{m * k};
    rows.insert(rows.end(), model.data_shape.begin(), model.data_shape.end());
    const at::Tensor in_model_space = model.to_model_space(draws.reshape(rows).to(model.dtype));
    posterior_covs = covariances(in_model_space.reshape({m, k, d}).to(at::kDouble));
  }
  std::shared_ptr<ScoreModel> posterior = model.score_model(options);
  IIDScore score(posterior, prior, model.sde, y, config.method, posterior_covs, prior_cov);
  return sample_model_with(model, score, sampler, n, at::Tensor(), seed, progress, report, comm);
}

}  // namespace sbgm
