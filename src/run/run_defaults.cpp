#include "sbgm/run/run_defaults.hpp"

#include <algorithm>
#include <cmath>

namespace sbgm {
namespace {

// Conditional runs. sbi stops NPE after 20 epochs without a better validation loss; a score
// model's held-out loss is noisier (one t and noise per held-out draw), so it waits longer, and
// never less than the EMA's horizon 1 / (1 - decay) in steps: the held-out loss is the EMA
// weights', which take that long to show a change (at 10^3 pairs, 30 epochs are only 120 steps
// and stopped training far too soon). The cap bounds a run whose loss keeps creeping down.
constexpr int64_t kPatienceEpochs = 30;
constexpr int64_t kMaxEpochs = 3000;
constexpr int64_t kMaxSteps = 100000;
constexpr double kHeldOutFraction = 0.1;
constexpr int64_t kFewestRowsToHoldOut = 50;  // below this a tenth is too few rows to judge by

// Unconditional runs: today's fixed recipe.
constexpr int64_t kUnconditionalSteps = 20000;

// Sampling (see the header).
constexpr int64_t kEulerMaruyamaSteps = 1000;
constexpr int64_t kPosteriorNoiseLevels = 50;

}  // namespace

const std::vector<std::string>& auto_keys() {
  static const std::vector<std::string> keys{"train.steps",          "train.schedule", "train.validation_fraction",
                                             "train.patience",       "train.validate_every", "sample.sampler",
                                             "sample.steps"};
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
  const bool stops_early = t.validation_fraction > 0 && conditional;
  // Steps of one epoch over the rows trained on.
  const int64_t held = static_cast<int64_t>(std::llround(t.validation_fraction * static_cast<double>(facts.rows)));
  const int64_t epoch = std::max<int64_t>(1, (std::max<int64_t>(facts.rows - held, 1) + t.batch_size - 1) / t.batch_size);
  if (t.validate_every == kAutoCount) t.validate_every = stops_early ? epoch : 0;
  if (t.patience == kAutoCount) {
    const double horizon = t.ema_decay > 0 ? 1.0 / (1.0 - t.ema_decay) : 0.0;  // steps
    const int64_t interval = t.validate_every > 0 ? t.validate_every : t.log_every;
    const auto horizon_validations = static_cast<int64_t>(std::ceil(horizon / static_cast<double>(interval)));
    t.patience = stops_early ? std::max(kPatienceEpochs, horizon_validations) : 0;
  }
  if (t.steps == kAutoCount) t.steps = stops_early ? std::min(kMaxSteps, kMaxEpochs * epoch) : kUnconditionalSteps;
  if (t.schedule == LRSchedule::Auto) t.schedule = stops_early ? LRSchedule::Constant : LRSchedule::Cosine;
  SampleConfig& s = config.sample;
  const bool posterior = conditional && !is_image_net(config.model.kind);
  if (s.sampler == "auto") s.sampler = to_string(posterior ? SamplerKind::EDMHeun : SamplerKind::EulerMaruyama);
  if (s.steps == kAutoCount)
    s.steps = sampler_kind_from_string(s.sampler) == SamplerKind::EDMHeun ? kPosteriorNoiseLevels : kEulerMaruyamaSteps;
  return config;
}

SamplerOptions sampling_for(const RunConfig& config, int64_t cond_dim, std::optional<SamplerKind> asked) {
  const SampleConfig run = settle_auto_keys(config, DataFacts{0, cond_dim}).sample;
  const SamplerKind own = sampler_kind_from_string(run.sampler);
  SamplerOptions options;
  options.kind = asked.value_or(own);
  const bool levels = options.kind == SamplerKind::EDMHeun, own_levels = own == SamplerKind::EDMHeun;
  if (levels == own_levels) options.steps = run.steps;
  else options.steps = levels ? EDMHeunConfig{}.steps : kEulerMaruyamaSteps;
  return options;
}

}  // namespace sbgm
