#pragma once
// The settings a run chooses for itself. Keys whose value is "auto" (the default of every key
// listed in auto_keys()) are settled from what the run's data is: how many rows, whether they
// come with conditions. The settled config is what the run directory's config.toml and the
// checkpoint record, so every choice can be read back and overridden.
//
// Conditional data (simulation-based inference: θ in --data, x in --cond) gets the recipe that
// needs no tuning at any simulation budget: 30,000 steps (or 300 epochs where that is more, up to
// 200,000 steps) with a cosine decay of the learning rate, a tenth of the pairs held out and validated about a hundred times (at most once an
// epoch), the best EMA weights kept, and training stopped early only when the held-out loss has
// not improved for a quarter of the run (and 30 epochs): a run that memorises. Unconditional
// data gets 20,000 steps with a cosine decay and no held-out rows, as before there were auto
// keys.
//
// The model of a posterior (conditional vectors) uses the VE SDE: at 10^4 pairs it beat VP on
// Gaussian-linear (fast C2ST 0.637 against 0.669), two moons (exact, 0.524 against 0.528) and the
// Gaussian mixture (exact, 0.534 against 0.556). Other runs keep VP. model.baseline (a network on a
// linear-Gaussian fit of the pairs, nets/gaussian_baseline.hpp) is chosen by training: a posterior run with held-out
// pairs trains the network with the fit and without it and keeps the one with the lower held-out
// loss (train_run; the fit is best where the posterior is near Gaussian — Gaussian-linear 0.516
// against 0.579 — and harmful where it has fine structure — two moons 0.544 against 0.521;
// docs/sbi.md). settle_auto_keys settles it to none, as for every other run. Which networks are
// trained is model.candidates: on a GPU a small transformer as well (candidate_config below),
// which beat the MLP where each parameter depends on a few features of x and lost to it
// elsewhere, the held-out loss ordering them as C2ST did on all six tasks tried; on a CPU, where
// it costs as much as the other two together, only when asked for.
//
// The network of a posterior on the VE path sees x_t at unit variance (model.input_scaling =
// unit, nets/scaled_input.hpp): slcp at 10^4 0.776 against 0.790 (fast C2ST, mean of three
// seeds, within their spread), the other tasks unchanged (docs/sbi.md). Other runs see x_t as it is.
//
// Conditions that are all positive and heavy-tailed (log_symmetrises) are given to the network as
// their logarithm (data.cond_transform; data/feature_transform.hpp); other conditions as they are.
// A posterior's parameters that are positive and closer to Gaussian as their log (a log-normal
// prior: sir's, lotka_volterra's; log_fits_better) are modelled as their log where the user gives
// no bounds (data.transform; facts.log_fits_better), as `--lower 0` would map them: every sample
// positive, the prior Gaussian in the network's space.
//
// A posterior looks for the box of its prior in its training parameters (data.bounds = find,
// Bounds::find; the bounds found are settled into data.lower / data.upper, facts.found) and keeps
// its samples within it by drawing again those that fall outside (data.keep_within = reject): on
// gaussian_linear_uniform at 10^4 the unbounded network put a third of its draws outside the
// prior's [-1, 1]^10. Modelling the parameters through the box's logit map instead leaks nothing
// either but bends the geometry of posteriors well inside the box (two moons 0.521 -> 0.534,
// slcp 0.76 -> 0.80), where dropping the draws outside changes nothing. Bounds the user gives are
// mapped (data.keep_within = map): they state a support whose map may suit the parameters (the
// log map of lotka_volterra's positive, log-normal parameters: 0.861 -> 0.824, exact C2ST;
// docs/sbi.md).
//
// A posterior whose conditions are elements of w features that are exchangeable given θ (iid
// draws: slcp's four points) reads them as a set (data.cond_set = w): the pairs are tested for it,
// the smallest such w taken (find_set_elements, data/exchangeable_elements.hpp; facts.cond_set).
// Shown in random orders while training, slcp gave C2ST 0.715 against 0.760 at 10^4 pairs and 0.877
// against 0.948 at 10^3 (fast C2ST, seed 0); no other sbibm task's conditions pass the test at
// 10^3 to 10^5 pairs (docs/sbi.md, "Sets found in the pairs").
//
// Sampling: a conditional model of vectors (a posterior p(theta | x)) is sampled along the
// reverse SDE (sample.lambda = 0) by DPM-Solver++ 2M in 50 steps (Euler-Maruyama at 200 steps was
// the default until 2026-12-03: the same posteriors in four times the time); image and
// unconditional models with Euler-Maruyama at 1000 steps. Deterministic samplers (EDM's Heun at 50
// levels was the posterior default until 2026-12-02) carry a small relative error of the score at
// large noise levels through every decade down to the posterior's width and come out too wide; the
// reverse SDE corrects such errors as it goes (run_defaults.cpp, docs/sbi.md).
//
// A flow-matching model (model.objective = flow) takes the linear path (sde.type = linear) and
// the probability-flow ODE (sample.sampler = ode), the only sampler that path has.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sbgm/run/run_config.hpp"
#include "sbgm/sample/make_sampler.hpp"

