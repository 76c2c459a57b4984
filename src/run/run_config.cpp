#include "sbgm/run/run_config.hpp"

#include <toml++/toml.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "ascii_toml.hpp"
#include "sbgm/run/run_defaults.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

// Text <-> value for each kind of field.
template <class T>
T parse_value(const std::string& key, const std::string& text);

template <>
int64_t parse_value<int64_t>(const std::string& key, const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);  // accepts 1e4 as well as 10000
    if (used == text.size() && std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9e15) return static_cast<int64_t>(v);
  } catch (const std::exception&) {
  }
  throw InvalidArgument(key + ": expected an integer, got '" + text + "'");
}
template <>
uint64_t parse_value<uint64_t>(const std::string& key, const std::string& text) {
  const int64_t v = parse_value<int64_t>(key, text);
  if (v < 0) throw InvalidArgument(key + ": expected a non-negative integer, got '" + text + "'");
  return static_cast<uint64_t>(v);
}
template <>
double parse_value<double>(const std::string& key, const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw InvalidArgument(key + ": expected a number, got '" + text + "'");
}
template <>
bool parse_value<bool>(const std::string& key, const std::string& text) {
  if (text == "true" || text == "1" || text == "yes") return true;
  if (text == "false" || text == "0" || text == "no") return false;
  throw InvalidArgument(key + ": expected true or false, got '" + text + "'");
}
template <>
std::string parse_value<std::string>(const std::string&, const std::string& text) {
  return text;
}
// A list: "1,2,2" (brackets and spaces allowed, as TOML writes it; empty: no items), each item
// read by parse_item; what names the kind of list in the error.
template <class T, class ParseItem>
std::vector<T> parse_list(const std::string& key, const std::string& text, const std::string& what, ParseItem parse_item) {
  std::string inner;
  for (char ch : text)
    if (ch != '[' && ch != ']' && ch != ' ') inner += ch;
  std::vector<T> items;
  std::stringstream in(inner);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) throw InvalidArgument(key + ": expected a list of " + what + ", got '" + text + "'");
    items.push_back(parse_item(key, item));
  }
  if (!inner.empty() && inner.back() == ',') throw InvalidArgument(key + ": expected a list of " + what + ", got '" + text + "'");
  return items;
}
template <>
std::vector<int64_t> parse_value<std::vector<int64_t>>(const std::string& key, const std::string& text) {
  return parse_list<int64_t>(key, text, "integers like 1,2,2", parse_value<int64_t>);
}
// Numbers, where inf and -inf stand for an open side of a bound.
template <>
std::vector<double> parse_value<std::vector<double>>(const std::string& key, const std::string& text) {
  return parse_list<double>(key, text, "numbers like -1,0,inf", [](const std::string& k, const std::string& item) {
    if (item == "inf" || item == "+inf") return std::numeric_limits<double>::infinity();
    if (item == "-inf") return -std::numeric_limits<double>::infinity();
    return parse_value<double>(k, item);
  });
}

std::string format_value(int64_t v) { return std::to_string(v); }
std::string format_value(uint64_t v) { return std::to_string(v); }
std::string format_value(bool v) { return v ? "true" : "false"; }
std::string format_value(const std::string& v) { return v; }
// The shortest text that reads back as the same double (0.1, not 0.10000000000000001).
std::string format_value(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  for (int precision = 1; precision <= 17; ++precision) {
    std::ostringstream s;
    s.precision(precision);
    s << v;
    if (std::stod(s.str()) == v) return s.str();
  }
  return std::to_string(v);
}
template <class T>
std::string format_value(const std::vector<T>& v) {
  std::string text;
  for (size_t i = 0; i < v.size(); ++i) text += (i ? "," : "") + format_value(v[i]);
  return text;
}

struct Entry {
  std::string name, help;
  enum class Toml { Plain, String, List } toml;  // how the value is written in TOML
  std::function<void(RunConfig&, const std::string&)> set;
  std::function<std::string(const RunConfig&)> get;
};

