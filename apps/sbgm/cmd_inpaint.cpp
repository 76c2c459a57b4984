#include <ATen/ATen.h>

#include <iostream>

#include "cli_common.hpp"
#include "commands.hpp"
#include "job.hpp"
#include "model_source.hpp"
#include "sbgm/data/dataset.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/plot/plots.hpp"
#include "sbgm/run/image_pictures.hpp"
#include "sbgm/run/inpaint.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm::cli {

void add_inpaint_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "inpaint", "posterior samples given observed features (inpainting) or noisy observations (denoising)");
  struct Options {
    ModelSource source;
    std::string data, mask, out, png, method, sampler = "em", device = "cpu", precision = "float32";
    SolverFlags solver;
    MultistepFlags multistep;
    InpaintConfig config;
    int64_t threads = 0;
    int nproc = 1;
    uint64_t seed = 0;
    CLI::Option* steps_option = nullptr;
  };
  auto opt = std::make_shared<Options>();
  opt->source.add_to(*cmd);
  cmd->add_option("--data", opt->data, "observations .npy/.csv [N, ...] (unobserved entries may be anything, NaN too)")
      ->required();
  cmd->add_option("--mask", opt->mask,
                  ".npy of 0/1, [...] for every row or [N, ...]: 1 where observed (default: every feature, i.e. "
                  "denoising, which needs --noise-std > 0)");
  cmd->add_option("--noise-std", opt->config.noise_std, "std of the observation noise, in data units (0: exact)")
      ->capture_default_str();
  cmd->add_option("--method", opt->method,
                  "moments (Tweedie moment projection: exact for Gaussian data, D backward passes per step), "
                  "replace (Song et al. 2021: cheap, approximate, exact observations only) or noise-level "
                  "(denoising: the reverse process from the time whose noise level is the observation's; exact for "
                  "any data, the cost of sampling); default: moments up to " + std::to_string(kMomentsMaxFeatures) +
                  " features; above, replace for exact observations, noise-level for denoising");
  cmd->add_option("--n", opt->config.n, "posterior samples per row (output [N, n, ...] when n > 1)")->capture_default_str();
  cmd->add_option("--out", opt->out, "output .npy: [N, ...] posterior samples ([N, n, ...] with --n > 1)")->required();
  cmd->add_option("--sampler", opt->sampler,
                  "moments: em, pc, ancestral, ode, edm, ddim, dpmpp2m, dpmpp3m or unipc; replace: em only; "
                  "noise-level: em, pc or ancestral")
      ->capture_default_str();
  opt->steps_option = cmd->add_option("--steps", opt->config.sampler.steps, "sampler steps (default: the run's sample.steps for its own kind of sampler, else 18 for edm, 20 for the multistep solvers and 1000 for the others)");
  opt->solver.add_to(*cmd, "ode");
  opt->multistep.add_to(*cmd);
  cmd->add_option("--png", opt->png, "also draw the samples beside the observations (images: a grid, one row per observation, unobserved pixels grey)");
  cmd->add_option("--seed", opt->seed, "random seed")->capture_default_str();
  cmd->add_option("--device", opt->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--threads", opt->threads, "CPU threads (0: one per core)")->capture_default_str();
  add_precision_option(*cmd, opt->precision);
  add_nproc_option(*cmd, opt->nproc);
  cmd->callback([&action, opt] {
    action = [opt]() -> int {
      InpaintRequest request;
      request.noise_std = opt->config.noise_std;
      request.n = opt->config.n;
      if (!opt->method.empty()) request.method = inverse_method_from_string(opt->method);
      request.sampler = opt->sampler;
      sampler_kind_from_string(opt->sampler);
      request.sampling = opt->config.sampler;
      request.sampling.solver = opt->solver.resolve();
      opt->multistep.apply(request.sampling);
      request.steps_given = opt->steps_option->count() > 0;
      request.seed = opt->seed;
      if (request.steps_given && request.sampling.steps < 1) throw InvalidArgument("--steps must be at least 1");
      if (opt->mask.empty() && !(request.noise_std > 0))
        throw InvalidArgument("without --mask every feature is observed: give --noise-std > 0 (denoising)");
      if (opt->threads < 0) throw InvalidArgument("--threads must not be negative");
      check_output_path(opt->out, ".npy");
      if (!opt->png.empty()) check_output_path(opt->png, ".png");
      const Precision precision = precision_from_string(opt->precision);
      if (should_launch(opt->nproc)) return launch_local_job(opt->nproc);
      const Job job = join_model_job(opt->device, opt->threads);
      const c10::Device device = parse_device(job.device);
      request.observed = load_data_file(opt->data, 1, /*keep_double=*/true, /*allow_nan=*/true);
      if (!opt->mask.empty()) request.mask = read_npy(opt->mask, true);
      Model model = opt->source.load(device);
      request.precision = precision;
      request.comm = job.comm;
      ProgressLine line("inpaint");
      at::Tensor samples = run_inpaint_request(model, request, [&](int64_t d, int64_t t) { line.update(d, t); });
      line.finish();
      if (!job.comm.is_root()) return 0;  // rank 0 writes what every rank holds
      check_finite(samples, "the samples (the model diverged)");
      if (request.n == 1) samples = samples.squeeze(1);
      write_npy(opt->out, samples);
      // The observed rows (unobserved entries at 0) beside every posterior sample.
      if (!opt->png.empty() && is_image_shape(model.data_shape)) {
        const ObservedRows rows = observed_rows(model, request.observed, resolve_inpaint(model, request).mask);
        write_model_inverse_grid(opt->png, model, rows.values, rows.mask, request.n == 1 ? samples.unsqueeze(1) : samples);
      } else if (!opt->png.empty())
        plot_samples(opt->png, request.observed.nan_to_num(0.0), request.n == 1 ? samples : samples.flatten(0, 1),
                     "observations (grey; unobserved at 0)", "posterior samples (blue)");
      return 0;
    };
  });
}

}  // namespace sbgm::cli
