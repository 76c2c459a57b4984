#include "sbgm/run/run_defaults.hpp"

#include "sbgm/util/error.hpp"

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
// The run is at least 30,000 steps, or 300 epochs where that is more (up to 200,000 steps): with
// 10^5 pairs, 30,000 steps are 85 epochs and the held-out loss is still falling at the end; slcp
// at 10^5 reached C2ST 0.698 in 30,000 steps and 0.639 in 100,000 (held-out loss 1.930 -> 1.888,
// its best at 90,000; docs/sbi.md). At 10^4 pairs 30,000 steps are already 850 epochs.
constexpr int64_t kConditionalSteps = 30000;
constexpr int64_t kConditionalEpochs = 300;
constexpr int64_t kMostConditionalSteps = 200000;
constexpr int64_t kPatienceEpochs = 30;
constexpr int64_t kValidations = 100;
constexpr double kHeldOutFraction = 0.1;
constexpr int64_t kFewestRowsToHoldOut = 50;  // below this a tenth is too few rows to judge by

// Unconditional runs: today's fixed recipe.
constexpr int64_t kUnconditionalSteps = 20000;

// Sampling (see the header). Posteriors: the reverse SDE (lambda 0), by DPM-Solver++ 2M's
// exponential integrator in 50 steps. A deterministic sampler (EDM's Heun, or the probability-flow
// ODE) carries a small relative error of the score at the large noise levels through all the
// decades between sigma_max and the posterior's width, and comes out too wide: a briefly trained
// posterior of sd 0.09 sampled with sd 0.32 by both, 0.095 by Euler-Maruyama at 100 or 1000 steps;
// the reverse SDE forgets such errors as it goes. Measured at 10^4 pairs (docs/sbi.md):
// gaussian_linear 0.637 (EDM, 50 levels) -> 0.579 (EM 200; EM 1000 0.582), two_moons 0.524 ->
// 0.521; and the reverse SDE by dpmpp2m in 50 steps matches Euler-Maruyama's 200 in a quarter of
// the time on every sbibm task (docs/sbi.md, "The reverse SDE in 50 steps").
constexpr int64_t kEulerMaruyamaSteps = 1000;
constexpr int64_t kPosteriorSteps = 200;           // em
constexpr int64_t kPosteriorMultistepSteps = 50;   // ddim, dpmpp2m, dpmpp3m, unipc
constexpr double kPosteriorLambda = 0;
constexpr int64_t kNoiseLevels = 50;  // edm, when asked for in the config without its steps
// The transformer among a posterior's candidates (model.candidates): 2 blocks of 32 features cost
// a training step a quarter of the 4 blocks of 64 (0.031 s against 0.124 s on 2 cores, batch 256,
// Gaussian-linear-uniform's 20 tokens) and did as well: 0.549 against 0.556 there at 10^4, fast
// C2ST (docs/sbi.md, "A smaller transformer"). Trained by default where a GPU makes it cheap, for
// a third of the run's steps: there, 10,000 steps scored 0.549 (best held-out loss 4.3949) and the
// run's 30,000 (stopped by the held-out loss at 23,100) 0.555 (4.3917) in 2.5 times the time.
constexpr int64_t kTransformerWidth = 32;
constexpr int64_t kTransformerDepth = 2;
constexpr double kTransformerMlpRatio = 4.0;
constexpr int64_t kTransformerHeads = 4;
constexpr int64_t kTransformerStepShare = 3;  // the run's steps over the transformer's

// Flow models: the ODE's steps when a fixed-step solver is asked for (the default solver is
// adaptive and takes the steps its tolerance needs).
constexpr int64_t kFlowSteps = 100;


// A sampler's steps when neither the config nor the command gives them (edm: edm_levels).
int64_t default_steps(SamplerKind kind, bool posterior, int64_t edm_levels) {
  if (kind == SamplerKind::EDMHeun) return edm_levels;
  if (is_multistep(kind)) return posterior ? kPosteriorMultistepSteps : MultistepConfig{}.steps;
  return posterior ? kPosteriorSteps : kEulerMaruyamaSteps;
}

}  // namespace

