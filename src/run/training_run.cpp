#include "sbgm/run/training_run.hpp"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include "sbgm/io/atomic_file.hpp"
#include "sbgm/nets/gaussian_baseline.hpp"
#include "sbgm/nets/module_buffers.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/run/checkpoint.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/run_defaults.hpp"
#include "sbgm/run/run_directory.hpp"
#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {
namespace {

// Training that went wrong: one line, and the last checkpoint written before it stays.
std::runtime_error diverged(const std::string& what) {
  return std::runtime_error("training diverged: " + what +
                            "; the last good checkpoint is kept (a lower train.lr or train.grad_clip may help)");
}

bool finite_weights(const TrainState& s) {
  return at::isfinite(s.params).all().item<bool>() && at::isfinite(s.ema).all().item<bool>();
}

// The checkpoint a resumed run continues from, refused when its run diverged.
Checkpoint resumable_checkpoint(const std::string& run_dir) {
  Checkpoint resumed = load_checkpoint(run_dir);
  if (!finite_weights(resumed.state))
    throw InvalidArgument(run_dir + ": the checkpoint's weights are not finite (its run diverged); train afresh");
  return resumed;
}

// n samples from the model, in data space. A conditional model draws one sample for each of the
// first n training conditions (cycled), so the picture compares with the data's marginal.
// The ranks of comm share the sampling.
at::Tensor final_samples(const Model& model, const at::Tensor& raw_cond, int64_t n, uint64_t seed,
                         const ProgressFn& progress, const Communicator& comm) {
  const std::unique_ptr<Sampler> sampler = make_sampler(sampling_for(model.config, model.cond_dim));
  if (!raw_cond.defined()) return sample_model(model, *sampler, n, seed, progress, {}, nullptr, comm);
  const at::Tensor rows = at::arange(n, at::TensorOptions().dtype(at::kLong)).remainder(raw_cond.size(0));
  const at::Tensor x =
      sample_model_given(model, *sampler, raw_cond.index_select(0, rows), 1, seed, progress, {}, nullptr, comm);
  return x.squeeze(1);
}

// The message a training progress report carries when the run went wrong or skipped steps;
// throws diverged() for a loss that is not finite.
void check_progress(const TrainProgress& p, int64_t log_every, const RunDirectory::MessageFn& message) {
  if (!std::isfinite(p.loss)) {
    const std::string last = std::to_string(p.step - p.skipped + 1) + " to " + std::to_string(p.step);
    throw diverged(p.skipped > 0 ? "the loss or gradient was not finite at every step from " + last +
                                       " (train.skip_nonfinite passes over single bad steps, not a run that stays broken)"
                                 : "the loss is " + std::to_string(p.loss) + " at step " + std::to_string(p.step));
  }
  if (p.skipped > 0)
    message("step " + std::to_string(p.step) + ": " + std::to_string(p.skipped) + " of the last " +
            std::to_string(std::min<int64_t>(p.step, log_every)) +
            " steps skipped (loss or gradient not finite; train.skip_nonfinite)");
}

// What the choice depends on: the rows and their condition's features (0 where there are none).
DataFacts facts_of(const TrainingData& rows) {
  if (!rows.cond.defined() || !rows.data.defined() || rows.data.dim() < 1 || rows.cond.dim() < 1 || rows.cond.size(0) == 0)
    return DataFacts{};
  return DataFacts{rows.data.size(0), rows.cond.numel() / rows.cond.size(0)};
}

// model.baseline = auto on a posterior with held-out pairs: the networks of model.candidates — the
// network alone, the network on the linear-Gaussian fit, a small transformer — are trained (each
// in run_dir/candidates/NAME, on the same split and the same held-out draws) and the one with the
// lowest held-out loss becomes the run's model. On sbibm's tasks that loss ordered them as C2ST
// did (docs/sbi.md): the fit wins where the posterior is near Gaussian (Gaussian-linear: 0.516
// against 0.579), the network alone where it has fine structure (two moons, the Gaussian
// mixture), the transformer where each parameter depends on a few features of x
// (Gaussian-linear-uniform: 0.549 against 0.626).
bool selects_network(const RunConfig& config, const TrainingData& rows) {
  return chooses_among_candidates(config, facts_of(rows));
}

constexpr const char* kCandidatesDir = "candidates";
// The run's config as asked for, from which each candidate's is made (what --resume reads).
constexpr const char* kRunConfigFile = "candidates/config.toml";

}  // namespace

