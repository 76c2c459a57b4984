#include "sbgm/run/training_data.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "sbgm/data/feature_transform.hpp"
#include "sbgm/data/dataset.hpp"
#include "sbgm/data/exchangeable_elements.hpp"
#include "sbgm/data/image_files.hpp"
#include "sbgm/data/toy.hpp"
#include "sbgm/nets/torchscript_net.hpp"
#include "sbgm/run/checkpoint.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/run_defaults.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {
namespace {

// The config with data.image_range "auto" settled by the data file's format, as the checkpoint
// records it.
RunConfig settle_image_range(RunConfig config) {
  if (config.data.image_range != "auto") return config;
  const std::string& file = config.data.file;
  const bool image_file = !file.empty() && (is_cifar10_file(file) || is_idx_file(file));
  config.data.image_range = image_file ? "-1,1" : "off";
  return config;
}

// The conditions' standardisation: per feature, or for a set's elements per feature of an
// element, over all elements together (the same shift and scale in each).
Scaling fit_condition_scaling(const RunConfig& config, const at::Tensor& cond) {
  if (!config.data.standardize || !cond.defined()) return Scaling::identity();
  const int64_t features = cond.numel() / cond.size(0), elements = condition_elements(config, features);
  if (elements == 1) return Scaling::standardize(cond);
  const Scaling element = Scaling::standardize(cond.reshape({-1, features / elements}));
  return {element.shift.repeat({elements}), element.scale.repeat({elements})};
}

// The rows are given: the config's data source (data.file / data.dataset, data.cond) is not
// read, so it is checked as naming them.
void validate_for_rows(const RunConfig& config, const TrainingData& rows) {
  RunConfig checked = config;
  checked.data.dataset.clear();
  checked.data.file = rows.data_name;
  checked.data.cond = rows.cond.defined() ? rows.cond_name : "";
  checked.validate();
}

// How the data maps into the model's space: pixel levels onto data.image_range, per-feature
// standardisation (data.standardize), or nothing.
Scaling fit_scaling(const RunConfig& config, const at::Tensor& raw, const std::string& data_name) {
  const auto range = config.data.pixel_range(false);
  if (!range) return config.data.standardize ? Scaling::standardize(raw) : Scaling::identity();
  const double top = static_cast<double>(config.data.levels - 1);
  const double lo = raw.min().item<double>(), hi = raw.max().item<double>();
  if (lo < 0 || hi > top)
    throw InvalidArgument(data_name + ": pixel values span [" + std::to_string(lo) + ", " + std::to_string(hi) +
                          "], outside the levels 0 .. " + std::to_string(config.data.levels - 1) +
                          " (set data.levels, or data.image_range = \"off\" for data that is not pixels)");
  return Scaling::pixels(config.data.levels, (*range)[0], (*range)[1], raw[0]);
}

// What a resumed run cannot change: the keys that define its model, noise process and data (the
// data themselves are compared by their scaling, so a moved file is fine), the condition
// dropout that shapes the network's input, and a step count below the one reached.
bool fixed_on_resume(const std::string& key) {
  if (key == "train.cond_dropout") return true;
  if (key == "data.file" || key == "data.cond" || key == "data.dataset") return false;
  for (const char* prefix : {"data.", "sde.", "model."})
    if (key.rfind(prefix, 0) == 0) return true;
  return false;
}

void check_resumable(const Checkpoint& resumed, const RunConfig& config, const std::vector<int64_t>& data_shape,
                     int64_t cond_dim) {
  if (resumed.data_shape != data_shape) throw InvalidArgument("the data's shape differs from the checkpoint's");
  if (resumed.cond_dim != cond_dim) throw InvalidArgument("the conditions' width differs from the checkpoint's");
  for (const auto& key : RunConfig::keys()) {
    if (!fixed_on_resume(key.name)) continue;
    const std::string was = resumed.config.get(key.name), now = config.get(key.name);
    if (was != now)
      throw InvalidArgument(key.name + " = " + now + " differs from the checkpoint's " + was +
                            ": a resumed run keeps its model, SDE and data");
  }
  if (config.train.steps < resumed.state.step)
    throw InvalidArgument("train.steps = " + std::to_string(config.train.steps) + " is below the checkpoint's step " +
                          std::to_string(resumed.state.step));
}

bool same_scaling(const Scaling& a, const Scaling& b) {
  if (a.is_identity() || b.is_identity()) return a.is_identity() == b.is_identity();
  const auto close = [](const at::Tensor& x, const at::Tensor& y) {
    return x.sizes() == y.sizes() && at::allclose(x.to(at::kDouble), y.to(at::kDouble), 1e-5, 1e-8);
  };
  return close(a.shift, b.shift) && close(a.scale, b.scale);
}

// The scaling fitted to these rows, or for a resumed run its checkpoint's, which the fitted one
// must match (the same data).
Scaling fitted_or_resumed(const Scaling& fitted, const Scaling* resumed, const std::string& what) {
  if (!resumed) return fitted;
  if (!same_scaling(fitted, *resumed))
    throw InvalidArgument(what + " differ from the ones the checkpoint was trained on (another mean or spread)");
  return *resumed;
}

// What data.bounds = find found, said before training.
std::string found_bounds_text(const Bounds& found) {
  const at::Tensor lower = at::isfinite(found.lower), upper = at::isfinite(found.upper);
  const int64_t both = (lower & upper).sum().item<int64_t>(), one = (lower ^ upper).sum().item<int64_t>();
  return "data.bounds: the training rows show a box (" + std::to_string(both) + " of " +
         std::to_string(found.lower.numel()) + " features bounded on both sides, " + std::to_string(one) +
         " on one); samples are kept within it (data.lower, data.upper, data.keep_within in config.toml)";
}

// What data.transform = auto found, said before training.
std::string found_log_text(double z) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", z);
  return std::string("data.transform: the training rows are positive and closer to Gaussian as their logs (Vuong's z = ") +
         text + "); the network models their log, so samples stay positive (data.transform in config.toml; none turns it off)";
}

