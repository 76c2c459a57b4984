#include "sbgm/run/training_run.hpp"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "sbgm/data/dataset.hpp"
#include "sbgm/data/image_files.hpp"
#include "sbgm/data/toy.hpp"
#include "sbgm/io/atomic_file.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/io/run_lock.hpp"
#include "sbgm/nets/gaussian_baseline.hpp"
#include "sbgm/nets/torchscript_net.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/plot/plots.hpp"
#include "sbgm/run/checkpoint.hpp"
#include "sbgm/run/image_pictures.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/run_defaults.hpp"
#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/flat_parameters.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {
namespace {

void make_directory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) throw IOError(dir + ": cannot create directory (" + ec.message() + ")");
}

// The config with data.image_range "auto" settled by the data file's format, as the checkpoint
// records it.
RunConfig settle_image_range(RunConfig config) {
  if (config.data.image_range != "auto") return config;
  const std::string& file = config.data.file;
  const bool image_file = !file.empty() && (is_cifar10_file(file) || is_idx_file(file));
  config.data.image_range = image_file ? "-1,1" : "off";
  return config;
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

// Training that went wrong: one line, and the last checkpoint written before it stays.
std::runtime_error diverged(const std::string& what) {
  return std::runtime_error("training diverged: " + what +
                            "; the last good checkpoint is kept (a lower train.lr or train.grad_clip may help)");
}

bool finite_weights(const TrainState& s) {
  return at::isfinite(s.params).all().item<bool>() && at::isfinite(s.ema).all().item<bool>();
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

void check_resumable(const Checkpoint& resumed, const RunConfig& config) {
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

// Samples beside the data: an image grid for images, a scatter plot or histogram otherwise.
void picture_samples(const std::string& path, const Model& model, const at::Tensor& raw, const at::Tensor& samples) {
  if (is_image_shape(model.data_shape)) write_model_sample_grid(path, model, samples);
  else plot_samples(path, raw, samples);
}

// n samples from the model, in data space. A conditional model draws one sample for each of the
// first n training conditions (cycled), so the picture compares with the data's marginal.
at::Tensor final_samples(const Model& model, const at::Tensor& raw_cond, int64_t n, uint64_t seed,
                         const ProgressFn& progress) {
  const std::unique_ptr<Sampler> sampler = make_sampler(sampling_for(model.config, model.cond_dim));
  if (!raw_cond.defined()) return sample_model(model, *sampler, n, seed, progress);
  const at::Tensor rows = at::arange(n, at::TensorOptions().dtype(at::kLong)).remainder(raw_cond.size(0));
  const at::Tensor x = sample_model_given(model, *sampler, raw_cond.index_select(0, rows), 1, seed, progress);
  return x.squeeze(1);
}

// The loss log: rows "step,loss,lr,val_loss" (val_loss empty without held-out rows). On resume,
// rows past the checkpoint's step are dropped.
class LossLog {
 public:
  LossLog(std::string path, int64_t keep_until_step) : path_(std::move(path)) {
    std::ifstream in(path_);
    std::string line;
    std::getline(in, line);  // header
    while (keep_until_step > 0 && std::getline(in, line)) {
      std::stringstream row(line);
      double step = 0, loss = 0;
      char comma = 0;
      if (!(row >> step >> comma >> loss) || step > keep_until_step) break;
      steps_.push_back(step);
      losses_.push_back(loss);
      lines_.push_back(line);
    }
    write_file_atomically(path_, [&](std::ostream& out) {
      out << "step,loss,lr,val_loss\n";
      for (const auto& l : lines_) out << l << "\n";
    });
  }
  void append(const TrainProgress& p) {
    std::ofstream out(path_, std::ios::app);
    out << p.step << "," << p.loss << "," << p.lr << ",";
    if (std::isfinite(p.validation_loss)) out << p.validation_loss;
    out << "\n";
    steps_.push_back(static_cast<double>(p.step));
    losses_.push_back(p.loss);
  }
  void plot(const std::string& png) const { plot_loss_curve(png, steps_, losses_); }

 private:
  std::string path_;
  std::vector<double> steps_, losses_;
  std::vector<std::string> lines_;
};

// model.baseline = auto on a posterior with held-out pairs: the network alone and the network on
// the linear-Gaussian fit are both trained (each in run_dir/candidates/NAME, on the same split and
// the same held-out draws) and the one with the lower held-out loss becomes the run's model. On
// sbibm's tasks that loss ordered the two as C2ST did (docs/sbi.md): the fit wins where the
// posterior is near Gaussian (Gaussian-linear: 0.516 against 0.579), the network alone where it
// has fine structure (two moons, the Gaussian mixture).
bool selects_baseline(const RunConfig& config, int64_t rows, int64_t cond_dim) {
  if (config.model.baseline != Baseline::Auto || cond_dim == 0 || is_image_net(config.model.kind) ||
      config.model.kind == NetKind::TorchScript)
    return false;
  if (config.train.cond_dropout > 0) return false;  // the fit has no unconditional mode
  return settle_auto_keys(config, DataFacts{rows, cond_dim}).train.validation_fraction > 0;
}

constexpr const char* kCandidatesDir = "candidates";
const std::vector<std::pair<Baseline, std::string>>& baseline_candidates() {
  static const std::vector<std::pair<Baseline, std::string>> c{{Baseline::None, "none"}, {Baseline::Gaussian, "gaussian"}};
  return c;
}

void copy_file_atomically(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) throw IOError(from + ": cannot open file");
  write_file_atomically(to, [&](std::ostream& out) { out << in.rdbuf(); });
}

// What data.bounds = find found, said before training.
std::string found_bounds_text(const Bounds& found) {
  const at::Tensor lower = at::isfinite(found.lower), upper = at::isfinite(found.upper);
  const int64_t both = (lower & upper).sum().item<int64_t>(), one = (lower ^ upper).sum().item<int64_t>();
  return "data.bounds: the training rows show a box (" + std::to_string(both) + " of " +
         std::to_string(found.lower.numel()) + " features bounded on both sides, " + std::to_string(one) +
         " on one); samples are kept within it (data.lower, data.upper, data.keep_within in config.toml)";
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

RunConfig resume_config(const std::string& run_dir) {
  // A run stopped while it trained its candidates (model.baseline = auto) has only theirs.
  const std::string first = run_dir + "/" + kCandidatesDir + "/" + baseline_candidates().front().second;
  if (!std::filesystem::exists(checkpoint_path(run_dir)) && std::filesystem::exists(checkpoint_path(first))) {
    RunConfig config = load_checkpoint(first).config;
    config.model.baseline = Baseline::Auto;
    return config;
  }
  return load_checkpoint(run_dir).config;
}

namespace {

// Trains each candidate of selects_baseline() and makes the best the run's: its checkpoint,
// config.toml, loss log, samples and pictures copied into run_dir, and the comparison written to
// run_dir/candidates.csv.
TrainRunResult train_choosing_baseline(const RunConfig& config, const TrainingData& rows, const std::vector<int64_t>& data_shape,
                                       int64_t cond_dim, const std::string& run_dir, bool resume,
                                       const TrainRunCallbacks& callbacks, const std::atomic<bool>* stop,
                                       const Communicator& comm) {
  struct Result {
    std::string name, dir;
    double loss = 0;
    int64_t best_step = 0, steps = 0;
  };
  const bool root = comm.is_root();
  auto message = [&](const std::string& m) {
    if (root && callbacks.on_message) callbacks.on_message(m);
  };
  // Every candidate's network is built once before anything is said or written, so that a config
  // no candidate can train fails with one line.
  for (const auto& candidate : baseline_candidates()) {
    RunConfig c = config;
    c.model.baseline = candidate.first;
    build_net(settle_auto_keys(c, DataFacts{rows.data.size(0), cond_dim}), data_shape, cond_dim);
  }
  std::vector<Result> results;
  for (const auto& [baseline, name] : baseline_candidates()) {
    RunConfig candidate = config;
    candidate.model.baseline = baseline;
    const std::string dir = run_dir + "/" + kCandidatesDir + "/" + name;
    message("model.baseline = auto: training the candidate with model.baseline = " + name + " in " + dir);
    const bool started = std::filesystem::exists(checkpoint_path(dir));
    const TrainRunResult r = train_run(candidate, rows, dir, resume && started, callbacks, stop, comm);
    if (r.interrupted) return r;  // --resume continues with the candidates
    const Checkpoint done = load_checkpoint(dir);
    results.push_back({name, dir, done.state.best_loss, done.state.best_step, done.state.step});
  }
  const Result& best = *std::min_element(results.begin(), results.end(),
                                          [](const Result& a, const Result& b) { return a.loss < b.loss; });
  if (root) {
    const RunLock lock(run_dir);  // no other run writes into run_dir while its files are replaced
    for (const char* file : {kCheckpointFile, "config.toml", "loss.csv", "loss.png", "samples.npy", "samples.png"})
      if (std::filesystem::exists(best.dir + "/" + file)) copy_file_atomically(best.dir + "/" + file, run_dir + "/" + file);
    write_file_atomically(run_dir + "/candidates.csv", [&](std::ostream& out) {
      out << "model.baseline,best_held_out_loss,best_step,steps,chosen\n";
      for (const Result& r : results)
        out << r.name << "," << r.loss << "," << r.best_step << "," << r.steps << "," << (&r == &best ? 1 : 0) << "\n";
    });
  }
  std::string against;
  for (const Result& r : results)
    if (&r != &best) against += (against.empty() ? "" : ", ") + std::to_string(r.loss) + " with " + r.name;
  message("model.baseline = " + best.name + ": the lower best held-out loss (" + std::to_string(best.loss) +
          ", against " + against + "); wrote " + run_dir + "/{" + kCheckpointFile +
          ", config.toml, loss.csv, loss.png, samples.npy, samples.png, candidates.csv}");
  return TrainRunResult{false, best.steps, run_dir + "/" + kCheckpointFile};
}

}  // namespace

TrainRunResult train_run(const RunConfig& config, const std::string& run_dir, bool resume,
                         const TrainRunCallbacks& callbacks, const std::atomic<bool>* stop, const Communicator& comm) {
  config.validate();  // before the files are read
  return train_run(config, load_training_data(config), run_dir, resume, callbacks, stop, comm);
}

TrainRunResult train_run(const RunConfig& given_config, const TrainingData& rows, const std::string& run_dir,
                         bool resume, const TrainRunCallbacks& callbacks, const std::atomic<bool>* stop,
                         const Communicator& comm) {
  // The rows are given: the config's data source (data.file / data.dataset, data.cond) is not
  // read, so it is checked as naming them.
  const auto validate = [&rows](const RunConfig& c) {
    RunConfig checked = c;
    checked.data.dataset.clear();
    checked.data.file = rows.data_name;
    checked.data.cond = rows.cond.defined() ? rows.cond_name : "";
    checked.validate();
  };
  validate(given_config);
  RunConfig config = settle_image_range(given_config);
  if (config.model.kind == NetKind::TorchScript && !config.model.script)
    config.model.script = read_torchscript_file(config.model.file);
  const bool root = comm.is_root();
  auto message = [&](const std::string& m) {
    if (root && callbacks.on_message) callbacks.on_message(m);
  };
  const c10::Device device = parse_device(config.device);
  configure_threads(static_cast<int>(config.threads));

  // Everything that can fail on bad input is checked before the run directory is touched.
  if (!rows.data.defined()) throw InvalidArgument("no training data");
  check_data_rows(rows.data, rows.data_name);
  // Images [N, C, H, W] for an image network ([N, H, W] rows gain C = 1; vectors are refused by
  // the shape check below, naming the network).
  const bool images = is_image_net(config.model.kind) && rows.data.dim() >= 3;
  const at::Tensor raw = images ? as_image_batch(rows.data.to(at::kFloat), rows.data_name) : rows.data.to(at::kFloat);
  std::vector<int64_t> data_shape(raw.sizes().begin() + 1, raw.sizes().end());
  config.model.validate_image_shape(data_shape);
  at::Tensor raw_cond;  // flat rows [N, C], as every command takes them (an image condition's pixels are its features)
  if (rows.cond.defined()) {
    check_data_rows(rows.cond, rows.cond_name);
    if (rows.cond.size(0) != raw.size(0))
      throw InvalidArgument(rows.cond_name + ": " + std::to_string(rows.cond.size(0)) + " condition rows for " +
                            std::to_string(raw.size(0)) + " data rows (the rows must be aligned)");
    raw_cond = rows.cond.to(at::kFloat).reshape({rows.cond.size(0), -1});
  }
  const int64_t cond_dim = raw_cond.defined() ? raw_cond.numel() / raw_cond.size(0) : 0;
  // model.baseline = auto on a posterior: its candidates are trained once every input is checked
  // (below); the settling and any resuming are theirs.
  const bool choosing = selects_baseline(config, raw.size(0), cond_dim);
  const bool resuming = resume && !choosing;
  const RunConfig given = config;
  std::string found_text;  // what data.bounds = find found, said once the directory is taken
  if (!choosing) {
    DataFacts facts{raw.size(0), cond_dim, log_symmetrises(raw_cond)};
    if (looks_for_bounds(config, cond_dim)) {
      facts.found = Bounds::find(raw);
      if (!facts.found.none()) found_text = found_bounds_text(facts.found);
    }
    config = settle_auto_keys(config, facts);
  }
  validate(config);
  Checkpoint resumed;
  if (resuming) {
    resumed = load_checkpoint(run_dir);
    if (!finite_weights(resumed.state))
      throw InvalidArgument(run_dir + ": the checkpoint's weights are not finite (its run diverged); train afresh");
    if (resumed.data_shape != data_shape) throw InvalidArgument("the data's shape differs from the checkpoint's");
    if (resumed.cond_dim != cond_dim) throw InvalidArgument("the conditions' width differs from the checkpoint's");
  }
  if (resuming) check_resumable(resumed, config);
  // Bounded features are modelled through the bounds' bijection (data/bounds.hpp), or as they are
  // and their samples outside the box drawn again (data.keep_within).
  const Bounds box = model_bounds(config, data_shape);
  if (!box.none()) {
    if (config.data.pixel_range(false))
      throw InvalidArgument("data.lower / data.upper do not apply to pixel data (data.image_range)");
    const std::string outside = box.first_outside(raw);
    if (!outside.empty()) throw InvalidArgument(rows.data_name + ": " + outside + " (data.lower / data.upper)");
  }
  const at::Tensor unbounded = use_box(box, config.data.keep_within).mapped.to_unbounded(raw);
  const Scaling fitted_scaling = fit_scaling(config, unbounded, rows.data_name);
  const Scaling scaling = resuming ? resumed.scaling : fitted_scaling;
  if (resuming && !same_scaling(fitted_scaling, scaling))
    throw InvalidArgument("the data differ from the ones the checkpoint was trained on (another mean or spread)");
  TrainConfig train_config = config.train;
  if (train_config.dequantize) {
    if (!config.data.pixel_range(false))
      throw InvalidArgument("train.dequantize needs pixel data (data.image_range, set for IDX and CIFAR-10 files)");
    train_config.level_width = 1.0 / scaling.scale.flatten()[0].item<double>();
  }
  // The conditions as the network's standardisation sees them (their log for positive, heavy-tailed
  // ones; data/condition_transform.hpp). raw_cond stays as given: the model applies the transform
  // itself to whatever conditions it is handed (model_conditions).
  at::Tensor net_cond = raw_cond;
  try {
    if (raw_cond.defined()) net_cond = transform_conditions(config.data.cond_transform, raw_cond);
  } catch (const InvalidArgument& err) {
    throw InvalidArgument(rows.cond_name + ": " + err.what());
  }
  const Scaling fitted_cond_scaling =
      config.data.standardize && net_cond.defined() ? Scaling::standardize(net_cond) : Scaling::identity();
  const Scaling cond_scaling = resuming ? resumed.cond_scaling : fitted_cond_scaling;
  if (resuming && !same_scaling(fitted_cond_scaling, cond_scaling))
    throw InvalidArgument("the conditions differ from the ones the checkpoint was trained on (another mean or spread)");
  if (choosing) return train_choosing_baseline(given, rows, data_shape, cond_dim, run_dir, resume, callbacks, stop, comm);
  at::Tensor data = scaling.to_model(unbounded).to(device);
  // The training rows' moments in the model's space (a Gaussian fit of the prior, for iid posteriors).
  at::Tensor data_mean, data_cov;
  if (resume) {
    data_mean = resumed.data_mean;
    data_cov = resumed.data_cov;
  } else if (data.numel() / data.size(0) <= kMomentFeatures && data.size(0) > 1) {
    const at::Tensor rows = data.reshape({data.size(0), -1}).to(at::kCPU, at::kDouble);
    data_mean = rows.mean(0);
    const at::Tensor centred = rows - data_mean;
    data_cov = at::matmul(centred.t(), centred) / static_cast<double>(rows.size(0) - 1);
  }
  at::Tensor cond = net_cond.defined() ? cond_scaling.to_model(net_cond).to(device) : at::Tensor();
  // Held-out rows, chosen by the seed and never trained on (the scaling above saw every row: it
  // is a fixed affine map, not something the network learns).
  at::Tensor held_out, held_out_cond;
  if (config.train.validation_fraction > 0) {
    const int64_t n = data.size(0);
    const int64_t held = std::max<int64_t>(1, std::llround(config.train.validation_fraction * static_cast<double>(n)));
    if (n - held < 1) throw InvalidArgument("train.validation_fraction leaves no rows to train on");
    const at::Tensor order =
        at::randperm(n, make_generator(at::kCPU, config.train.seed ^ 0x686F6C64ULL), at::TensorOptions().dtype(at::kLong))
            .to(device);
    const at::Tensor out_rows = order.narrow(0, 0, held), in_rows = order.narrow(0, held, n - held);
    held_out = data.index_select(0, out_rows);
    data = data.index_select(0, in_rows);
    if (cond.defined()) {
      held_out_cond = cond.index_select(0, out_rows);
      cond = cond.index_select(0, in_rows);
    }
  }

  std::shared_ptr<const SDE> sde = make_sde(config.sde);
  std::shared_ptr<ScoreNet> net = build_net(config, data_shape, cond_dim);
  std::shared_ptr<ScoreNet> ema_net = build_net(config, data_shape, cond_dim);
  if (!resume)  // a resumed run's fit comes back with the buffers
    for (const auto& n : {net, ema_net})
      if (auto* baseline = dynamic_cast<GaussianBaselineNet*>(n.get())) baseline->fit(data, cond);
  // The directory is taken before anything is said or written (every input check is done).
  std::optional<RunLock> lock;  // held until the run returns
  if (root) {
    make_directory(run_dir);
    lock.emplace(run_dir);
    // Holding the lock, no other writer is in the directory: temporary files left by a killed run
    // (a checkpoint's can be large enough to keep a disk full) go.
    if (const int stale = remove_stale_temporary_files(run_dir); stale > 0)
      message("removed " + std::to_string(stale) + " temporary file(s) a killed run left in " + run_dir);
    if (!found_text.empty()) message(found_text);
  }
  net->to(device);
  ema_net->to(device);
  // Dropout masks come from the global generator: each rank draws its own (the weights are
  // rank 0's, broadcast by the trainer).
  if (comm.size() > 1) torch::manual_seed(config.train.seed + 7919 * static_cast<uint64_t>(comm.rank()));
  Trainer trainer(net, ema_net, sde, config.model.output, train_config, data, cond, comm);
  if (held_out.defined()) trainer.set_validation(held_out, held_out_cond);
  if (resume) {
    trainer.restore(resumed.state);
    load_module_buffers(*net, resumed.buffers);
    load_module_buffers(*ema_net, resumed.ema_buffers);
    message("resuming " + run_dir + " from step " + std::to_string(resumed.state.step));
  }

  if (root) {
    write_file_atomically(run_dir + "/config.toml", [&](std::ostream& out) { out << config.to_toml(); });
  }
  const std::string ckpt = run_dir + "/" + kCheckpointFile;
  auto save = [&] {
    if (!root) return;
    // A checkpoint is never overwritten by weights that are not finite.
    const TrainState state = trainer.state();
    if (!finite_weights(state)) throw diverged("the weights are not finite at step " + std::to_string(state.step));
    Checkpoint c;
    c.config = config;
    c.data_shape = data_shape;
    c.cond_dim = cond_dim;
    c.scaling = scaling;
    c.cond_scaling = cond_scaling;
    c.data_mean = data_mean;
    c.data_cov = data_cov;
    c.state = state;
    c.buffers = module_buffers(*net);
    c.ema_buffers = module_buffers(*ema_net);
    save_checkpoint(c, ckpt);
  };
  std::optional<LossLog> log;
  if (root) log.emplace(run_dir + "/loss.csv", resume ? resumed.state.step : 0);

  TrainCallbacks cb;
  cb.on_progress = [&](const TrainProgress& p) {
    if (!root) return;
    log->append(p);
    if (callbacks.on_progress) callbacks.on_progress(p);
    if (!std::isfinite(p.loss)) {
      const std::string last = std::to_string(p.step - p.skipped + 1) + " to " + std::to_string(p.step);
      throw diverged(p.skipped > 0 ? "the loss or gradient was not finite at every step from " + last +
                                         " (train.skip_nonfinite passes over single bad steps, not a run that stays broken)"
                                   : "the loss is " + std::to_string(p.loss) + " at step " + std::to_string(p.step));
    }
    if (p.skipped > 0)
      message("step " + std::to_string(p.step) + ": " + std::to_string(p.skipped) + " of the last " +
              std::to_string(std::min<int64_t>(p.step, config.train.log_every)) +
              " steps skipped (loss or gradient not finite; train.skip_nonfinite)");
  };
  cb.on_checkpoint = [&](int64_t) { save(); };
  // The model the EMA weights make at a given step, to sample from.
  auto ema_model = [&](int64_t step) {
    Model m;
    m.config = config;
    m.data_shape = data_shape;
    m.cond_dim = cond_dim;
    m.set_box(box, config.data.keep_within);
    m.scaling = scaling;
    m.cond_scaling = cond_scaling;
    m.data_mean = data_mean;
    m.data_cov = data_cov;
    m.step = step;
    m.device = device;
    m.sde = sde;
    m.net = ema_net;
    m.comm = comm;  // the ranks share the sampling
    return m;
  };
  cb.on_eval = [&](int64_t step) {
    const Model m = ema_model(step);
    const at::Tensor samples = final_samples(m, raw_cond, config.sample.n, config.train.seed + 1, {});
    if (root) picture_samples(run_dir + "/samples_step" + std::to_string(step) + ".png", m, raw, samples);
  };
  const auto outcome = trainer.run(cb, stop);
  save();
  TrainRunResult result{outcome == Trainer::Outcome::Interrupted, trainer.step_count(), ckpt};
  if (root) log->plot(run_dir + "/loss.png");
  if (result.interrupted) return result;
  if (held_out.defined()) {
    const TrainState s = trainer.state();
    if (outcome == Trainer::Outcome::StoppedEarly)
      message("stopped early at step " + std::to_string(s.step) + ": no better held-out loss in " +
              std::to_string(config.train.patience) + " validations");
    message("best held-out loss " + std::to_string(s.best_loss) + " at step " + std::to_string(s.best_step) +
            ": its EMA weights are the model");
    trainer.use_best_ema();
  }

  const Model m = ema_model(trainer.step_count());
  const at::Tensor samples = final_samples(m, raw_cond, config.sample.n, config.train.seed + 1,
                                           root ? callbacks.on_sample_progress : ProgressFn());
  if (!root) return result;
  if (!at::isfinite(samples).all().item<bool>()) throw diverged("the model's samples are not finite");
  write_npy(run_dir + "/samples.npy", samples);
  picture_samples(run_dir + "/samples.png", m, raw, samples);
  message("wrote " + run_dir + "/{" + kCheckpointFile + ", config.toml, loss.csv, loss.png, samples.npy, samples.png}");
  return result;
}

}  // namespace sbgm