RunConfig resume_config(const std::string& run_dir) {
  // A run stopped while it trained its candidates (model.baseline = auto) has only theirs, and the
  // config they were made from.
  if (!std::filesystem::exists(checkpoint_path(run_dir))) {
    const std::string asked = run_dir + "/" + kRunConfigFile;
    if (std::filesystem::exists(asked)) {
      // One written before data.cond_set and data.transform existed does not name them; its
      // candidates were trained without them, as config_for_earlier_files() reads it.
      RunConfig config = config_for_earlier_files();
      config.merge_toml_file(asked);
      return config;
    }
    // Written before the file above was: its first candidate differs from the run in its baseline.
    const std::string first = run_dir + "/" + kCandidatesDir + "/none";
    if (std::filesystem::exists(checkpoint_path(first))) {
      RunConfig config = load_checkpoint(first).config;
      config.model.baseline = Baseline::Auto;
      return config;
    }
  }
  return load_checkpoint(run_dir).config;
}

namespace {

// Trains each candidate of selects_network() and makes the best the run's: its checkpoint,
// config.toml, loss log, samples and pictures copied into run_dir, and the comparison written to
// run_dir/candidates.csv.
TrainRunResult train_choosing_network(const RunConfig& config, const TrainingData& rows, const std::string& run_dir,
                                      bool resume, const TrainRunCallbacks& callbacks, const std::atomic<bool>* stop,
                                      const Communicator& comm) {
  struct Result {
    std::string name, network, dir;
    double loss = 0;
    int64_t best_step = 0, steps = 0;
  };
  const bool root = comm.is_root();
  auto message = [&](const std::string& m) {
    if (root && callbacks.on_message) callbacks.on_message(m);
  };
  // What every candidate says alike (the bounds its rows show) is said once.
  std::set<std::string> said;
  TrainRunCallbacks each = callbacks;
  each.on_message = [&](const std::string& m) {
    if (said.insert(m).second) message(m);
  };
  // Every candidate records the list it was chosen from (config.toml's model.candidates).
  const DataFacts facts = facts_of(rows);
  RunConfig listed = config;
  const std::vector<std::string> names = candidates_of(settle_auto_keys(config, facts));
  listed.candidates.clear();
  for (const auto& name : names) listed.candidates += (listed.candidates.empty() ? "" : ",") + name;
  // Every candidate's data and network are prepared once before anything is said or written, so
  // that rows or a config no candidate can train on fail with one line.
  for (const auto& name : names) {
    const PreparedData d = prepare_training_data(candidate_config(listed, name, facts), rows);
    build_net(d.config, d.data_shape, d.cond_dim);
  }
  // run_dir is held from here (each candidate holds its own directory below it).
  std::optional<RunDirectory> out;
  if (root) {
    out.emplace(run_dir, message);
    std::filesystem::create_directories(out->file(kCandidatesDir));
    write_file_atomically(out->file(kRunConfigFile), [&](std::ostream& file) { file << listed.to_toml(); });
  }
  std::vector<Result> results;
  for (const auto& name : names) {
    const RunConfig candidate = candidate_config(listed, name, facts);
    const std::string dir = run_dir + "/" + kCandidatesDir + "/" + name, network = to_string(candidate.model.kind);
    message("model.candidates: training " + name + " (model.type = " + network + ", model.baseline = " +
            to_string(candidate.model.baseline) + ") in " + dir);
    const bool started = std::filesystem::exists(checkpoint_path(dir));
    const TrainRunResult r = train_run(candidate, rows, dir, resume && started, each, stop, comm);
    if (r.interrupted) return r;  // --resume continues with the candidates
    const Checkpoint done = load_checkpoint(dir);
    results.push_back({name, network, dir, done.state.best_loss, done.state.best_step, done.state.step});
  }
  const Result& best = *std::min_element(results.begin(), results.end(),
                                          [](const Result& a, const Result& b) { return a.loss < b.loss; });
  if (root) {
    out->adopt(best.dir, {kCheckpointFile, "config.toml", "loss.csv", "loss.png", "samples.npy", "samples.png"});
    write_file_atomically(out->file("candidates.csv"), [&](std::ostream& csv) {
      csv << "candidate,model.type,best_held_out_loss,best_step,steps,chosen\n";
      for (const Result& r : results)
        csv << r.name << "," << r.network << "," << r.loss << "," << r.best_step << "," << r.steps << ","
            << (&r == &best ? 1 : 0) << "\n";
    });
  }
  std::string against;
  for (const Result& r : results)
    if (&r != &best) against += (against.empty() ? "" : ", ") + std::to_string(r.loss) + " with " + r.name;
  message("model.candidates: kept " + best.name + ", the lowest best held-out loss (" + std::to_string(best.loss) +
          (against.empty() ? std::string() : ", against " + against) + "); wrote " + run_dir + "/{" + kCheckpointFile +
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
  const RunConfig config = config_for_rows(given_config, rows);
  const bool root = comm.is_root();
  auto message = [&](const std::string& m) {
    if (root && callbacks.on_message) callbacks.on_message(m);
  };
  configure_threads(static_cast<int>(config.threads));
  // model.baseline = auto on a posterior: its candidates are trained, each settling and resuming
  // for itself.
  if (selects_network(config, rows)) return train_choosing_network(config, rows, run_dir, resume, callbacks, stop, comm);

  // Everything that can fail on bad input is checked before the run directory is taken.
  std::optional<Checkpoint> resumed;
  if (resume) resumed = resumable_checkpoint(run_dir);
  const PreparedData d = prepare_training_data(config, rows, resumed ? &*resumed : nullptr);
  const c10::Device device = parse_device(d.config.device);
  std::shared_ptr<const SDE> sde = make_sde(d.config.sde);
  std::shared_ptr<ScoreNet> net = build_net(d.config, d.data_shape, d.cond_dim);
  std::shared_ptr<ScoreNet> ema_net = build_net(d.config, d.data_shape, d.cond_dim);
  if (!resumed)  // a resumed run's fit comes back with the buffers
    for (const auto& n : {net, ema_net})
      if (auto* baseline = dynamic_cast<GaussianBaselineNet*>(n.get()))
        baseline->fit(d.data, d.cond, condition_elements(d.config, d.cond_dim));
  net->to(device);
  ema_net->to(device);
  // Dropout masks come from the global generator: each rank draws its own (the weights are
  // rank 0's, broadcast by the trainer).
  if (comm.size() > 1) torch::manual_seed(d.config.train.seed + 7919 * static_cast<uint64_t>(comm.rank()));
  Trainer trainer(net, ema_net, sde, d.config.model.output, d.train, d.data, d.cond, comm);
  if (d.held_out.defined()) trainer.set_validation(d.held_out, d.held_out_cond);
  if (resumed) {
    trainer.restore(resumed->state);
    load_module_buffers(*net, resumed->buffers);
    load_module_buffers(*ema_net, resumed->ema_buffers);
  }

  // Only rank 0 holds the directory and writes into it.
  std::optional<RunDirectory> dir;
  if (root) {
    dir.emplace(run_dir, message);
    for (const std::string& found : d.found) message(found);
    if (resumed) message("resuming " + run_dir + " from step " + std::to_string(resumed->state.step));
    dir->write_config(d.config);
    dir->start_loss_log(resumed ? resumed->state.step : 0);
  }
  auto save = [&] {
    if (!root) return;
    // A checkpoint is never overwritten by weights that are not finite.
    Checkpoint c;
    static_cast<ModelSpec&>(c) = d;
    c.state = trainer.state();
    if (!finite_weights(c.state)) throw diverged("the weights are not finite at step " + std::to_string(c.state.step));
    c.buffers = module_buffers(*net);
    c.ema_buffers = module_buffers(*ema_net);
    dir->save(c);
  };
  TrainCallbacks cb;
  cb.on_progress = [&](const TrainProgress& p) {
    if (!root) return;
    dir->log_loss(p);
    if (callbacks.on_progress) callbacks.on_progress(p);
    check_progress(p, d.config.train.log_every, message);
  };
  cb.on_checkpoint = [&](int64_t) { save(); };
  cb.on_eval = [&](int64_t step) {
    const Model m = model_with(d, ema_net, step, device);  // the EMA weights now
    const at::Tensor samples = final_samples(m, d.raw_cond, d.config.sample.n, d.config.train.seed + 1, {}, comm);
    if (root) dir->picture_samples("samples_step" + std::to_string(step) + ".png", m, d.raw, samples);
  };
  const auto outcome = trainer.run(cb, stop);
  save();
  const std::string ckpt = run_dir + "/" + kCheckpointFile;
  TrainRunResult result{outcome == Trainer::Outcome::Interrupted, trainer.step_count(), ckpt};
  if (root) dir->plot_loss();
  if (result.interrupted) return result;
  if (d.held_out.defined()) {
    const TrainState s = trainer.state();
    if (outcome == Trainer::Outcome::StoppedEarly)
      message("stopped early at step " + std::to_string(s.step) + ": no better held-out loss in " +
              std::to_string(d.config.train.patience) + " validations");
    message("best held-out loss " + std::to_string(s.best_loss) + " at step " + std::to_string(s.best_step) +
            ": its EMA weights are the model");
    trainer.use_best_ema();
  }

  const Model m = model_with(d, ema_net, trainer.step_count(), device);
  const at::Tensor samples = final_samples(m, d.raw_cond, d.config.sample.n, d.config.train.seed + 1,
                                           root ? callbacks.on_sample_progress : ProgressFn(), comm);
  if (!root) return result;
  if (!at::isfinite(samples).all().item<bool>()) throw diverged("the model's samples are not finite");
  dir->write_samples(m, d.raw, samples);
  message("wrote " + run_dir + "/{" + kCheckpointFile + ", config.toml, loss.csv, loss.png, samples.npy, samples.png}");
  return result;
}

}  // namespace sbgm