// A plain field: FieldOf(c) returns a reference to it.
template <class T, class FieldOf>
Entry field(std::string name, std::string help, FieldOf of) {
  const auto toml = std::is_same_v<T, std::string>                                                     ? Entry::Toml::String
                    : std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<double>> ? Entry::Toml::List
                                                                                                       : Entry::Toml::Plain;
  Entry e{name, std::move(help), toml, nullptr, nullptr};
  e.set = [name, of](RunConfig& c, const std::string& text) { of(c) = parse_value<T>(name, text); };
  e.get = [of](const RunConfig& c) { return format_value(of(const_cast<RunConfig&>(c))); };
  return e;
}

// A numeric field whose default is "auto" (run_defaults.hpp): the sentinel stands for it.
template <class T, class FieldOf>
Entry auto_field(std::string name, std::string help, FieldOf of, T sentinel) {
  Entry e = field<T>(name, help + "; auto: the run chooses from its data", of);
  e.set = [name, of, sentinel](RunConfig& c, const std::string& text) {
    if (text == "auto") {
      of(c) = sentinel;
      return;
    }
    const T v = parse_value<T>(name, text);
    if (v == sentinel) throw InvalidArgument(name + ": expected auto or a valid value, got '" + text + "'");
    of(c) = v;
  };
  e.get = [of, sentinel](const RunConfig& c) {
    const T v = of(const_cast<RunConfig&>(c));
    return v == sentinel ? std::string("auto") : format_value(v);
  };
  return e;
}