// What data.cond_set = auto found, said before training.
std::string found_set_text(const ExchangeabilityTest& set, int64_t cond_dim) {
  char p[32];
  std::snprintf(p, sizeof p, "%.2g", set.p_value);
  return "data.cond_set: the conditions' " + std::to_string(cond_dim) + " features are " +
         std::to_string(cond_dim / set.width) + " elements of " + std::to_string(set.width) +
         " whose order carries nothing (their moments agree in every order: p = " + p +
         "); training rows are shown in random orders (data.cond_set in config.toml; 0 turns it off)";
}

// The training rows' mean and covariance in the model's space, for data of at most
// kMomentFeatures features (undefined otherwise).
void fit_moments(PreparedData& d) {
  if (d.data.numel() / d.data.size(0) > kMomentFeatures || d.data.size(0) < 2) return;
  const at::Tensor rows = d.data.reshape({d.data.size(0), -1}).to(at::kCPU, at::kDouble);
  d.data_mean = rows.mean(0);
  const at::Tensor centred = rows - d.data_mean;
  d.data_cov = at::matmul(centred.t(), centred) / static_cast<double>(rows.size(0) - 1);
}

// Held-out rows, chosen by the seed and never trained on (the scaling saw every row: it is a
// fixed affine map, not something the network learns).
void hold_out(PreparedData& d) {
  const double fraction = d.config.train.validation_fraction;
  if (fraction <= 0) return;
  const int64_t n = d.data.size(0);
  const int64_t held = std::max<int64_t>(1, std::llround(fraction * static_cast<double>(n)));
  if (n - held < 1) throw InvalidArgument("train.validation_fraction leaves no rows to train on");
  const at::Tensor order =
      at::randperm(n, make_generator(at::kCPU, d.config.train.seed ^ 0x686F6C64ULL), at::TensorOptions().dtype(at::kLong))
          .to(d.data.device());
  const at::Tensor out_rows = order.narrow(0, 0, held), in_rows = order.narrow(0, held, n - held);
  d.held_out = d.data.index_select(0, out_rows);
  d.data = d.data.index_select(0, in_rows);
  if (d.cond.defined()) {
    d.held_out_cond = d.cond.index_select(0, out_rows);
    d.cond = d.cond.index_select(0, in_rows);
  }
}

}  // namespace

TrainingData load_training_data(const RunConfig& config) {
  TrainingData rows;
  if (config.data.file.empty()) {
    rows.data = make_toy_dataset(config.data.dataset, config.data.size, config.train.seed);
    rows.data_name = config.data.dataset;
  } else {
    rows.data = load_data_file(config.data.file, 1);
    rows.data_name = config.data.file;
  }
  if (!config.data.cond.empty()) {
    rows.cond = load_data_file(config.data.cond, 1);
    rows.cond_name = config.data.cond;
  }
  return rows;
}

RunConfig config_for_rows(const RunConfig& given, const TrainingData& rows) {
  validate_for_rows(given, rows);
  RunConfig config = settle_image_range(given);
  if (config.model.kind == NetKind::TorchScript && !config.model.script)
    config.model.script = read_torchscript_file(config.model.file);
  return config;
}

