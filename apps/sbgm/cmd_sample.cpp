#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "cli_common.hpp"
#include "commands.hpp"
#include "job.hpp"
#include "model_source.hpp"
#include "sbgm/data/dataset.hpp"
#include "sbgm/data/gaussian_mixture.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/plot/plots.hpp"
#include "sbgm/run/iid_posterior.hpp"
#include "sbgm/run/image_pictures.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/posterior_mode.hpp"
#include "sbgm/run/run_defaults.hpp"
#include "sbgm/run/sample_request.hpp"
#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm::cli {
namespace {

// The same k prior draws taken down the plug-in reverse SDEs by Euler-Maruyama — the reverse SDE
// (lambda 0) and one between it and the flow (the --lambda given, else 0.5), as in Huang et al.'s
// figure 5 — and by the ODE solver. A flow path has the ODE alone.
std::vector<PathPanel> trajectory_panels(const Model& model, const SamplerOptions& options, int64_t k, uint64_t seed,
                                         const at::Tensor& cond, const ScoreOptions& score) {
  SamplerOptions sde = options, ode = options;
  sde.kind = SamplerKind::EulerMaruyama;
  if (options.kind == SamplerKind::EDMHeun || is_multistep(options.kind))  // steps of another kind
    sde.steps = ode.steps = sampling_for(model.config, model.cond_dim, SamplerKind::EulerMaruyama).steps;
  const double middle = options.lambda && *options.lambda > 0 && *options.lambda < 1 ? *options.lambda : 0.5;
  SamplerOptions plug_in = sde;
  sde.lambda = 0.0;
  plug_in.lambda = middle;
  ode.kind = SamplerKind::ProbabilityFlow;
  ode.lambda.reset();
  char lambda_text[32];
  std::snprintf(lambda_text, sizeof lambda_text, "%g", middle);
  std::vector<PathPanel> panels;
  for (const auto& [o, title] :
       {std::pair{sde, "reverse SDE (lambda 0), Euler-Maruyama " + std::to_string(sde.steps) + " steps"},
        std::pair{plug_in, "plug-in reverse SDE, lambda " + std::string(lambda_text)},
        std::pair{ode, "probability-flow ODE (lambda 1), " + to_string(ode.solver.kind)}}) {
    // A flow path, or a model whose score is not its path's: the ODE alone.
    if (o.kind != SamplerKind::ProbabilityFlow && (!model.sde->has_reverse_sde() || !model.has_path_score())) continue;
    const std::unique_ptr<Sampler> sampler = make_sampler(o);
    Trajectories paths = model_trajectories(model, *sampler, k, seed, cond, score);
    panels.push_back({title, std::move(paths.times), paths.states});
  }
  return panels;
}

// The samples' mean log-density, an estimate of minus the model's entropy (of the mixture over
// the conditions given), with its standard error (SampleReport).
void print_log_prob_summary(const SampleReport& report) {
  if (std::isnan(report.mean_log_prob)) return;
  std::cout << "log p of the samples: mean " << report.mean_log_prob << " nats +- " << report.mean_log_prob_std_error
            << " (standard error" << (report.support.rows > 0 ? "; the box's share of draws inside counted once a condition" : "")
            << ")\n";
}

}  // namespace

