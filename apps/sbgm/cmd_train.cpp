#include <iostream>

#include "cli_common.hpp"
#include "commands.hpp"
#include "job.hpp"
#include "sbgm/util/runtime.hpp"
#include "sbgm/run/training_run.hpp"

namespace sbgm::cli {

void add_train_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("train", "fit a score model to data and write checkpoints, samples and pictures");
  struct Options {
    std::string out, config_file;
    bool resume = false;
    int nproc = 1;
    ConfigFlags flags;
  };
  auto opt = std::make_shared<Options>();
  cmd->add_option("--out", opt->out, "run directory (created if missing)")->required();
  cmd->add_option("--config", opt->config_file, "TOML config file")->check(CLI::ExistingFile);
  cmd->add_flag("--resume", opt->resume, "continue the run in --out from its checkpoint");
  opt->flags.add_shortcut(*cmd, "--data", "data.file", "training data: .npy [N, ...], .csv, an IDX file (MNIST) or a CIFAR-10 .bin batch");
  opt->flags.add_shortcut(*cmd, "--dataset", "data.dataset", "built-in dataset (circle8, ring8, swissroll, moons, checkerboard, bimodal1d)");
  opt->flags.add_shortcut(*cmd, "--cond", "data.cond", "conditions for the data's rows: .npy [N, C] or .csv (a conditional model)");
  opt->flags.add_shortcut(*cmd, "--lower", "data.lower", "lower bounds of the data's features (a prior's support): one for all or one per feature, e.g. --lower=-1,0");
  opt->flags.add_shortcut(*cmd, "--upper", "data.upper", "upper bounds of the data's features: one for all or one per feature, e.g. --upper=1,inf");
  opt->flags.add_shortcut(*cmd, "--cond-dropout", "train.cond_dropout", "probability of dropping a row's condition (classifier-free guidance)");
  opt->flags.add_shortcut(*cmd, "--steps", "train.steps", "optimisation steps");
  opt->flags.add_shortcut(*cmd, "--batch-size", "train.batch_size", "samples per step");
  opt->flags.add_shortcut(*cmd, "--lr", "train.lr", "learning rate");
  opt->flags.add_shortcut(*cmd, "--objective", "model.objective", "score (denoising score matching) or flow (flow matching)");
  opt->flags.add_shortcut(*cmd, "--sde", "sde.type", "vp, subvp, ve, cosine or linear (flow matching)");
  opt->flags.add_shortcut(*cmd, "--model", "model.type", "mlp, resnet, transformer, unet, dit, mixer or torchscript (with --model.file)");
  opt->flags.add_shortcut(*cmd, "--png-every", "train.eval_every",
                          "draw samples (an image grid for images) into RUN_DIR/samples_stepN.png every N steps");
  opt->flags.add_shortcut(*cmd, "--seed", "train.seed", "random seed");
  opt->flags.add_shortcut(*cmd, "--device", "run.device", "cpu or cuda");
  opt->flags.add_shortcut(*cmd, "--threads", "run.threads", "CPU threads per process");
  opt->flags.add_to(*cmd);
  add_nproc_option(*cmd, opt->nproc);

  cmd->callback([&action, opt] {
    action = [opt]() -> int {
      RunConfig config;
      if (opt->resume) config = resume_config(opt->out);
      if (!opt->config_file.empty()) config.merge_toml_file(opt->config_file);
      if (opt->flags.given("data.file")) config.data.dataset.clear();
      if (opt->flags.given("data.dataset")) config.data.file.clear();
      opt->flags.apply(config);
      config.validate();
      if (should_launch(opt->nproc)) return launch_local_job(opt->nproc);
      install_interrupt_handler();
      const Job job = join_job(config.device, config.timeout);
      config.device = job.device;
      ProgressLine line("train");
      std::unique_ptr<ProgressLine> sampling;
      TrainRunCallbacks cb;
      cb.on_progress = [&](const TrainProgress& p) { print_train_progress(p, line); };
      cb.on_sample_progress = [&](int64_t done, int64_t total) {
        if (!sampling) {
          line.finish();
          sampling = std::make_unique<ProgressLine>("sample");
        }
        sampling->update(done, total);
      };
      cb.on_message = [&](const std::string& m) {
        line.finish();
        if (sampling) sampling->finish();
        std::cerr << m << "\n";
      };
      tune_allocator();  // reuse activation memory instead of mapping it afresh every step
      const TrainRunResult r = train_run(config, opt->out, opt->resume, cb, &g_interrupted, job.comm);
      line.finish();
      if (r.interrupted && !job.comm.is_root()) return 130;
      if (r.interrupted) {
        std::cerr << "interrupted at step " << r.step << ": saved " << r.checkpoint << "; continue with: sbgm train --out "
                  << opt->out << " --resume\n";
        return 130;
      }
      return 0;
    };
  });
}

}  // namespace sbgm::cli
