#include "sbgm/run/run_defaults.hpp"

#include <algorithm>
#include <cmath>

namespace sbgm {
namespace {

// Conditional runs (simulation-based inference). A posterior's fine structure — two moons'
// crescents are a hundredth of the prior wide — is learnt last, at the smallest noise levels,
// and only once the learning rate decays: on two moons at 10^4 pairs, a constant rate stopped
// by the held-out loss reached C2ST 0.70, a cosine decay over 10,000 steps 0.58 and over 30,000
// steps 0.53 (docs/sbi.md). The held-out loss, dominated by the large noise levels, does not see
// this, so it decides only which EMA weights are kept and stops a run that memorises: patience
// is a quarter of the run, and never less than 30 epochs. Validations are spread over the run
// (about a hundred), but never more often than once an epoch, so that they stay cheap.
constexpr int64_t kConditionalSteps = 30000;
constexpr int64_t kPatienceEpochs = 30;
constexpr int64_t kValidations = 100;
constexpr double kHeldOutFraction = 0.1;
constexpr int64_t kFewestRowsToHoldOut = 50;  // below this a tenth is too few rows to judge by

// Unconditional runs: today's fixed recipe.
constexpr int64_t kUnconditionalSteps = 20000;

// Sampling (see the header). Posteriors: Euler-Maruyama at 200 steps. A deterministic sampler
// (EDM's Heun, or the probability-flow ODE) carries a small relative error of the score at the
// large noise levels through all the decades between sigma_max and the posterior's width, and
// comes out too wide: a briefly trained posterior of sd 0.09 sampled with sd 0.32 by both, 0.095
// by Euler-Maruyama at 100 or 1000 steps; the reverse SDE forgets such errors as it goes.
// Measured at 10^4 pairs (docs/sbi.md): gaussian_linear 0.637 (EDM, 50 levels) -> 0.579 (EM 200;
// EM 1000 0.582), two_moons 0.524 -> 0.521.
constexpr int64_t kEulerMaruyamaSteps = 1000;
constexpr int64_t kPosteriorSteps = 200;
constexpr int64_t kNoiseLevels = 50;  // edm, when asked for in the config without its steps
// Flow models: the ODE's steps when a fixed-step solver is asked for (the default solver is
// adaptive and takes the steps its tolerance needs).
constexpr int64_t kFlowSteps = 100;

}  // namespace

const std::vector<std::string>& auto_keys() {
  static const std::vector<std::string> keys{"sde.type",       "model.baseline",       "train.steps",
                                             "train.schedule", "train.validation_fraction", "train.patience",
                                             "train.validate_every", "sample.sampler", "sample.steps", "data.cond_transform"};
  return keys;
}

TrainConfig train_config_with_auto_keys() {
  TrainConfig t;
  t.steps = kAutoCount;
  t.schedule = LRSchedule::Auto;
  t.validation_fraction = kAutoFraction;
  t.patience = kAutoCount;
  t.validate_every = kAutoCount;
  return t;
}

RunConfig settle_auto_keys(RunConfig config, const DataFacts& facts) {
  TrainConfig& t = config.train;
  const bool conditional = facts.cond_dim > 0;
  if (t.validation_fraction == kAutoFraction)
    t.validation_fraction = conditional && facts.rows >= kFewestRowsToHoldOut ? kHeldOutFraction : 0.0;
  if (t.steps == kAutoCount) t.steps = conditional ? kConditionalSteps : kUnconditionalSteps;
  if (t.schedule == LRSchedule::Auto) t.schedule = LRSchedule::Cosine;
  const bool held_out = t.validation_fraction > 0 && conditional;
  // Steps of one epoch over the rows trained on.
  const int64_t held = static_cast<int64_t>(std::llround(t.validation_fraction * static_cast<double>(facts.rows)));
  const int64_t epoch = std::max<int64_t>(1, (std::max<int64_t>(facts.rows - held, 1) + t.batch_size - 1) / t.batch_size);
  if (t.validate_every == kAutoCount) t.validate_every = held_out ? std::max(epoch, t.steps / kValidations) : 0;
  if (t.patience == kAutoCount) {
    const int64_t interval = t.validate_every > 0 ? t.validate_every : t.log_every;
    const int64_t quarter = (t.steps / 4 + interval - 1) / interval, epochs = (kPatienceEpochs * epoch + interval - 1) / interval;
    t.patience = held_out ? std::max(quarter, epochs) : 0;
  }
  if (config.data.cond_transform == CondTransform::Auto)
    config.data.cond_transform = conditional && facts.cond_log_symmetrises ? CondTransform::Log : CondTransform::None;
  SampleConfig& s = config.sample;
  const bool posterior = conditional && !is_image_net(config.model.kind);
  const bool flow = objective_of(config.model.output) == Objective::Flow;
  if (config.sde_auto) config.sde.kind = flow ? SDEKind::Linear : posterior ? SDEKind::VE : SDEKind::VP;
  config.sde_auto = false;
  // The linear-Gaussian fit stays an option: excellent where the posterior is Gaussian, harmful
  // where it has fine structure (header).
  if (config.model.baseline == Baseline::Auto) config.model.baseline = Baseline::None;
  const bool own_sampler = s.sampler == "auto";
  // A flow model, or any model on the linear path (which has no reverse SDE), samples by the ODE.
  const bool ode = flow || config.sde.kind == SDEKind::Linear;
  if (own_sampler) s.sampler = to_string(ode ? SamplerKind::ProbabilityFlow : SamplerKind::EulerMaruyama);
  if (s.steps == kAutoCount) {
    const SamplerKind kind = sampler_kind_from_string(s.sampler);
    if (kind == SamplerKind::EDMHeun) s.steps = kNoiseLevels;
    else if (is_multistep(kind)) s.steps = MultistepConfig{}.steps;
    else if (ode && own_sampler) s.steps = kFlowSteps;
    else s.steps = posterior && own_sampler ? kPosteriorSteps : kEulerMaruyamaSteps;
  }
  return config;
}

namespace {
// Samplers whose steps mean the same thing, so that a run's sample.steps carries over between
// them: EDM's noise levels, the few steps of the multistep solvers, the many of the others.
int step_family(SamplerKind kind) { return kind == SamplerKind::EDMHeun ? 1 : is_multistep(kind) ? 2 : 0; }
}  // namespace

SamplerOptions sampling_for(const RunConfig& config, int64_t cond_dim, std::optional<SamplerKind> asked) {
  const SampleConfig run = settle_auto_keys(config, DataFacts{0, cond_dim}).sample;
  const SamplerKind own = sampler_kind_from_string(run.sampler);
  SamplerOptions options;
  options.kind = asked.value_or(own);
  if (step_family(options.kind) == step_family(own)) options.steps = run.steps;
  else if (options.kind == SamplerKind::EDMHeun) options.steps = EDMHeunConfig{}.steps;
  else if (is_multistep(options.kind)) options.steps = MultistepConfig{}.steps;
  else options.steps = kEulerMaruyamaSteps;
  return options;
}

}  // namespace sbgm