// An enum field with its string converters.
template <class E, class FieldOf>
Entry choice(std::string name, std::string help, FieldOf of, E (*from)(const std::string&), std::string (*to)(E)) {
  Entry e{name, std::move(help), Entry::Toml::String, nullptr, nullptr};
  e.set = [of, from, name](RunConfig& c, const std::string& text) {
    try {
      of(c) = from(text);
    } catch (const InvalidArgument& err) {
      throw InvalidArgument(name + ": " + err.what());
    }
  };
  e.get = [of, to](const RunConfig& c) { return to(of(const_cast<RunConfig&>(c))); };
  return e;
}

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = [] {
    using C = RunConfig;
    std::vector<Entry> t;
    t.push_back(field<std::string>("data.dataset", "built-in dataset: circle8, ring8, swissroll, moons, checkerboard, bimodal1d", [](C& c) -> auto& { return c.data.dataset; }));
    t.push_back(field<std::string>("data.file", "training data: .npy [N, D] (float32/float64) or .csv", [](C& c) -> auto& { return c.data.file; }));
    t.push_back(field<std::string>("data.cond", "conditions, one row per training row: .npy [N, C] or .csv (empty: unconditional)", [](C& c) -> auto& { return c.data.cond; }));
    t.push_back(field<int64_t>("data.size", "rows drawn from a built-in dataset", [](C& c) -> auto& { return c.data.size; }));
    t.push_back(field<bool>("data.standardize", "train on per-feature standardised data (and conditions)", [](C& c) -> auto& { return c.data.standardize; }));
    t.push_back(field<std::string>("data.image_range", "map pixel levels onto LO,HI (e.g. -1,1 or 0,1) instead of standardising; auto: -1,1 for IDX/CIFAR-10 files; off", [](C& c) -> auto& { return c.data.image_range; }));
    t.push_back(field<int64_t>("data.levels", "pixel levels of image data (256 for 8-bit images)", [](C& c) -> auto& { return c.data.levels; }));
    t.push_back(field<std::vector<double>>("data.lower", "lower bounds of the data's features (a prior's support): one for all or one per feature, -inf for none (empty: unbounded)", [](C& c) -> auto& { return c.data.lower; }));
    t.push_back(field<std::vector<double>>("data.upper", "upper bounds of the data's features: one for all or one per feature, inf for none (empty: unbounded)", [](C& c) -> auto& { return c.data.upper; }));
    t.push_back(choice<BoundsRule>("data.bounds", "none: the bounds of data.lower / data.upper only; find: the bounds the training rows show (a prior's box support; data/bounds.hpp), written to data.lower / data.upper where those are empty; auto: find for a posterior (conditional vectors), none otherwise", [](C& c) -> auto& { return c.data.bounds; }, bounds_rule_from_string, to_string));
    t.push_back(choice<KeepWithin>("data.keep_within", "how samples are kept within data.lower / data.upper: map (the network models the data through the box's logit map) or reject (it models them as they are; samples outside are drawn again, and log p is normalised by the share kept); auto: reject for the bounds a run finds (data.bounds), map for those it is given", [](C& c) -> auto& { return c.data.keep_within; }, keep_within_from_string, to_string));
    t.push_back(auto_field<int64_t>("data.cond_set", "0, or the features of one element when each condition is a set of elements (iid draws) whose order carries nothing (auto: for a posterior the smallest such elements its training pairs show, their moments the same in every order; else 0)", [](C& c) -> auto& { return c.data.cond_set; }, kAutoCount));
    t.push_back(choice<FeatureTransform>("data.transform", "none, or log: the network models the data's logarithm (every value must be positive; samples stay positive, log p carries the log's Jacobian); auto: log for a posterior's parameters that are positive and fitted better by a Gaussian in log space (Vuong's test; a log-normal or Gamma prior), where no bounds are given", [](C& c) -> auto& { return c.data.transform; }, feature_transform_from_string, to_string));
    t.push_back(choice<FeatureTransform>("data.cond_transform", "none, or log: the conditions' logarithm (every value must be positive) is standardised and given to the network; auto: log for positive, heavy-tailed conditions", [](C& c) -> auto& { return c.data.cond_transform; }, feature_transform_from_string, to_string));
    Entry sde_type = choice<SDEKind>("sde.type", "vp, subvp, ve, cosine, or linear (flow matching's straight path x_t = (1 - t) x_0 + t z); auto: the run chooses from its data and objective", [](C& c) -> auto& { return c.sde.kind; }, sde_kind_from_string, to_string);
    sde_type.set = [set = sde_type.set](C& c, const std::string& text) {
      c.sde_auto = text == "auto";
      if (!c.sde_auto) set(c, text);
    };
    sde_type.get = [get = sde_type.get](const C& c) { return c.sde_auto ? std::string("auto") : get(c); };
    t.push_back(sde_type);
    t.push_back(field<double>("sde.beta_min", "VP/SubVP beta at t = 0", [](C& c) -> auto& { return c.sde.beta_min; }));
    t.push_back(field<double>("sde.beta_max", "VP/SubVP beta at t = 1", [](C& c) -> auto& { return c.sde.beta_max; }));
    t.push_back(field<double>("sde.sigma_min", "VE smallest noise scale", [](C& c) -> auto& { return c.sde.sigma_min; }));
    t.push_back(field<double>("sde.sigma_max", "VE largest noise scale", [](C& c) -> auto& { return c.sde.sigma_max; }));
    t.push_back(field<double>("sde.cosine_s", "cosine schedule offset s", [](C& c) -> auto& { return c.sde.cosine_s; }));
    t.push_back(field<double>("sde.cosine_max_beta", "cosine schedule: beta where the schedule ends", [](C& c) -> auto& { return c.sde.cosine_max_beta; }));
    t.push_back(field<double>("sde.T", "end time of the diffusion", [](C& c) -> auto& { return c.sde.T; }));
    t.push_back(field<double>("sde.t_eps", "smallest time trained on and sampled to", [](C& c) -> auto& { return c.sde.t_eps; }));
    t.push_back(choice<NetKind>("model.type", "mlp, resnet, transformer (a token per feature; posteriors), unet, dit, mixer, or torchscript (a module of your own: model.file)", [](C& c) -> auto& { return c.model.kind; }, net_kind_from_string, to_string));
    t.push_back(field<std::string>("model.file", "model.type = torchscript: the module, saved by torch.jit.save; forward(x, t, y: Optional[Tensor]) returns a tensor shaped like x (the checkpoint keeps the module)", [](C& c) -> auto& { return c.model.file; }));
    t.push_back(field<int64_t>("model.width", "hidden width (mlp, resnet), base channels (unet), token width (transformer, dit, mixer)", [](C& c) -> auto& { return c.model.width; }));
    t.push_back(field<int64_t>("model.depth", "hidden layers (mlp), residual blocks (resnet), residual blocks per resolution (unet), blocks (transformer, dit, mixer)", [](C& c) -> auto& { return c.model.depth; }));
    t.push_back(choice<Activation>("model.activation", "relu, silu, gelu or tanh", [](C& c) -> auto& { return c.model.activation; }, activation_from_string, to_string));
    t.push_back(choice<TimeEmbeddingKind>("model.time_embedding", "tutorial, fourier, sinusoidal or log-time", [](C& c) -> auto& { return c.model.time_embedding; }, time_embedding_from_string, to_string));
    t.push_back(field<int64_t>("model.embedding_dim", "features of the fourier/sinusoidal time embedding", [](C& c) -> auto& { return c.model.embedding_dim; }));
    t.push_back(field<double>("model.fourier_scale", "std of the random Fourier frequencies", [](C& c) -> auto& { return c.model.fourier_scale; }));
    // The objective is a view of model.output (a flow-matching network predicts the velocity), so
    // the two can never disagree: setting it chooses the output, reading it reads the output.
    Entry objective{"model.objective", "score (denoising score matching) or flow (flow matching: the network predicts the velocity, sampled by the ODE)", Entry::Toml::String, nullptr, nullptr};
    objective.set = [](C& c, const std::string& text) {
      Objective o;
      try {
        o = objective_from_string(text);
      } catch (const InvalidArgument& err) {
        throw InvalidArgument(std::string("model.objective: ") + err.what());
      }
      if (o == Objective::Flow) c.model.output = Parameterization::Velocity;
      else if (c.model.output == Parameterization::Velocity) c.model.output = Parameterization::Noise;
    };
    objective.get = [](const C& c) { return to_string(objective_of(c.model.output)); };
    t.push_back(objective);
    t.push_back(choice<Parameterization>("model.output", "what the network predicts: score or noise (score objective), velocity (flow objective)", [](C& c) -> auto& { return c.model.output; }, parameterization_from_string, to_string));
    t.push_back(choice<Baseline>("model.baseline", "none, or gaussian: the network learns what a linear-Gaussian fit of the training pairs leaves (mlp, resnet, transformer); auto: the run chooses", [](C& c) -> auto& { return c.model.baseline; }, baseline_from_string, to_string));
    t.push_back(field<std::string>("model.candidates", "the networks a posterior run with held-out pairs and model.baseline = auto trains, keeping the one with the lowest held-out loss; comma-separated: none and gaussian (model.type without and with the linear-Gaussian fit), transformer (2 blocks of 32 features, without the fit); auto: none,gaussian, and transformer as well on cuda", [](C& c) -> auto& { return c.candidates; }));
    t.push_back(choice<InputScaling>("model.input_scaling", "none, or unit: the network sees x_t / sqrt(m(t)^2 + sigma(t)^2), at unit variance for standardised data (EDM's c_in; changes the VE path, where x_t spreads to sigma_max, and hardly the VP-type ones); auto: unit for a posterior on the VE path, else none", [](C& c) -> auto& { return c.model.input_scaling; }, input_scaling_from_string, to_string));
    t.push_back(field<int64_t>("model.ensemble", "networks of this architecture trained side by side, each on its own part of every batch, and averaged (1: one network)", [](C& c) -> auto& { return c.model.ensemble; }));
    t.push_back(choice<SummaryKind>("model.summary", "none, or a summary network for the condition trained with the score network: mlp, cnn (1-D, for series) or set (permutation-invariant, for iid points)", [](C& c) -> auto& { return c.model.summary; }, summary_kind_from_string, to_string));
    t.push_back(field<int64_t>("model.summary_dim", "features of the condition's summary", [](C& c) -> auto& { return c.model.summary_dim; }));
    t.push_back(field<int64_t>("model.summary_channels", "cnn summary: the condition's features are this many series, one after another", [](C& c) -> auto& { return c.model.summary_channels; }));
    t.push_back(field<std::vector<int64_t>>("model.channel_mult", "unet: channel multiplier of each resolution, e.g. 1,2,2", [](C& c) -> auto& { return c.model.channel_mult; }));
    t.push_back(field<std::vector<int64_t>>("model.attention_res", "unet: feature-map sides with self-attention, e.g. 16 (empty: none)", [](C& c) -> auto& { return c.model.attention_res; }));
    t.push_back(field<double>("model.dropout", "dropout after every hidden layer of mlp, in unet residual blocks and transformer/dit/mixer MLPs", [](C& c) -> auto& { return c.model.dropout; }));
    t.push_back(field<int64_t>("model.heads", "attention heads (unet, transformer, dit)", [](C& c) -> auto& { return c.model.heads; }));
    t.push_back(field<int64_t>("model.patch_size", "dit, mixer: side of a square patch", [](C& c) -> auto& { return c.model.patch_size; }));
    t.push_back(field<double>("model.mlp_ratio", "transformer, dit, mixer: channel-MLP width as a multiple of model.width", [](C& c) -> auto& { return c.model.mlp_ratio; }));
    t.push_back(field<int64_t>("model.token_mlp_dim", "mixer: token-MLP hidden size (0: width / 2)", [](C& c) -> auto& { return c.model.token_mlp_dim; }));
    t.push_back(field<int64_t>("model.cond_channels", "unet, dit, mixer: 0 = vector conditions; C = conditions are images of C channels at the data's size, taken as input channels", [](C& c) -> auto& { return c.model.cond_channels; }));
    t.push_back(auto_field<int64_t>("train.steps", "optimisation steps (at most, when training stops early)", [](C& c) -> auto& { return c.train.steps; }, kAutoCount));
    t.push_back(field<int64_t>("train.batch_size", "samples per step", [](C& c) -> auto& { return c.train.batch_size; }));
    t.push_back(field<double>("train.lr", "peak learning rate", [](C& c) -> auto& { return c.train.lr; }));
    t.push_back(field<double>("train.beta1", "Adam beta1", [](C& c) -> auto& { return c.train.adam.beta1; }));
    t.push_back(field<double>("train.beta2", "Adam beta2", [](C& c) -> auto& { return c.train.adam.beta2; }));
    t.push_back(field<double>("train.eps", "Adam epsilon", [](C& c) -> auto& { return c.train.adam.eps; }));
    t.push_back(field<double>("train.weight_decay", "decoupled weight decay (AdamW when > 0)", [](C& c) -> auto& { return c.train.adam.weight_decay; }));
    t.push_back(field<int64_t>("train.warmup_steps", "linear learning-rate warm-up steps", [](C& c) -> auto& { return c.train.warmup_steps; }));
    t.push_back(choice<LRSchedule>("train.schedule", "learning-rate schedule after warm-up: constant or cosine; auto: constant when training stops early, else cosine", [](C& c) -> auto& { return c.train.schedule; }, lr_schedule_from_string, to_string));
    t.push_back(field<double>("train.min_lr_ratio", "cosine schedule: final lr as a fraction of lr", [](C& c) -> auto& { return c.train.min_lr_ratio; }));
    t.push_back(field<double>("train.grad_clip", "clip the global gradient norm (0: off)", [](C& c) -> auto& { return c.train.grad_clip; }));
    t.push_back(field<double>("train.cond_dropout", "probability of training without the condition, for classifier-free guidance (0: off)", [](C& c) -> auto& { return c.train.cond_dropout; }));
    t.push_back(field<bool>("train.hflip", "flip each training image left-right with probability 1/2", [](C& c) -> auto& { return c.train.hflip; }));
    t.push_back(field<bool>("train.dequantize", "train on pixel levels k + u, u ~ U[0, 1) (what bits/dim evaluates; pixel data only)", [](C& c) -> auto& { return c.train.dequantize; }));
    t.push_back(field<bool>("train.skip_nonfinite", "a step whose loss or gradient is not finite changes nothing and training goes on (counted in the progress); off: it stops the run as diverged", [](C& c) -> auto& { return c.train.skip_nonfinite; }));
    t.push_back(field<double>("train.ema_decay", "EMA decay of the weights (0: off)", [](C& c) -> auto& { return c.train.ema_decay; }));
    t.push_back(choice<LossWeighting>("train.weighting", "loss weighting: sigma2 or likelihood", [](C& c) -> auto& { return c.train.loss.weighting; }, loss_weighting_from_string, to_string));
    t.push_back(choice<Precision>("train.precision", "float32, or bfloat16 for the network's matrix products and convolutions (autocast; weights, optimiser and loss stay float32)", [](C& c) -> auto& { return c.train.precision; }, precision_from_string, to_string));
    t.push_back(choice<TimeSampling>("train.time_sampling", "how t is drawn: uniform, or logsnr (uniform in log-SNR, density g^2/sigma^2: the importance sampling that suits train.weighting = likelihood), each sample reweighted so the objective is the same; or lognormal (EDM's noise levels: log(sigma/m) normal with train.log_noise_mean and train.log_noise_std, not reweighted, so the objective changes)", [](C& c) -> auto& { return c.train.loss.time_sampling; }, time_sampling_from_string, to_string));
    t.push_back(field<double>("train.log_noise_mean", "mean of log(sigma/m) for train.time_sampling = lognormal", [](C& c) -> auto& { return c.train.loss.log_noise_mean; }));
    t.push_back(field<double>("train.log_noise_std", "standard deviation of log(sigma/m) for train.time_sampling = lognormal", [](C& c) -> auto& { return c.train.loss.log_noise_std; }));
    t.push_back(field<bool>("train.stratified_time", "stratified times across the batch", [](C& c) -> auto& { return c.train.loss.stratified_time; }));
    t.push_back(field<bool>("train.ot_coupling", "flow matching of unconditional data: pair each batch's rows with its noise by minibatch optimal transport (exact; straighter paths)", [](C& c) -> auto& { return c.train.loss.ot_coupling; }));
    t.push_back(auto_field<double>("train.validation_fraction", "fraction of the rows held out to measure the loss on; the best EMA weights are kept (0: off)", [](C& c) -> auto& { return c.train.validation_fraction; }, kAutoFraction));
    t.push_back(auto_field<int64_t>("train.patience", "stop after this many validations without a better held-out loss (0: never)", [](C& c) -> auto& { return c.train.patience; }, kAutoCount));
    t.push_back(auto_field<int64_t>("train.validate_every", "steps between validations of the held-out rows (0: at every log step)", [](C& c) -> auto& { return c.train.validate_every; }, kAutoCount));
    t.push_back(field<uint64_t>("train.seed", "seed of every random draw", [](C& c) -> auto& { return c.train.seed; }));
    t.push_back(field<int64_t>("train.log_every", "steps between loss-log rows and progress updates", [](C& c) -> auto& { return c.train.log_every; }));
    t.push_back(field<int64_t>("train.checkpoint_every", "steps between checkpoints (0: at the end only)", [](C& c) -> auto& { return c.train.checkpoint_every; }));
    t.push_back(field<int64_t>("train.eval_every", "steps between evaluation sample pictures (0: off)", [](C& c) -> auto& { return c.train.eval_every; }));
    t.push_back(field<std::string>("sample.sampler", "the sampler used when none is asked for: em, pc, ancestral, ode, edm, ddim, dpmpp2m, dpmpp3m or unipc", [](C& c) -> auto& { return c.sample.sampler; }));
    t.push_back(auto_field<int64_t>("sample.steps", "that sampler's steps (edm: noise levels)", [](C& c) -> auto& { return c.sample.steps; }, kAutoCount));
    t.push_back(auto_field<double>("sample.lambda", "em, ddim, dpmpp2m, unipc: the plug-in reverse SDE dx = [f - (1 - lambda/2) g^2 s] dt + sqrt(1 - lambda) g dw that sample.sampler follows, 0 (the reverse SDE) to 1 (the probability-flow ODE); the other samplers follow their own (0: pc, ancestral; 1: ode, edm, dpmpp3m)", [](C& c) -> auto& { return c.sample.lambda; }, kAutoLambda));
    t.push_back(field<int64_t>("sample.n", "samples drawn at the end of training and at each evaluation", [](C& c) -> auto& { return c.sample.n; }));
    t.push_back(field<std::string>("run.device", "cpu, cuda or cuda:N", [](C& c) -> auto& { return c.device; }));
    t.push_back(field<int64_t>("run.threads", "CPU threads per process (0: the cores shared among this machine's processes)", [](C& c) -> auto& { return c.threads; }));
    t.push_back(field<double>("run.timeout", "seconds a process of a multi-process job waits for the others before stopping with an error", [](C& c) -> auto& { return c.timeout; }));
    return t;
  }();
  return table;
}