void add_sample_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("sample", "draw samples from a trained model");
  struct Options {
    ModelSource source;
    int nproc = 1;
    std::string out, png, cond, device = "cpu", sampler, predictor = "em", log_prob, divergence = "exact";
    int64_t probes = 1;
    double guidance = 0;
    int64_t set_orders = 1;
    std::string precision = "float32";
    SolverFlags solver;
    MultistepFlags multistep;
    SamplerOptions sampling;
    int64_t n = 1000, threads = 0, trajectories = 0;
    uint64_t seed = 0;
    CLI::Option* steps_option = nullptr;
    CLI::Option* n_option = nullptr;
    CLI::Option* divergence_option = nullptr;
    CLI::Option* probes_option = nullptr;
    int64_t support_draws = 0;
    CLI::Option* support_draws_option = nullptr;
    bool map = false, iid = false;
    std::string iid_method = "gauss", prior;
    int64_t iid_draws = IIDConfig{}.covariance_samples;
  };
  auto opt = std::make_shared<Options>();
  SamplerOptions& so = opt->sampling;
  opt->source.add_to(*cmd);
  add_precision_option(*cmd, opt->precision);
  add_nproc_option(*cmd, opt->nproc);
  cmd->add_option("--out", opt->out, "output .npy file of shape [n, ...] ([M, n, ...] with --cond, [n, ...] with --iid)")->required();
  opt->n_option = cmd->add_option("--n", opt->n, "number of samples (per condition with --cond); with --map the starting samples (default 100)")
                     ->capture_default_str();
  cmd->add_flag("--map", opt->map,
                "write the mode instead of samples (the MAP estimate of p(theta | x) for each condition, [M, ...]): "
                "gradient ascent along the score from N posterior samples, the end point of highest log-density kept");
  cmd->add_option("--cond", opt->cond, "conditional model: conditions .npy/.csv [M, C]; n samples for each row");
  cmd->add_option("--log-prob", opt->log_prob,
                  "also write each sample's log-density in nats, .npy [n] ([M, n] with --cond): the density of the "
                  "probability-flow ODE's draws, had in the same solve (the sampler must be ode, the default with "
                  "this flag), for importance weights p / q");
  opt->divergence_option =
      cmd->add_option("--divergence", opt->divergence, "with --log-prob: exact or hutchinson")->capture_default_str();
  opt->probes_option =
      cmd->add_option("--probes", opt->probes, "with --log-prob --divergence hutchinson: probes, fixed through each solve")
          ->capture_default_str();
  opt->support_draws_option = add_support_draws_option(*cmd, opt->support_draws);
  cmd->add_flag("--iid", opt->iid,
                "the rows of --cond are independent observations of one parameter: n samples of p(theta | all of "
                "them), [n, ...], composed from the model of p(theta | x)");
  cmd->add_option("--iid-method", opt->iid_method,
                  "with --iid: gauss (each score weighted by Gaussian approximations of the posteriors and the prior; "
                  "exact for Gaussians) or factorized (the plain sum of scores)")
      ->capture_default_str();
  cmd->add_option("--iid-draws", opt->iid_draws,
                  "with --iid gauss: draws per observation for its posterior's covariance")
      ->capture_default_str();
  cmd->add_option("--prior", opt->prior,
                  "with --iid: the prior as a Gaussian mixture .npz (weights, means, covs) in data space; default: the "
                  "network's unconditional mode if trained with condition dropout, else a Gaussian fitted to the "
                  "training parameters");
  cmd->add_option("--guidance", opt->guidance,
                  "classifier-free guidance scale w (a model trained with train.cond_dropout): (1+w) s(x|y) - w s(x); 0: plain conditional, -1: unconditional")
      ->capture_default_str();
  add_set_orders_option(*cmd, opt->set_orders);
  cmd->add_option("--sampler", opt->sampler,
                  "em (reverse SDE), pc (predictor-corrector), ancestral, ode (probability flow), edm (EDM's Heun), "
                  "or the few-step solvers ddim, dpmpp2m, dpmpp3m (DPM-Solver++) and unipc; default: the run's "
                  "sample.sampler");
  opt->steps_option = cmd->add_option(
      "--steps", so.steps,
      "steps (edm: noise levels); default: the run's sample.steps for its own sampler, else 18 for edm, 20 for "
      "ddim, dpmpp2m, dpmpp3m and unipc, and 1000 for the others");
  cmd->add_option("--predictor", opt->predictor, "pc: em or ancestral")->capture_default_str();
  cmd->add_option("--corrector-steps", so.corrector_steps, "pc: Langevin steps after each predictor step")
      ->capture_default_str();
  cmd->add_option("--snr", so.snr, "pc: signal-to-noise ratio of the Langevin steps")->capture_default_str();
  opt->solver.add_to(*cmd, "ode");
  opt->multistep.add_to(*cmd);
  cmd->add_option("--rho", so.edm.rho, "edm, and --schedule karras: curvature of the noise-level schedule")->capture_default_str();
  cmd->add_option("--churn", so.edm.churn, "edm: stochasticity S_churn (0: deterministic)")->capture_default_str();
  cmd->add_option("--seed", opt->seed, "random seed")->capture_default_str();
  cmd->add_option("--png", opt->png, "also draw the samples (beside the training data when available)");
  cmd->add_option("--trajectories", opt->trajectories,
                  "with --png: draw this many paths through the reverse SDE and the probability-flow ODE instead (for images: the denoising sequence of this many samples)");
  cmd->add_option("--device", opt->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--threads", opt->threads, "CPU threads (0: one per core)")->capture_default_str();
  cmd->callback([&action, opt] {
    action = [opt]() -> int {
      if (opt->n < 1) throw InvalidArgument("--n must be at least 1");
      if (opt->steps_option->count() > 0 && opt->sampling.steps < 1) throw InvalidArgument("--steps must be at least 1");
      if (opt->threads < 0) throw InvalidArgument("--threads must not be negative");
      check_output_path(opt->out, ".npy");
      if (!opt->png.empty()) check_output_path(opt->png, ".png");
      if (!opt->log_prob.empty()) check_output_path(opt->log_prob, ".npy");
      if (opt->trajectories < 0) throw InvalidArgument("--trajectories must not be negative");
      if (opt->trajectories > 0 && opt->png.empty()) throw InvalidArgument("--trajectories needs --png FILE.png");
      if (opt->map && (!opt->png.empty() || opt->guidance != 0))
        throw InvalidArgument("--map writes modes only: it takes neither --png nor --guidance");
      if (opt->iid && opt->cond.empty()) throw InvalidArgument("--iid needs the observations (--cond FILE, one row each)");
      if (opt->iid && (opt->map || opt->trajectories > 0)) throw InvalidArgument("--iid draws samples: it takes neither --map nor --trajectories");
      if (!opt->iid && !opt->prior.empty()) throw InvalidArgument("--prior applies to --iid only");
      if (opt->log_prob.empty() && (opt->divergence_option->count() > 0 || opt->probes_option->count() > 0))
        throw InvalidArgument("--divergence and --probes apply to --log-prob only");
      SampleRequest request;
      request.kind = opt->map ? SampleRequest::Kind::Modes
                     : opt->iid ? SampleRequest::Kind::IIDPosterior
                                : SampleRequest::Kind::Samples;
      request.n = opt->n;
      request.seed = opt->seed;
      request.sampler = opt->sampler;
      request.sampling = opt->sampling;
      request.steps_given = opt->steps_option->count() > 0;
      request.log_prob = !opt->log_prob.empty();
      request.divergence = divergence_from_string(opt->divergence);
      request.probes = opt->probes;
      if (opt->support_draws_option->count() > 0) request.support_draws = opt->support_draws;
      request.iid.method = iid_method_from_string(opt->iid_method);
      request.iid.covariance_samples = opt->iid_draws;
      if (!opt->prior.empty()) request.iid.prior = std::make_shared<const GaussianMixture>(read_gaussian_mixture(opt->prior));
      if (opt->map && opt->n_option->count() > 0) request.mode.starts = opt->n;
      if (!opt->sampler.empty()) sampler_kind_from_string(opt->sampler);  // an unknown name fails before any work
      request.sampling.predictor = predictor_kind_from_string(opt->predictor);
      request.sampling.solver = opt->solver.resolve();
      opt->multistep.apply(request.sampling);
      const Precision precision = precision_from_string(opt->precision);
      if (should_launch(opt->nproc)) return launch_local_job(opt->nproc);
      const Job job = join_model_job(opt->device, opt->threads);
      const c10::Device device = parse_device(job.device);
      Model model = opt->source.load(device);
      request.score = {opt->guidance, precision, opt->set_orders};
      request.comm = job.comm;
      if (!opt->cond.empty()) request.cond = load_data_file(opt->cond, 1, /*keep_double=*/true);
      check_request(model, request);  // a bad condition file or a missing iid prior fails before any work
      const at::Tensor& cond = request.cond;
      if (opt->iid && job.comm.is_root())
        std::cout << "iid posterior of " << cond.size(0) << " observations (" << to_string(request.iid.method)
                  << "), the prior's score from " << iid_prior_source(model, request.iid) << "\n";
      const SamplerOptions sampling = resolve_sampling(model, request);
      ProgressLine line("sample");
      const SampleReport report = run_sample_request(model, request, [&](int64_t d, int64_t t) { line.update(d, t); });
      const at::Tensor& samples = report.samples;
      if (opt->map) {
        line.finish();
        if (!job.comm.is_root()) return 0;
        check_finite(samples, "the modes (the model diverged)");
        write_npy(opt->out, samples);
        return 0;
      }
      line.finish();
      if (!job.comm.is_root()) return 0;  // rank 0 writes what every rank holds
      check_finite(samples, "the samples (the model diverged)");
      write_npy(opt->out, samples);
      if (request.log_prob) {
        write_npy(opt->log_prob, report.log_prob);
        print_log_prob_summary(report);
      }
      if (const std::string kept = report.support.summary(); !kept.empty()) std::cout << kept << "\n";
      const bool images = is_image_shape(model.data_shape);
      const std::unique_ptr<Sampler> sampler = make_sampler(sampling);
      const at::Tensor first = cond.defined() ? cond.narrow(0, 0, 1) : at::Tensor();
      if (opt->trajectories > 0 && images) {
        write_model_denoising_strip(opt->png, model, model_trajectories(model, *sampler, opt->trajectories, opt->seed, first, request.score));
      } else if (opt->trajectories > 0) {
        plot_trajectories(opt->png, trajectory_panels(model, sampling, opt->trajectories, opt->seed, first, request.score));
      } else if (!opt->png.empty() && opt->iid) {
        if (images) write_model_sample_grid(opt->png, model, samples);
        else plot_samples_alone(opt->png, samples);
      } else if (!opt->png.empty()) {
        const at::Tensor all = cond.defined() ? samples.flatten(0, 1) : samples;
        if (images) write_model_sample_grid(opt->png, model, all);
        else plot_samples(opt->png, picture_reference(model, request), all,
                          model.mixture ? "exact draws (grey)" : "data (grey)", "samples (blue)");
      }
      return 0;
    };
  });
}

}  // namespace sbgm::cli
