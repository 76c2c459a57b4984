#pragma once
// One request to draw from a model — samples, an iid posterior's samples or MAP estimates — with
// what the caller leaves unset settled against the model (the run's own sampler and steps). Every
// front end (the CLI's `sbgm sample`, the Python package) states what it wants here and lets the
// library choose the rest, so a default means the same thing everywhere.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/run/iid_posterior.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/posterior_mode.hpp"
#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/sample/sampler.hpp"

namespace sbgm {

struct SampleRequest {
  // What is drawn: n samples of the model (per row of cond), n samples of the posterior given all
  // rows of cond at once (iid), or the mode of each row's posterior (map; n starting samples).
  enum class Kind { Samples, IIDPosterior, Modes };
  Kind kind = Kind::Samples;
  int64_t n = 1000;
  at::Tensor cond;  // conditions in data space, [M, ...], or undefined for an unconditional model
  uint64_t seed = 0;
  // The sampler by name ("em", "pc", "ancestral", "ode", "edm"), or empty for the run's own
  // (sample.sampler). sampling's other fields (predictor, solver, edm, ...) are used as given.
  std::string sampler;
  SamplerOptions sampling;
  bool steps_given = false;  // sampling.steps as given; otherwise the run's steps for that sampler
  IIDConfig iid;
  ModeConfig mode;
  ScoreOptions score;  // guidance and the network's precision
  // Samples only: each sample's log-density too, the density of the probability-flow ODE's draws
  // had in the same solve (sample_model_with_density), for importance weights p / q. The sampler
  // must be the ODE ("ode"; the default when none is named); the divergence exact or Hutchinson's
  // with `probes` probes.
  bool log_prob = false;
  DivergenceKind divergence = DivergenceKind::Exact;
  int64_t probes = 1;
  // With log_prob, a model with a support: the draws per condition that estimate its share Z where
  // the request's own are fewer (sample_model_with_density; unset: kSupportDraws). Refused for a
  // model without one, and without log_prob.
  std::optional<int64_t> support_draws;
  Communicator comm;  // the processes that share the rows (this one alone by default)
};

// The sampler options a request comes to for this model: the named sampler (or the run's; the
// ODE for a request of log-densities) with the request's steps or the run's default for that
// sampler. InvalidArgument for an unknown name.
SamplerOptions resolve_sampling(const Model& model, const SampleRequest& request);

// Checks the request against the model before any work: n >= 1, steps >= 1, conditions of the
// width the model takes (and finite), an iid prior to be had, log-densities asked of samples drawn
// by the ODE in full precision. InvalidArgument naming the problem.
void check_request(const Model& model, const SampleRequest& request);

struct SampleReport {
  // [n, ...] samples of an unconditional model, [M, n, ...] for M conditions, [n, ...] of an iid
  // posterior, [M, ...] modes; in data space.
  at::Tensor samples;
  SupportStats support;  // how the samples met the model's support (none for modes, which keep to it)
  // With log_prob: [n] or [M, n] float64, log p of each sample in nats (NaN for a sample moved
  // onto the support's box), and its standard error; undefined otherwise.
  at::Tensor log_prob, log_prob_std_error;
  // With log_prob: the mean of the finite log p (an estimate of minus the model's entropy, over the
  // conditions given) and its standard error — the values' spread over √n, and a support's Z,
  // shared by one condition's samples, counted once for them (mean_standard_error); NaN without.
  double mean_log_prob = std::numeric_limits<double>::quiet_NaN(), mean_log_prob_std_error = 0;
};

// Runs the request (after check_request).
SampleReport run_sample_request(const Model& model, const SampleRequest& request, const ProgressFn& progress = {});

// What a picture of the request's samples shows them beside: an analytic mixture's own draws (n
// for each of the request's conditions, or 5,000), or an unconditional trained model's training
// rows while they can still be had (its built-in dataset, at most 5,000 rows, or its data file if
// it is still there); undefined otherwise.
at::Tensor picture_reference(const Model& model, const SampleRequest& request);

}  // namespace sbgm
