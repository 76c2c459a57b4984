#pragma once
// Calibration of a conditional model on held-out simulations (theta_s, x_s): posterior samples
// given each x_s, then the checks of sbgm/eval/calibration.hpp — SBC ranks per parameter, the
// highest-density coverage from log-densities through the probability-flow ODE, and TARP.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sbgm/eval/calibration.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/sample/sampler.hpp"

namespace sbgm {

struct Model;

struct DiagnoseConfig {
  int64_t samples = 1000;     // L posterior samples per simulation (SBC and TARP)
  int64_t hpd_samples = 100;  // of those, how many get a log-density for the HPD check (0: none)
  LikelihoodConfig likelihood;
  // > 1: the model whose score is averaged over that many orders of a set condition's elements
  // (ScoreOptions::set_orders), for its samples and its log-densities alike.
  int64_t set_orders = 1;

  void validate() const;
};

struct CalibrationReport {
  int64_t simulations = 0, samples = 0, hpd_samples = 0;
  at::Tensor ranks;                       // [S, D] SBC ranks in 0..samples
  std::vector<CalibrationCheck> checks;   // "sbc theta_d" for each d, "hpd" (hpd_samples > 0), "tarp"
};

// theta [S, D] and x [S, C] in data units; the model conditional. Progress counts the posterior
// draws, then the log-densities.
CalibrationReport diagnose_model(const Model& model, Sampler& sampler, const at::Tensor& theta, const at::Tensor& x,
                                 const DiagnoseConfig& config, uint64_t seed, const ProgressFn& progress = {});

// A calibration as a front end states it (`sbgm diagnose`, the Python package): the sampler by
// name (empty: the run's own) with its steps settled against the model as SampleRequest's are.
struct DiagnoseRequest {
  at::Tensor theta, x;  // [S, D] and [S, C], data units
  DiagnoseConfig config;
  std::string sampler;
  SamplerOptions sampling;
  bool steps_given = false;
  uint64_t seed = 0;
};

struct Diagnosis {
  CalibrationReport report;
  SamplerOptions sampling;  // the sampler the posterior draws came from
};

// Checks the request (rows of theta and x alike, steps >= 1, a sampler the model's path takes)
// before any work, then diagnose_model.
Diagnosis run_diagnose_request(const Model& model, const DiagnoseRequest& request, const ProgressFn& progress = {});

}  // namespace sbgm