PreparedData prepare_training_data(const RunConfig& given, const TrainingData& rows, const Checkpoint* resumed) {
  PreparedData d;
  if (!rows.data.defined()) throw InvalidArgument("no training data");
  check_data_rows(rows.data, rows.data_name);
  // Images [N, C, H, W] for an image network ([N, H, W] rows gain C = 1; vectors are refused by
  // the shape check below, naming the network).
  const bool images = is_image_net(given.model.kind) && rows.data.dim() >= 3;
  d.raw = images ? as_image_batch(rows.data.to(at::kFloat), rows.data_name) : rows.data.to(at::kFloat);
  d.data_shape.assign(d.raw.sizes().begin() + 1, d.raw.sizes().end());
  given.model.validate_image_shape(d.data_shape);
  // Conditions are flat rows [N, C], as every command takes them (an image condition's pixels are
  // its features).
  if (rows.cond.defined()) {
    check_data_rows(rows.cond, rows.cond_name);
    if (rows.cond.size(0) != d.raw.size(0))
      throw InvalidArgument(rows.cond_name + ": " + std::to_string(rows.cond.size(0)) + " condition rows for " +
                            std::to_string(d.raw.size(0)) + " data rows (the rows must be aligned)");
    d.raw_cond = rows.cond.to(at::kFloat).reshape({rows.cond.size(0), -1});
    d.cond_dim = d.raw_cond.size(1);
  }

  DataFacts facts{d.raw.size(0), d.cond_dim, log_symmetrises(d.raw_cond)};
  // θ is looked at only where the choice is the run's (a posterior, no bounds given).
  if (given.data.transform == FeatureTransform::Auto && is_posterior(given, d.cond_dim) && given.data.lower.empty() &&
      given.data.upper.empty()) {
    const double z = log_fit_statistic(d.raw);
    facts.log_fits_better = z > kLogFitsBetter;
    if (facts.log_fits_better) d.found.push_back(found_log_text(z));
  }
  if (looks_for_bounds(given, d.cond_dim)) {
    facts.found = Bounds::find(d.raw);
    if (!facts.found.none()) d.found.push_back(found_bounds_text(facts.found));
  }
  if (given.data.cond_set == kAutoCount && is_posterior(given, d.cond_dim)) {
    // Tested on the conditions' log where it symmetrises them (the moments of heavy tails are poor
    // estimates); a log, feature by feature, keeps a set a set.
    const ExchangeabilityTest set = find_set_elements(
        d.raw, facts.cond_log_symmetrises ? transform_conditions(FeatureTransform::Log, d.raw_cond) : d.raw_cond);
    facts.cond_set = set.width;
    if (set.tested) d.found.push_back(found_set_text(set, d.cond_dim));
  }
  d.config = settle_auto_keys(given, facts);
  validate_for_rows(d.config, rows);
  const RunConfig& config = d.config;
  if (resumed) check_resumable(*resumed, config, d.data_shape, d.cond_dim);

  // Bounded features are modelled through the bounds' bijection (data/bounds.hpp), or as they are
  // and their samples outside the box drawn again (data.keep_within); the data's log is the map
  // of a lower bound 0.
  d.box = model_box(config, d.data_shape);
  const bool logs = config.data.transform == FeatureTransform::Log;
  if (!d.box.mapped.none() || !d.box.rejected.none()) {
    if (config.data.pixel_range(false))
      throw InvalidArgument(std::string(logs ? "data.transform = log does" : "data.lower / data.upper do") +
                            " not apply to pixel data (data.image_range)");
    if (logs) {
      const std::string bad = first_not_positive(d.raw);
      if (!bad.empty()) throw InvalidArgument(rows.data_name + ": " + bad + " is not positive (data.transform = log)");
    }
    for (const Bounds* box : {&d.box.mapped, &d.box.rejected}) {
      const std::string outside = box->none() ? "" : box->first_outside(d.raw);
      if (!outside.empty()) throw InvalidArgument(rows.data_name + ": " + outside + " (data.lower / data.upper)");
    }
  }
  const at::Tensor unbounded = d.box.mapped.to_unbounded(d.raw);
  d.scaling = fitted_or_resumed(fit_scaling(config, unbounded, rows.data_name), resumed ? &resumed->scaling : nullptr,
                                "the data");
  d.train = config.train;
  // A set's rows are drawn with their elements in a random order, unless the network reads them
  // in none (a set summary).
  if (d.raw_cond.defined() && condition_elements(config, d.cond_dim) > 1 && config.model.summary != SummaryKind::Set)
    d.train.cond_set = config.data.cond_set;
  if (d.train.dequantize) {
    if (!config.data.pixel_range(false))
      throw InvalidArgument("train.dequantize needs pixel data (data.image_range, set for IDX and CIFAR-10 files)");
    d.train.level_width = 1.0 / d.scaling.scale.flatten()[0].item<double>();
  }
  // The conditions as the network's standardisation sees them (their log for positive, heavy-tailed
  // ones; data/feature_transform.hpp). raw_cond stays as given: the model applies the transform
  // itself to whatever conditions it is handed (model_conditions).
  at::Tensor net_cond = d.raw_cond;
  try {
    if (d.raw_cond.defined()) net_cond = transform_conditions(config.data.cond_transform, d.raw_cond);
  } catch (const InvalidArgument& err) {
    throw InvalidArgument(rows.cond_name + ": " + err.what());
  }
  d.cond_scaling = fitted_or_resumed(fit_condition_scaling(config, net_cond), resumed ? &resumed->cond_scaling : nullptr,
                                     "the conditions");

  const c10::Device device = parse_device(config.device);
  d.data = d.scaling.to_model(unbounded).to(device);
  if (resumed) {
    d.data_mean = resumed->data_mean;
    d.data_cov = resumed->data_cov;
  } else {
    fit_moments(d);
  }
  if (net_cond.defined()) d.cond = d.cond_scaling.to_model(net_cond).to(device);
  hold_out(d);
  return d;
}

}  // namespace sbgm
