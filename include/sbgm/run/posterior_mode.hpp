#pragma once
// The mode of a model's density — the MAP estimate of p(theta | x) for a conditional model —
// found as sbi finds it: gradient ascent from many posterior samples, the best end point kept.
// The gradient of log p is the score itself, taken on the density smoothed at a noise level that
// falls from half the prior's scale to 5% of it (posterior_mode.cpp says why not at t_eps), so
// the ascent costs one network evaluation a step and no likelihood; only the end points are
// ranked by their exact log-density through the probability-flow ODE.

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "sbgm/dist/communicator.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/run/score_options.hpp"
#include "sbgm/sample/sampler.hpp"

namespace sbgm {

struct Model;

struct ModeConfig {
  int64_t starts = 100;       // posterior samples the ascent starts from, per condition
  int64_t iterations = 500;   // Adam steps on the samples
  double lr = 0.02;           // Adam's first step size in the model's (standardised) units,
                              // decayed along a cosine to a thousandth of it
  LikelihoodConfig likelihood;  // ranks the end points

  void validate() const;
};

// One mode per condition of cond [M, ...] (data units), as [M, ...sample shape]; an
// unconditional model (cond undefined) gives [1, ...]. Progress counts the sampling, the
// ascent's steps, then the ranking.
at::Tensor model_mode(const Model& model, Sampler& sampler, const at::Tensor& cond, const ModeConfig& config,
                      uint64_t seed, const ProgressFn& progress = {}, const ScoreOptions& score = {},
                      const Communicator& comm = Communicator());

}  // namespace sbgm