const Entry& find_entry(const std::string& key) {
  for (const auto& e : entries())
    if (e.name == key) return e;
  throw InvalidArgument("unknown config key '" + key + "'");
}

std::string node_text(const toml::node& node, const std::string& key) {
  if (auto v = node.value<std::string>()) return *v;
  if (auto v = node.as_integer()) return std::to_string(v->get());
  if (auto v = node.as_floating_point()) return format_value(v->get());
  if (auto v = node.as_boolean()) return v->get() ? "true" : "false";
  if (const auto* list = node.as_array()) {
    std::string text;
    for (const auto& item : *list) text += (text.empty() ? "" : ",") + node_text(item, key);
    return text;
  }
  throw InvalidArgument(key + ": expected a string, number, boolean or list");
}

}  // namespace

void RunConfig::set(const std::string& key, const std::string& value) { find_entry(key).set(*this, value); }
std::string RunConfig::get(const std::string& key) const { return find_entry(key).get(*this); }

const std::vector<RunConfig::Key>& RunConfig::keys() {
  static const std::vector<Key> keys = [] {
    std::vector<Key> k;
    for (const auto& e : entries()) k.push_back({e.name, e.help});
    return k;
  }();
  return keys;
}

void RunConfig::merge_toml(const std::string& text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(ascii_toml(text, origin), origin);
  } catch (const toml::parse_error& err) {
    const auto& where = err.source().begin;
    throw InvalidArgument(origin + ":" + std::to_string(where.line) + ": " + std::string(err.description()));
  }
  std::string objective;  // as the file states it, checked against the output after every key
  for (const auto& [section, node] : root) {
    const auto* table = node.as_table();
    if (!table) throw InvalidArgument(origin + ": unknown config key '" + std::string(section.str()) + "' (keys live in [data], [sde], [model], [train], [sample] and [run] tables)");
    for (const auto& [name, value] : *table) {
      const std::string key = std::string(section.str()) + "." + std::string(name.str());
      try {
        set(key, node_text(value, key));
      } catch (const InvalidArgument& err) {
        throw InvalidArgument(origin + ": " + err.what());
      }
      if (key == "model.objective") objective = node_text(value, key);
    }
  }
  // A file that states both keys must not let the later one overrule the earlier silently.
  if (!objective.empty() && to_string(objective_of(model.output)) != objective)
    throw InvalidArgument(origin + ": model.objective = " + objective + " disagrees with model.output = " +
                          to_string(model.output) + " (velocity is the flow objective's output; score and noise the score objective's)");
}