namespace sbgm {

// What the choices depend on.
struct DataFacts {
  int64_t rows = 0;      // training rows before any are held out (0: not known yet)
  int64_t cond_dim = 0;  // condition features (0: unconditional)
  bool cond_log_symmetrises = false;  // the conditions are positive and heavy-tailed (log_symmetrises)
  Bounds found{};        // the bounds the training rows show (Bounds::find; none: none, or not looked for)
  int64_t cond_set = 0;  // the width of the exchangeable elements the conditions show (0: none, or not looked for)
  bool log_fits_better = false;  // the data are positive and a Gaussian fits their log better (log_fits_better)
};

// Whether the model of this config (conditions of cond_dim features) is a posterior: conditional
// vectors, the runs the SBI recipe above is for.
bool is_posterior(const RunConfig& config, int64_t cond_dim);
// Whether a run of this config looks for bounds in its training rows (data.bounds, settled or
// not, and no bounds given).
bool looks_for_bounds(const RunConfig& config, int64_t cond_dim);

// The keys whose default is "auto".
const std::vector<std::string>& auto_keys();
// How "auto" is held in a numeric field (a value no key accepts otherwise).
constexpr int64_t kAutoCount = -1;
constexpr double kAutoFraction = -1.0;
constexpr double kAutoLambda = -1.0;

// config with every "auto" key settled for data described by facts; other keys are kept.
RunConfig settle_auto_keys(RunConfig config, const DataFacts& facts);

// Whether a run of this config on data described by facts trains the networks of
// model.candidates and keeps the one with the lowest held-out loss: a posterior with held-out
// pairs and model.baseline = auto (not with train.cond_dropout, which the fit cannot train with,
// nor with a TorchScript module).
bool chooses_among_candidates(const RunConfig& config, const DataFacts& facts);
// The networks model.baseline = auto chooses among (model.candidates), in the order they are
// trained: "none" and "gaussian" are model.type without and with the linear-Gaussian fit,
// "transformer" the transformer of candidate_config.
const std::vector<std::string>& network_candidates();
// The names a model.candidates other than "auto" lists, in network_candidates()' order;
// InvalidArgument naming an empty list or an unknown or repeated name.
std::vector<std::string> candidates_of(const RunConfig& config);
// The config the candidate called name trains on data described by facts: run's, with
// model.baseline none or gaussian, or for "transformer" model.type = transformer of 2 blocks of 32
// features (mlp_ratio 4, 4 heads) without the fit, trained for a third of run's train.steps.
RunConfig candidate_config(const RunConfig& run, const std::string& name, const DataFacts& facts);

// How to sample a model of this config (taking conditions of cond_dim features): the run's
// sampler, steps and lambda (sample.lambda, set only where it is not the sampler's own), or the
// sampler asked for by name with its steps — the run's when it samples with that kind of steps
// (edm's noise levels, the multistep solvers' few steps, or the others' many), else that sampler's
// default (18 levels for edm; 20 steps for ddim, dpmpp2m, dpmpp3m and unipc, 50 for a posterior;
// 1000 steps for the others, 200 for a posterior).
SamplerOptions sampling_for(const RunConfig& config, int64_t cond_dim, std::optional<SamplerKind> asked = {});

}  // namespace sbgm
