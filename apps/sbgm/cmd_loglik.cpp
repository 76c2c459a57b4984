#include <ATen/ATen.h>

#include <cmath>
#include <iostream>

#include "cli_common.hpp"
#include "commands.hpp"
#include "model_source.hpp"
#include "sbgm/data/dataset.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm::cli {

void add_loglik_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("loglik", "log-likelihood of data under a trained model (probability-flow ODE)");
  struct Options {
    ModelSource source;
    std::string data, out, divergence = "exact", noise = "rademacher", solver = "dopri5", device = "cpu";
    int64_t probes = 1, steps = 100, threads = 0, chunk = 1000, max_steps = 100000;
    double rtol = 1e-5, atol = 1e-5;
    uint64_t seed = 0;
    bool bpd = false;
  };
  auto opt = std::make_shared<Options>();
  opt->source.add_to(*cmd);
  cmd->add_option("--data", opt->data, "points: .npy [N, ...] or .csv")->required();
  cmd->add_option("--out", opt->out, "output .npy of shape [N]: log p per row in nats (or bits/dim)")->required();
  cmd->add_option("--divergence", opt->divergence, "exact or hutchinson")->capture_default_str();
  cmd->add_option("--probes", opt->probes, "Hutchinson probes, fixed through each solve")->capture_default_str();
  cmd->add_option("--noise", opt->noise, "Hutchinson probe noise: rademacher or gaussian")->capture_default_str();
  cmd->add_option("--solver", opt->solver, "dopri5, tsit5, heun, rk4 or euler")->capture_default_str();
  cmd->add_option("--rtol", opt->rtol, "relative tolerance (adaptive solvers)")->capture_default_str();
  cmd->add_option("--atol", opt->atol, "absolute tolerance (adaptive solvers)")->capture_default_str();
  cmd->add_option("--steps", opt->steps, "steps of a fixed-step solver")->capture_default_str();
  cmd->add_option("--max-steps", opt->max_steps, "adaptive solver: give up after this many steps")->capture_default_str();
  cmd->add_flag("--bpd", opt->bpd, "write bits per dimension, -log p / (D ln 2), instead of nats");
  cmd->add_option("--chunk", opt->chunk, "rows integrated together")->capture_default_str();
  cmd->add_option("--seed", opt->seed, "seed of the Hutchinson probes")->capture_default_str();
  cmd->add_option("--device", opt->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--threads", opt->threads, "CPU threads (0: one per core)")->capture_default_str();
  cmd->callback([&action, opt] {
    action = [opt]() -> int {
      check_output_path(opt->out, ".npy");
      LikelihoodConfig lc;
      lc.divergence = divergence_from_string(opt->divergence);
      lc.noise = probe_noise_from_string(opt->noise);
      lc.probes = opt->probes;
      lc.chunk_size = opt->chunk;
      lc.solver.kind = solver_kind_from_string(opt->solver);
      lc.solver.rtol = opt->rtol;
      lc.solver.atol = opt->atol;
      lc.solver.steps = opt->steps;
      lc.solver.max_steps = opt->max_steps;
      lc.validate();
      if (opt->threads < 0) throw InvalidArgument("--threads must not be negative");
      const c10::Device device = parse_device(opt->device);
      configure_threads(static_cast<int>(opt->threads));
      tune_allocator();
      const at::Tensor x = load_data_file(opt->data, 1, /*keep_double=*/true);
      const Model model = opt->source.load(device);
      ProgressLine line("loglik");
      const LikelihoodResult r =
          model_log_likelihood(model, x, lc, opt->seed, [&](int64_t d, int64_t t) { line.update(d, t); });
      line.finish();
      const double dims = static_cast<double>(x.numel() / x.size(0));
      const at::Tensor out = opt->bpd ? -r.log_prob / (dims * std::log(2.0)) : r.log_prob;
      write_npy(opt->out, out);
      std::cout << "mean " << (opt->bpd ? "bits/dim" : "log p (nats)") << " over " << x.size(0)
                << " rows: " << out.mean().item<double>();
      if (lc.divergence == DivergenceKind::Hutchinson) {
        const double se = (r.std_error.pow(2).sum().sqrt() / x.size(0)).item<double>() /
                          (opt->bpd ? dims * std::log(2.0) : 1.0);
        std::cout << " +- " << se << " (Hutchinson standard error of the mean, " << lc.probes << " probes)";
      }
      std::cout << "; " << r.stats.function_evals << " function evaluations, " << r.stats.accepted << " accepted / "
                << r.stats.rejected << " rejected steps\n";
      return 0;
    };
  });
}

}  // namespace sbgm::cli