RunConfig config_for_earlier_files() {
  RunConfig config;
  config.model.input_scaling = InputScaling::None;
  config.data.cond_set = 0;
  config.data.transform = FeatureTransform::None;
  return config;
}

void RunConfig::merge_toml_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IOError(path + ": cannot open config file");
  std::stringstream text;
  text << in.rdbuf();
  merge_toml(text.str(), path);
}

namespace {

// A TOML basic string, quoted and escaped by toml++. (GCC 12 misreads toml++'s printer as
// indexing past the value, -Warray-bounds; the code is a plain virtual call on the value.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
std::string toml_quoted(const std::string& text) {
  std::ostringstream out;
  // Basic (double-quoted) strings always, as the rest of the file writes them; UTF-8 kept as is.
  const toml::value<std::string> value(text);
  out << toml::toml_formatter(value, toml::format_flags::allow_unicode_strings);
  return out.str();
}
#pragma GCC diagnostic pop

}  // namespace

std::string RunConfig::to_toml() const {
  std::ostringstream out;
  std::string section;
  for (const auto& e : entries()) {
    const auto dot = e.name.find('.');
    const std::string sec = e.name.substr(0, dot);
    if (sec != section) {
      out << (section.empty() ? "" : "\n") << "[" << sec << "]\n";
      section = sec;
    }
    const std::string value = e.get(*this);
    out << e.name.substr(dot + 1) << " = ";
    switch (value == "auto" ? Entry::Toml::String : e.toml) {
      case Entry::Toml::Plain: out << value; break;
      case Entry::Toml::String: out << toml_quoted(value); break;
      case Entry::Toml::List: out << '[' << value << ']'; break;
    }
    out << "\n";
  }
  return out.str();
}

