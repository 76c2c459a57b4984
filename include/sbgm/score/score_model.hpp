#pragma once
// Anything that gives the score grad_x log p_t(x | y): a trained network or an analytic model.
// Samplers and likelihoods only ever see this interface.

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

#include "sbgm/nets/condition.hpp"
#include "sbgm/nets/net_config.hpp"
#include "sbgm/util/autocast.hpp"

namespace sbgm {

class SDE;
class ScoreNet;

class ScoreModel {
 public:
  virtual ~ScoreModel() = default;
  // x: [B, ...]; t: [B]; y: [B, ...] or undefined. Returns a tensor shaped like x.
  virtual at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) = 0;

  // The score and its divergence, the trace of d score / d x over the flattened features: [B].
  // The default takes one vector-Jacobian product per feature through autograd; models with a
  // cheaper exact form override it. Either way no graph is left behind.
  struct WithDivergence {
    at::Tensor score, divergence;
  };
  virtual WithDivergence score_and_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y);
  // Drops what the model keeps between calls to save work (ScoreNet::forget_kept_state), so that
  // what follows depends on its own inputs only; called before each likelihood solve.
  virtual void forget_kept_state() {}

  // The velocity of the probability-flow ODE of sde, f x - g^2 s / 2: what carries p_T to the data.
  // By default from score(); a model that knows the velocity itself (a flow-matching network, an
  // analytic mixture) returns it directly, finite where f and g^2 are not (t = T on the linear
  // path, where the score no longer tells the data's mean). sde is the one the model's score
  // belongs to.
  virtual at::Tensor velocity(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y, const SDE& sde);
  // The velocity and its divergence over the flattened features ([B]); no graph is left behind.
  // By default from score_and_divergence (the drift is affine in the score: div = f D - g^2 div s / 2).
  struct VelocityWithDivergence {
    at::Tensor velocity, divergence;
  };
  virtual VelocityWithDivergence velocity_and_divergence(const at::Tensor& x, const at::Tensor& t,
                                                         const at::Tensor& y, const SDE& sde);
};

// The divergence of fn at x over the flattened features ([B]), one vector-Jacobian product per
// feature through autograd, and fn's value (detached).
struct ValueWithDivergence {
  at::Tensor value, divergence;
};
ValueWithDivergence autograd_divergence(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& x);
// Hutchinson's estimates eps^T (d fn / d x) eps of that divergence, one per probe: probes [P, B, D]
// (D the flattened features) -> divergence [B, P], one vector-Jacobian product per probe.
ValueWithDivergence hutchinson_divergence(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& x,
                                          const at::Tensor& probes);

// A network's output turned into a score for a given SDE. With guidance w != 0 (a network trained
// with condition dropout only) the score is classifier-free guided, (1 + w) s(x, t | y) - w s(x, t),
// both terms from one evaluation of the doubled batch: w > 0 sharpens p(x | y) towards y, w = -1
// is the unconditional model p(x).
//
// With Precision::BFloat16, score() evaluates the network under bfloat16 autocast (for samplers:
// the result is returned in x's type); score_and_divergence always runs in x's own precision,
// since a likelihood sums D derivative terms whose rounding bfloat16 would not keep below the
// ODE solver's tolerance.
class NetworkScore final : public ScoreModel {
 public:
  NetworkScore(std::shared_ptr<ScoreNet> net, std::shared_ptr<const SDE> sde, Parameterization output,
               ConditionInput condition = {}, double guidance = 0, Precision precision = Precision::Float32);
  void forget_kept_state() override;
  at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  WithDivergence score_and_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  // A velocity network's output as it is; other parameterisations through the score.
  at::Tensor velocity(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y, const SDE& sde) override;
  VelocityWithDivergence velocity_and_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                                 const SDE& sde) override;

 private:
  // The network's output (guided when guidance is on) under the model's precision.
  at::Tensor output(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y);
  // The output and its divergence, by forward tangents when the network prefers them, else autograd.
  ValueWithDivergence output_and_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y);

  std::shared_ptr<ScoreNet> net_;
  std::shared_ptr<const SDE> sde_;
  Parameterization output_;
  ConditionInput condition_;
  double guidance_;
  Precision precision_;
};

}  // namespace sbgm