const std::vector<std::string>& auto_keys() {
  static const std::vector<std::string> keys{"sde.type",       "model.baseline",       "train.steps",
                                             "train.schedule", "train.validation_fraction", "train.patience",
                                             "train.validate_every", "sample.sampler", "sample.steps", "sample.lambda", "data.cond_transform",
                                             "model.input_scaling", "data.bounds", "data.keep_within", "model.candidates",
                                             "data.cond_set", "data.transform"};
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

bool is_posterior(const RunConfig& config, int64_t cond_dim) { return cond_dim > 0 && !is_image_net(config.model.kind); }

bool looks_for_bounds(const RunConfig& config, int64_t cond_dim) {
  const BoundsRule rule = config.data.bounds;
  const bool finding = rule == BoundsRule::Find || (rule == BoundsRule::Auto && is_posterior(config, cond_dim));
  return finding && config.data.lower.empty() && config.data.upper.empty();
}

namespace {
// train.validation_fraction, settled.
double held_out_fraction(const TrainConfig& t, const DataFacts& facts) {
  if (t.validation_fraction != kAutoFraction) return t.validation_fraction;
  return facts.cond_dim > 0 && facts.rows >= kFewestRowsToHoldOut ? kHeldOutFraction : 0.0;
}
}  // namespace

bool chooses_among_candidates(const RunConfig& config, const DataFacts& facts) {
  return config.model.baseline == Baseline::Auto && is_posterior(config, facts.cond_dim) &&
         config.model.kind != NetKind::TorchScript && config.train.cond_dropout == 0 &&
         held_out_fraction(config.train, facts) > 0;
}

RunConfig settle_auto_keys(RunConfig config, const DataFacts& facts) {
  TrainConfig& t = config.train;
  // What the settling divides by, checked before it does (the rest is checked once settled).
  if (t.batch_size < 1) throw InvalidArgument("train.batch_size must be at least 1");
  if (t.log_every < 1) throw InvalidArgument("train.log_every must be at least 1");
  const bool conditional = facts.cond_dim > 0;
  const bool chooses = chooses_among_candidates(config, facts);  // before model.baseline is settled
  t.validation_fraction = held_out_fraction(t, facts);
  // Steps of one epoch over the rows trained on.
  const int64_t held = static_cast<int64_t>(std::llround(t.validation_fraction * static_cast<double>(facts.rows)));
  const int64_t epoch = std::max<int64_t>(1, (std::max<int64_t>(facts.rows - held, 1) + t.batch_size - 1) / t.batch_size);
  if (t.steps == kAutoCount)
    t.steps = conditional ? std::clamp(kConditionalEpochs * epoch, kConditionalSteps, kMostConditionalSteps) : kUnconditionalSteps;
  if (t.schedule == LRSchedule::Auto) t.schedule = LRSchedule::Cosine;
  const bool held_out = t.validation_fraction > 0 && conditional;
  if (t.validate_every == kAutoCount) t.validate_every = held_out ? std::max(epoch, t.steps / kValidations) : 0;
  if (t.patience == kAutoCount) {
    const int64_t interval = t.validate_every > 0 ? t.validate_every : t.log_every;
    const int64_t quarter = (t.steps / 4 + interval - 1) / interval, epochs = (kPatienceEpochs * epoch + interval - 1) / interval;
    t.patience = held_out ? std::max(quarter, epochs) : 0;
  }
  if (config.data.cond_transform == FeatureTransform::Auto)
    config.data.cond_transform = conditional && facts.cond_log_symmetrises ? FeatureTransform::Log : FeatureTransform::None;
  SampleConfig& s = config.sample;
  const bool posterior = is_posterior(config, facts.cond_dim);
  DataConfig& d = config.data;
  if (d.bounds == BoundsRule::Auto) d.bounds = posterior ? BoundsRule::Find : BoundsRule::None;
  // Parameters of a log-normal-like prior are modelled as their log (header), unless the user
  // gave bounds: those state the support.
  if (d.transform == FeatureTransform::Auto)
    d.transform = posterior && d.lower.empty() && d.upper.empty() && facts.log_fits_better ? FeatureTransform::Log
                                                                                           : FeatureTransform::None;
  const bool found = d.bounds == BoundsRule::Find && d.lower.empty() && d.upper.empty() && !facts.found.none();
  if (found) {
    d.lower = facts.found.lower_list();
    d.upper = facts.found.upper_list();
  }
  if (d.keep_within == KeepWithin::Auto) d.keep_within = found ? KeepWithin::Reject : KeepWithin::Map;
  // Conditions whose elements the pairs show to be exchangeable are read as a set (header).
  if (d.cond_set == kAutoCount) d.cond_set = posterior ? facts.cond_set : 0;
  const bool flow = objective_of(config.model.output) == Objective::Flow;
  if (config.sde_auto) config.sde.kind = flow ? SDEKind::Linear : posterior ? SDEKind::VE : SDEKind::VP;
  config.sde_auto = false;
  // The linear-Gaussian fit stays an option: excellent where the posterior is Gaussian, harmful
  // where it has fine structure (header).
  if (config.model.baseline == Baseline::Auto) config.model.baseline = Baseline::None;
  // The networks a posterior with held-out pairs chooses among by their held-out loss (header):
  // the transformer as well where a GPU makes it cheap. A run that chooses nothing trains its one
  // network.
  if (config.candidates == "auto")
    config.candidates = !chooses                               ? to_string(config.model.baseline)
                        : config.device.rfind("cuda", 0) == 0 ? "none,gaussian,transformer"
                                                              : "none,gaussian";
  // x_t at unit variance where it otherwise spreads to sigma_max: a posterior on the VE path
  // (slcp at 10^4, fast C2ST over seeds 0-2: 0.759, 0.772, 0.796 against 0.796, 0.792, 0.783 —
  // 0.015 better on average, within the seeds' spread; the other tasks unchanged; docs/sbi.md).
  if (config.model.input_scaling == InputScaling::Auto)
    config.model.input_scaling = posterior && config.sde.kind == SDEKind::VE ? InputScaling::Unit : InputScaling::None;
  const bool own_sampler = s.sampler == "auto";
  // A flow model, or any model on the linear path (which has no reverse SDE), samples by the ODE.
  const bool ode = flow || config.sde.kind == SDEKind::Linear;
  if (own_sampler)
    s.sampler = to_string(ode ? SamplerKind::ProbabilityFlow : posterior ? SamplerKind::DPMSolverPP2M : SamplerKind::EulerMaruyama);
  const SamplerKind kind = sampler_kind_from_string(s.sampler);
  if (s.lambda == kAutoLambda) s.lambda = own_sampler && posterior && !ode ? kPosteriorLambda : own_lambda(kind);
  if (s.steps == kAutoCount) s.steps = ode && own_sampler ? kFlowSteps : default_steps(kind, posterior, kNoiseLevels);
  return config;
}

const std::vector<std::string>& network_candidates() {
  static const std::vector<std::string> names{"none", "gaussian", "transformer"};
  return names;
}

std::vector<std::string> candidates_of(const RunConfig& config) {
  const std::string& text = config.candidates;
  std::vector<std::string> listed;
  std::string item;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != ',') {
      if (text[i] != ' ' && text[i] != '[' && text[i] != ']' && text[i] != '"') item += text[i];
      continue;
    }
    const auto& known = network_candidates();
    if (std::find(known.begin(), known.end(), item) == known.end())
      throw InvalidArgument("model.candidates: " + (item.empty() ? std::string("an empty name") : "'" + item + "'") +
                            " is no candidate (none, gaussian or transformer, comma-separated)");
    if (std::find(listed.begin(), listed.end(), item) != listed.end())
      throw InvalidArgument("model.candidates: " + item + " is listed twice");
    listed.push_back(item);
    item.clear();
  }
  std::vector<std::string> ordered;
  for (const auto& name : network_candidates())
    if (std::find(listed.begin(), listed.end(), name) != listed.end()) ordered.push_back(name);
  return ordered;
}

RunConfig candidate_config(const RunConfig& run, const std::string& name, const DataFacts& facts) {
  RunConfig c = run;
  c.model.baseline = name == "gaussian" ? Baseline::Gaussian : Baseline::None;
  if (name == "transformer") {
    c.train.steps = std::max<int64_t>(1, settle_auto_keys(run, facts).train.steps / kTransformerStepShare);
    c.model.kind = NetKind::Transformer;
    c.model.width = kTransformerWidth;
    c.model.depth = kTransformerDepth;
    c.model.mlp_ratio = kTransformerMlpRatio;
    c.model.heads = kTransformerHeads;
  }
  return c;
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
  options.steps = step_family(options.kind) == step_family(own)
                      ? run.steps
                      : default_steps(options.kind, is_posterior(config, cond_dim), EDMHeunConfig{}.steps);
  // The run's lambda goes with its own sampler only.
  if (options.kind == own && takes_lambda(own) && run.lambda != own_lambda(own)) options.lambda = run.lambda;
  return options;
}

}  // namespace sbgm