std::optional<std::array<double, 2>> DataConfig::pixel_range(bool image_file) const {
  if (image_range == "off" || (image_range == "auto" && !image_file)) return std::nullopt;
  if (image_range == "auto") return std::array<double, 2>{-1.0, 1.0};
  const auto comma = image_range.find(',');
  if (comma == std::string::npos)
    throw InvalidArgument("data.image_range: expected auto, off or LO,HI (like -1,1), got '" + image_range + "'");
  const double lo = parse_value<double>("data.image_range", image_range.substr(0, comma));
  const double hi = parse_value<double>("data.image_range", image_range.substr(comma + 1));
  if (!(lo < hi)) throw InvalidArgument("data.image_range: LO must be below HI, got '" + image_range + "'");
  return std::array<double, 2>{lo, hi};
}

void RunConfig::validate() const {
  if (data.dataset.empty() == data.file.empty())
    throw InvalidArgument("give exactly one of a built-in dataset ({data.dataset}) or a data file ({data.file})");
  if (data.size < 1) throw InvalidArgument("data.size must be at least 1");
  if (data.levels < 2) throw InvalidArgument("data.levels must be at least 2");
  data.pixel_range(false);  // checks the text
  if (train.cond_dropout > 0 && data.cond.empty()) throw InvalidArgument("{train.cond_dropout} needs conditions ({data.cond})");
  if (data.cond_transform == FeatureTransform::Log && data.cond.empty())
    throw InvalidArgument("{data.cond_transform} = log needs conditions ({data.cond})");
  if ((data.cond_set < 0 && data.cond_set != kAutoCount) || data.cond_set > 65536)
    throw InvalidArgument("data.cond_set must be auto or in [0, 65536]");
  if (data.cond_set > 0 && data.cond.empty()) throw InvalidArgument("{data.cond_set} needs conditions ({data.cond})");
  if (model.summary == SummaryKind::Set && data.cond_set <= 0)
    throw InvalidArgument("model.summary = set needs data.cond_set: the features of one element of the condition");
  if (data.bounds == BoundsRule::Find && is_image_net(model.kind))
    throw InvalidArgument("data.bounds = find looks for bounds in vectors; an image network's pixels have data.image_range");
  if (train.cond_dropout > 0 && model.baseline == Baseline::Gaussian)
    throw InvalidArgument("model.baseline = gaussian fits p(x | y) and has no unconditional mode: it cannot be trained with train.cond_dropout");
  if (candidates != "auto") candidates_of(*this);
  sde.validate();
  model.validate();
  const RunConfig settled = settle_auto_keys(*this, DataFacts{1000, data.cond.empty() ? 0 : 1});
  settled.train.validate();
  const bool flow = objective_of(model.output) == Objective::Flow;
  if (settled.sde.kind == SDEKind::Linear && !flow)
    throw InvalidArgument("sde.type = linear is flow matching's path: it needs model.objective = flow (a score "
                          "model has no finite velocity at t = T there)");
  check_loss_config(train.loss, model.output, !data.cond.empty());
  // Names the sampler if it is unknown, or if it cannot sample the path.
  check_sampler_fits(sampler_kind_from_string(settled.sample.sampler), *make_sde(settled.sde));
  if (settled.sample.steps < 1) throw InvalidArgument("sample.steps must be at least 1");
  const SamplerKind kind = sampler_kind_from_string(settled.sample.sampler);
  if (!(settled.sample.lambda >= 0 && settled.sample.lambda <= 1)) throw InvalidArgument("sample.lambda must lie in [0, 1]");
  if (!takes_lambda(kind) && settled.sample.lambda != own_lambda(kind))
    throw InvalidArgument("sample.lambda applies to the em, ddim, dpmpp2m and unipc samplers only (sample.sampler = " +
                          settled.sample.sampler + ")");
  SamplerOptions run_sampling;
  run_sampling.kind = kind;
  run_sampling.lambda = settled.sample.lambda;
  if (settled.train.loss.ot_coupling && !follows_the_ode(run_sampling))
    throw InvalidArgument("sample.sampler = " + settled.sample.sampler +
                          " draws fresh noise along the path's score, which train.ot_coupling's flow model does not "
                          "have: sample it by the ODE (" + samplers_that_follow_the_ode + ")");
  if (sample.n < 1) throw InvalidArgument("sample.n must be at least 1");
  if (threads < 0) throw InvalidArgument("run.threads must not be negative");
  if (!(timeout > 0)) throw InvalidArgument("run.timeout must be positive (seconds)");
}

}  // namespace sbgm
