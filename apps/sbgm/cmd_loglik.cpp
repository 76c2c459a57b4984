#include <ATen/ATen.h>

#include <array>
#include <cmath>
#include <iostream>
#include <optional>

#include "cli_common.hpp"
#include "commands.hpp"
#include "job.hpp"
#include "model_source.hpp"
#include "sbgm/data/dataset.hpp"
#include "sbgm/data/dequantize.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/plot/plots.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/run/likelihood_request.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm::cli {

void add_loglik_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("loglik", "log-likelihood of data under a trained model (probability-flow ODE, or the variational bound)");
  struct Options {
    ModelSource source;
    int nproc = 1;
    std::string data, cond, out, png, divergence = "exact", noise = "rademacher", device = "cpu", bound = "ode",
                                                                                    bound_time = "logsnr";
    SolverFlags solver;
    int64_t probes = 1, threads = 0, chunk = LikelihoodConfig{}.chunk_size, grid = 0, draws = LikelihoodConfig{}.draws;
    std::vector<double> range, dequantize_range{0.0, 1.0};
    Dequantization dequantization;
    CLI::Option* levels_option = nullptr;
    CLI::Option* chunk_option = nullptr;
    CLI::Option* dequantize_range_option = nullptr;
    uint64_t seed = 0;
    int64_t set_orders = 1, support_draws = 0;
    CLI::Option* support_draws_option = nullptr;
    bool bpd = false, dequantize = false;
  };
  auto opt = std::make_shared<Options>();
  opt->source.add_to(*cmd);
  add_nproc_option(*cmd, opt->nproc);
  cmd->add_option("--data", opt->data, "points: .npy [N, ...] or .csv (with --grid: optional, drawn over the map)");
  cmd->add_option("--out", opt->out, "output .npy: log p per row in nats (or bits/dim), [N]; with --grid [G, G]")
      ->required();
  cmd->add_option("--cond", opt->cond,
                  "conditional model: conditions .npy/.csv, one row per data row or a single row for all; "
                  "gives log p(x | y)");
  cmd->add_option("--grid", opt->grid, "2-D models: log p on a G x G grid instead of the data (G >= 2)");
  cmd->add_option("--range", opt->range, "with --grid: XMIN,XMAX,YMIN,YMAX (default: the data's extent)")
      ->delimiter(',')
      ->expected(4);
  cmd->add_option("--png", opt->png, "with --grid: draw the log-density map, the data overlaid");
  cmd->add_flag("--dequantize", opt->dequantize,
                "the data are integers in [0, levels): add uniform noise, map to the model's range, and "
                "report the discrete log-likelihood bound (with --bpd: bits/dim of the discrete data)");
  opt->levels_option = cmd->add_option("--levels", opt->dequantization.levels,
                                       "with --dequantize: number of levels (256 for 8-bit data)")
      ->capture_default_str();
  opt->dequantize_range_option =
      cmd->add_option("--dequantize-range", opt->dequantize_range, "with --dequantize: LO,HI the model's data range")
      ->delimiter(',')
      ->expected(2);
  cmd->add_option("--bound", opt->bound,
                  "ode (log p through the probability-flow ODE), or the variational lower bound of the reverse SDE "
                  "with its Monte-Carlo standard error: elbo (its divergence form, --divergence) or elbo-dsm (its "
                  "denoising form, no divergence: for high dimensions)")
      ->capture_default_str();
  cmd->add_option("--draws", opt->draws, "elbo, elbo-dsm: Monte-Carlo draws of (t, x_t) per row")->capture_default_str();
  cmd->add_option("--bound-time", opt->bound_time,
                  "elbo, elbo-dsm: the draws' times, logsnr (uniform in log-SNR: density g^2/sigma^2) or uniform")
      ->capture_default_str();
  cmd->add_option("--divergence", opt->divergence, "exact or hutchinson")->capture_default_str();
  cmd->add_option("--probes", opt->probes, "Hutchinson probes, fixed through each solve")->capture_default_str();
  cmd->add_option("--noise", opt->noise, "Hutchinson probe noise: rademacher or gaussian")->capture_default_str();
  opt->solver.add_to(*cmd);
  cmd->add_option("--steps", opt->solver.config.steps, "steps of a fixed-step solver")->capture_default_str();
  cmd->add_flag("--bpd", opt->bpd, "write bits per dimension, -log p / (D ln 2), instead of nats");
  opt->chunk_option =
      cmd->add_option("--chunk", opt->chunk, "rows integrated together (default 1000, or 16 for an image network)");
  cmd->add_option("--seed", opt->seed, "seed of the Hutchinson probes")->capture_default_str();
  add_set_orders_option(*cmd, opt->set_orders);
  opt->support_draws_option = add_support_draws_option(*cmd, opt->support_draws);
  cmd->add_option("--device", opt->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--threads", opt->threads, "CPU threads (0: one per core)")->capture_default_str();
  cmd->callback([&action, opt, cmd] {
    action = [opt, cmd]() -> int {
      check_output_path(opt->out, ".npy");
      if (opt->grid == 0 && opt->data.empty()) throw InvalidArgument("--data is required (or --grid G for a map)");
      if (opt->grid != 0 && opt->grid < 2) throw InvalidArgument("--grid must be at least 2");
      if (opt->grid == 0 && (!opt->range.empty() || !opt->png.empty()))
        throw InvalidArgument("--range and --png go with --grid");
      if (opt->grid > 0 && opt->dequantize) throw InvalidArgument("--dequantize does not go with --grid");
      if (!opt->dequantize && (opt->levels_option->count() > 0 || opt->dequantize_range_option->count() > 0))
        throw InvalidArgument("--levels and --dequantize-range go with --dequantize");
      if (!opt->png.empty()) check_output_path(opt->png, ".png");
      LikelihoodConfig lc;
      lc.method = likelihood_method_from_string(opt->bound);
      const bool elbo = lc.method != LikelihoodMethod::ODE;
      // Options that only one of the two methods reads are refused by the other.
      for (const char* flag : {"--solver", "--rtol", "--atol", "--controller", "--error-control", "--max-steps", "--steps"})
        if (elbo && cmd->get_option(flag)->count() > 0)
          throw InvalidArgument(std::string(flag) + " applies to the ODE's log-likelihood, not to --bound " + opt->bound);
      for (const char* flag : {"--draws", "--bound-time"})
        if (!elbo && cmd->get_option(flag)->count() > 0) throw InvalidArgument(std::string(flag) + " applies to --bound elbo or elbo-dsm");
      if (lc.method == LikelihoodMethod::ELBODenoising &&
          (cmd->get_option("--divergence")->count() > 0 || cmd->get_option("--probes")->count() > 0))
        throw InvalidArgument("--bound elbo-dsm takes no divergence (--divergence, --probes)");
      lc.draws = opt->draws;
      lc.time = time_proposal_from_string(opt->bound_time);
      lc.divergence = divergence_from_string(opt->divergence);
      lc.noise = probe_noise_from_string(opt->noise);
      lc.probes = opt->probes;
      lc.chunk_size = opt->chunk;
      lc.solver = opt->solver.resolve();
      lc.validate();
      if (opt->threads < 0) throw InvalidArgument("--threads must not be negative");
      if (should_launch(opt->nproc)) return launch_local_job(opt->nproc);
      const Job job = join_model_job(opt->device, opt->threads);
      const c10::Device device = parse_device(job.device);
      const at::Tensor data = opt->data.empty() ? at::Tensor() : load_data_file(opt->data, 1, /*keep_double=*/true);
      Model model = opt->source.load(device);
      LikelihoodRequest request;
      request.comm = job.comm;
      request.config = lc;
      if (opt->chunk_option->count() == 0) request.config.chunk_size = 0;  // the model's default
      request.cond = opt->cond.empty() ? at::Tensor() : load_data_file(opt->cond, 1, /*keep_double=*/true);
      request.seed = opt->seed;
      request.dequantize = opt->dequantize;
      if (opt->levels_option->count() > 0) request.levels = opt->dequantization.levels;
      if (opt->dequantize_range_option->count() > 0)
        request.range = std::make_pair(opt->dequantize_range[0], opt->dequantize_range[1]);
      request.bits_per_dim = opt->bpd;
      request.set_orders = opt->set_orders;
      if (opt->support_draws_option->count() > 0) request.support_draws = opt->support_draws;
      DensityGrid grid;
      if (opt->grid > 0) {
        std::optional<std::array<double, 4>> range;
        if (!opt->range.empty()) range = std::array<double, 4>{opt->range[0], opt->range[1], opt->range[2], opt->range[3]};
        grid = density_grid(model, opt->grid, range, data);
      }
      request.x = opt->grid > 0 ? grid.points : data;
      if (opt->dequantize) resolve_dequantization(model, request);  // a bad one fails before any work
      ProgressLine line("loglik");
      const LikelihoodReport r = run_likelihood_request(model, request, [&](int64_t d, int64_t t) { line.update(d, t); });
      line.finish();
      lc = r.config;
      if (!job.comm.is_root()) return 0;  // rank 0 writes what every rank holds
      if (opt->grid > 0) {
        write_npy(opt->out, r.value.reshape({opt->grid, opt->grid}));
        if (!opt->png.empty())
          plot_density_map(opt->png, r.log_prob.reshape({opt->grid, opt->grid}), grid.x_range, grid.y_range, data,
                           request.cond.defined() ? "log p(x | y) of the model" : "log p(x) of the model");
      } else {
        write_npy(opt->out, r.value);
      }
      const int64_t rows = r.value.size(0);
      std::cout << "mean " << (elbo ? "ELBO, " : "") << (opt->bpd ? "bits/dim" : "log p (nats)") << " over " << rows
                << " rows: " << r.mean;
      if (elbo) {
        std::cout << " +- " << r.mean_std_error << " (Monte-Carlo standard error of the mean; " << lc.draws
                  << " draws per row, " << to_string(lc.time) << " times)\n";
        return 0;
      }
      const bool hutchinson = lc.divergence == DivergenceKind::Hutchinson, boxed = !model.support.none();
      if (hutchinson && lc.probes == 1)
        std::cout << " (Hutchinson with 1 probe: --probes 2 or more also estimates its standard error)";
      if ((hutchinson && lc.probes > 1) || boxed) {
        std::cout << " +- " << r.mean_std_error << " (standard error of the mean: ";
        if (hutchinson && lc.probes > 1) std::cout << "Hutchinson's, " << lc.probes << " probes" << (boxed ? "; " : "");
        if (boxed)
          std::cout << "the box's share of draws inside, from " << request.support_draws.value_or(kSupportDraws)
                    << " per condition, its error shared by the condition's rows";
        std::cout << ")";
      }
      std::cout << "; " << static_cast<double>(r.stats.row_evals) / static_cast<double>(rows)
                << " function evaluations per point (" << r.stats.function_evals << " batched), " << r.stats.accepted
                << " accepted / " << r.stats.rejected << " rejected steps\n";
      return 0;
    };
  });
}

}  // namespace sbgm::cli
