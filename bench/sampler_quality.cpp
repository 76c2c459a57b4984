// Sample quality against network evaluations for every sampler (docs/samplers.md).
//
//   sbgm_bench_samplers (--checkpoint RUN_DIR | --gmm-dataset NAME [--sde KIND]) --dataset NAME [--n N]
//                       [--threads T] [--seeds K] [--only PREFIX[,PREFIX...]]   (PREFIX: of the names as printed)
//                       [--fit-data FILE.npy [--fit-rows N] [--fit-nodes G] [--fit-ratio R]]   (the "fitted" rows)
//   sbgm_bench_samplers --dataset anisoSEED --write-training-data FILE.npy [--n N]
//
// The model is a trained run, or the exact diffused mixture of a toy dataset (ring8, bimodal1d,
// or anisoSEED: a random mixture of six anisotropic Gaussians)
// under the SDE KIND (default VP; linear: flow matching's straight path, where only the ODE and
// the multistep solvers on the time schedule run), which isolates each sampler's own error. Each sampler draws N samples
// (one chunk) with each of the seeds 1..K; quality is the energy distance to N held-out draws of
// the dataset (seed 12345, never used in training), and where the dataset is a known mixture, the
// mean log-density of the samples under it, each as the mean over the seeds ± its standard error
// (one seed's figure varies by more than the differences between good samplers). Evaluations are
// counted by wrapping the score model. The first row measures two independent held-out sets
// against each other: the floor of the metric at this N. --write-training-data writes N draws of
// the dataset (seed 777, apart from the held-out sets' and the samplers') to train a network on,
// for the random mixtures that `sbgm train --dataset` does not know.
// Prints a Markdown table.

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "fitted_schedule.hpp"
#include "sbgm/data/gaussian_mixture.hpp"
#include "sbgm/data/toy.hpp"
#include "sbgm/eval/metrics.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {


// Counts batched network evaluations, of the score or (the ODE) of the velocity.
class CountingScore final : public ScoreModel {
 public:
  explicit CountingScore(ScoreModel& inner) : inner_(inner) {}
  at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override {
    calls += x.size(0);  // per-sample evaluations: adaptive samplers evaluate fewer rows as samples finish
    return inner_.score(x, t, y);
  }
  at::Tensor velocity(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y, const SDE& sde) override {
    calls += x.size(0);
    return inner_.velocity(x, t, y, sde);
  }
  int64_t calls = 0;

 private:
  ScoreModel& inner_;
};

struct Row {
  std::string name;
  SamplerOptions options;
  bool fitted = false;  // on the schedule fitted to the model (--fit-data; fitted_schedule.hpp)
};

// A random 2-D mixture of six anisotropic Gaussians (--gmm-dataset anisoSEED): means uniform in
// [-3, 3]^2, covariances R diag(a, b) R^T with a, b log-uniform in [0.005, 0.5] and R a random
// rotation, weights from a Dirichlet(2) draw — narrow, tilted, unequal modes.
GaussianMixture random_anisotropic_mixture(uint64_t seed) {
  at::Generator gen = make_generator(at::kCPU, seed);
  const auto dbl = at::TensorOptions().dtype(at::kDouble);
  const int64_t k = 6;
  const at::Tensor means = at::rand({k, 2}, gen, dbl) * 6 - 3;
  const at::Tensor scales = at::exp(at::rand({k, 2}, gen, dbl) * std::log(100.0) + std::log(0.005));
  const at::Tensor angle = at::rand({k}, gen, dbl) * M_PI;
  const at::Tensor c = at::cos(angle), s = at::sin(angle);
  const at::Tensor rot = at::stack({at::stack({c, -s}, 1), at::stack({s, c}, 1)}, 1);  // [k, 2, 2]
  const at::Tensor covs = rot.matmul(at::diag_embed(scales)).matmul(rot.transpose(1, 2));
  const at::Tensor gamma = -at::log(at::rand({k, 2}, gen, dbl)).sum(1);  // Gamma(2) draws
  return GaussianMixture(gamma / gamma.sum(), means, covs);
}

std::vector<Row> samplers() {
  std::vector<Row> rows;
  auto add = [&](const std::string& name, SamplerKind kind, int64_t steps, auto&& tweak, bool fitted = false) {
    SamplerOptions o;
    o.kind = kind;
    o.steps = steps;
    tweak(o);
    rows.push_back({name, o, fitted});
  };
  auto none = [](SamplerOptions&) {};
  for (int64_t k : {1000, 200, 100, 50}) add("em " + std::to_string(k), SamplerKind::EulerMaruyama, k, none);
  for (int64_t k : {1000, 100, 50}) add("ancestral " + std::to_string(k), SamplerKind::Ancestral, k, none);
  for (int64_t k : {500, 50})
    add("pc " + std::to_string(k) + " (1 Langevin step, snr 0.16)", SamplerKind::PredictorCorrector, k, none);
  for (double tol : {1e-5, 1e-3})
    add("ode dopri5 rtol=atol=" + std::string(tol == 1e-5 ? "1e-5" : "1e-3"), SamplerKind::ProbabilityFlow, 1,
        [tol](SamplerOptions& o) { o.solver.rtol = o.solver.atol = tol; });
  add("ode heun 50", SamplerKind::ProbabilityFlow, 50, [](SamplerOptions& o) { o.solver.kind = SolverKind::Heun; });
  add("ode rk4 25", SamplerKind::ProbabilityFlow, 25, [](SamplerOptions& o) { o.solver.kind = SolverKind::RK4; });
  // Few evaluations (flow models' straight paths are meant to need them).
  for (int64_t k : {10, 5})
    add("ode heun " + std::to_string(k), SamplerKind::ProbabilityFlow, k, [](SamplerOptions& o) { o.solver.kind = SolverKind::Heun; });
  for (int64_t k : {20, 10})
    add("ode euler " + std::to_string(k), SamplerKind::ProbabilityFlow, k, [](SamplerOptions& o) { o.solver.kind = SolverKind::Euler; });
  for (int64_t k : {10, 18, 25, 50}) add("edm " + std::to_string(k), SamplerKind::EDMHeun, k, none);
  // S_churn / N is capped at sqrt(2) - 1 per step: at 50 levels churn 20 is already the most there is.
  for (double churn : {10.0, 20.0})
    add("edm 50, churn " + std::to_string(static_cast<int>(churn)), SamplerKind::EDMHeun, 50,
        [churn](SamplerOptions& o) { o.edm.churn = churn; });
  // The few-step solvers (one evaluation per step) on each step schedule.
  for (SamplerKind kind : {SamplerKind::DDIM, SamplerKind::DPMSolverPP2M, SamplerKind::DPMSolverPP3M, SamplerKind::UniPC})
    for (int64_t k : {10, 20})
      for (StepSchedule schedule : {StepSchedule::LogSNR, StepSchedule::Time, StepSchedule::Karras, StepSchedule::Adaptive})
        add(to_string(kind) + " " + std::to_string(k) + " " + to_string(schedule), kind, k,
            [schedule](SamplerOptions& o) { o.multistep.schedule = schedule; });
  for (SamplerKind kind : {SamplerKind::DDIM, SamplerKind::DPMSolverPP2M, SamplerKind::DPMSolverPP3M, SamplerKind::UniPC})
    for (int64_t k : {10, 20}) add(to_string(kind) + " " + std::to_string(k) + " fitted", kind, k, none, true);
  // {schedule}: the schedule these rows leave to the path (logsnr; time on a flow model's linear path).
  add("ddim 50 {schedule}", SamplerKind::DDIM, 50, none);
  add("ddim 100 {schedule}, eta 1", SamplerKind::DDIM, 100, [](SamplerOptions& o) { o.multistep.eta = 1; });
  // The plug-in reverse SDEs between the reverse SDE (lambda 0) and the ODE (lambda 1).
  for (double lambda : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    char name[64];
    std::snprintf(name, sizeof name, "lambda %.2f: em 200", lambda);
    add(name, SamplerKind::EulerMaruyama, 200, [lambda](SamplerOptions& o) { o.lambda = lambda; });
    for (int64_t k : {20, 50}) {
      std::snprintf(name, sizeof name, "lambda %.2f: dpmpp2m %lld {schedule}", lambda, static_cast<long long>(k));
      add(name, SamplerKind::DPMSolverPP2M, k, [lambda](SamplerOptions& o) { o.lambda = lambda; });
    }
    for (int64_t k : {10, 20, 50}) {
      std::snprintf(name, sizeof name, "lambda %.2f: unipc %lld {schedule}", lambda, static_cast<long long>(k));
      add(name, SamplerKind::UniPC, k, [lambda](SamplerOptions& o) { o.lambda = lambda; });
    }
    std::snprintf(name, sizeof name, "lambda %.2f: ddim 20 {schedule}", lambda);
    add(name, SamplerKind::DDIM, 20, [lambda](SamplerOptions& o) { o.lambda = lambda; });
    for (SamplerKind kind : {SamplerKind::DDIM, SamplerKind::DPMSolverPP2M, SamplerKind::UniPC})
      for (const char* schedule : {"adaptive", "fitted"}) {
        std::snprintf(name, sizeof name, "lambda %.2f: %s 20 %s", lambda, to_string(kind).c_str(), schedule);
        const bool fitted = std::string(schedule) == "fitted";
        add(name, kind, 20, [lambda, fitted](SamplerOptions& o) {
          o.lambda = lambda;
          if (!fitted) o.multistep.schedule = StepSchedule::Adaptive;
        }, fitted);
      }
  }
  // The plug-in reverse SDE with an ODE range: the flow on the middle noise levels, the noise
  // above and below (docs/samplers.md, "An ODE range").
  struct OdeRangeRow {
    SamplerKind kind;
    int64_t steps;
    double lambda, low, high;
  };
  for (const OdeRangeRow& r : {OdeRangeRow{SamplerKind::UniPC, 20, 0, 0.3, 1}, OdeRangeRow{SamplerKind::UniPC, 20, 0, 0.2, 1},
                               OdeRangeRow{SamplerKind::UniPC, 20, 0, 0.3, 3}, OdeRangeRow{SamplerKind::UniPC, 20, 0.5, 0.3, 1},
                               OdeRangeRow{SamplerKind::DPMSolverPP2M, 20, 0, 0.3, 1}, OdeRangeRow{SamplerKind::UniPC, 15, 0, 0.3, 1},
                               OdeRangeRow{SamplerKind::UniPC, 10, 0, 0.3, 1}, OdeRangeRow{SamplerKind::UniPC, 50, 0, 0.3, 1}})
    for (bool fitted : {false, true}) {
      char name[96];
      std::snprintf(name, sizeof name, "lambda %.2f ode-range %g..%g: %s %lld %s", r.lambda, r.low, r.high,
                    to_string(r.kind).c_str(), static_cast<long long>(r.steps), fitted ? "fitted" : "{schedule}");
      add(name, r.kind, r.steps, [r](SamplerOptions& o) {
        o.lambda = r.lambda;
        o.multistep.ode_range = std::pair{r.low, r.high};
      }, fitted);
    }
  // Restart sampling: the deterministic solve, restarted `times` times between two noise levels
  // (docs/samplers.md, "Restart sampling").
  struct RestartRow {
    int64_t steps;
    Restart restart;
  };
  for (const RestartRow& r : {RestartRow{10, {2, 4, 0.2, 2.0}}, RestartRow{12, {1, 4, 0.1, 0.5}},
                              RestartRow{20, {2, 8, 0.05, 0.5}}, RestartRow{20, {2, 8, 0.1, 1.0}},
                              RestartRow{20, {2, 8, 0.2, 2.0}}, RestartRow{20, {4, 5, 0.2, 2.0}}}) {
    char name[96];
    std::snprintf(name, sizeof name, "restart unipc %lld + %lldx%lld in [%.2f, %.2f]", static_cast<long long>(r.steps),
                  static_cast<long long>(r.restart.times), static_cast<long long>(r.restart.steps), r.restart.low,
                  r.restart.high);
    add(name, SamplerKind::UniPC, r.steps, [r](SamplerOptions& o) { o.multistep.restart = r.restart; });
  }
  return rows;
}

}  // namespace

int run(int argc, char** argv) {
  const std::string checkpoint = bench_arg(argc, argv, "--checkpoint", "");
  const std::string gmm_dataset = bench_arg(argc, argv, "--gmm-dataset", "");
  const std::string dataset = bench_arg(argc, argv, "--dataset", gmm_dataset);
  const int64_t n = bench_int_arg(argc, argv, "--n", 4000);
  // Run the samplers whose names start with one of these comma-separated prefixes (all: empty).
  const std::string only = bench_arg(argc, argv, "--only", "");
  const auto chosen = [&](const std::string& name) {
    for (size_t start = 0; start <= only.size();) {
      const size_t end = std::min(only.find(',', start), only.size());
      if (name.rfind(only.substr(start, end - start), 0) == 0) return true;
      start = end + 1;
    }
    return false;
  };
  const int64_t seeds = bench_int_arg(argc, argv, "--seeds", 1);
  configure_threads(static_cast<int>(bench_int_arg(argc, argv, "--threads", 0)));
  const std::string training_data = bench_arg(argc, argv, "--write-training-data", "");
  if ((checkpoint.empty() == gmm_dataset.empty() && training_data.empty()) || dataset.empty() || seeds < 1) {
    std::fprintf(stderr, "usage: sbgm_bench_samplers (--checkpoint RUN_DIR | --gmm-dataset NAME) --dataset NAME [--n N] [--seeds K >= 1] [--only PREFIX[,PREFIX...]]\n       sbgm_bench_samplers --dataset NAME --write-training-data FILE.npy [--n N]\n");
    return 2;
  }
  const bool aniso = dataset.rfind("aniso", 0) == 0;
  const std::optional<GaussianMixture> truth =
      aniso ? std::optional(random_anisotropic_mixture(std::stoull("0" + dataset.substr(5)))) : toy_dataset_mixture(dataset);
  auto draws = [&](uint64_t seed) {
    return (aniso ? truth->sample(n, make_generator(at::kCPU, seed)) : make_toy_dataset(dataset, n, seed)).to(at::kDouble);
  };
  if (!training_data.empty()) {
    write_npy(training_data, draws(777).to(at::kFloat));
    return 0;
  }
  Model model;
  if (!checkpoint.empty()) {
    model = load_model(checkpoint);
  } else {
    if (!truth) throw std::runtime_error(gmm_dataset + " is not a Gaussian mixture");
    SDEConfig path;
    path.kind = sde_kind_from_string(bench_arg(argc, argv, "--sde", "vp"));
    model = mixture_model(*truth, path);
  }
  const at::Tensor held_out = draws(12345), other = draws(54321);
  auto mean_logp = [&](const at::Tensor& x) { return truth->log_prob(x).mean().item<double>(); };
  // "mean ± standard error" over the seeds (just the value for one seed).
  auto summary = [&](const std::vector<double>& v, const char* format) {
    double mean = 0, var = 0;
    for (double e : v) mean += e / static_cast<double>(v.size());
    for (double e : v) var += (e - mean) * (e - mean) / std::max<double>(1.0, static_cast<double>(v.size()) - 1);
    char text[64];
    std::snprintf(text, sizeof text, format, mean);
    std::string out = text;
    if (v.size() > 1) {
      std::snprintf(text, sizeof text, format, std::sqrt(var / static_cast<double>(v.size())));
      out += std::string(" ± ") + text;
    }
    return out;
  };
  auto inner = model.score_model();
  // The fitted schedule's step costs (fitted_schedule.hpp), from draws of the data (--fit-data FILE,
  // in the data's units; the first --fit-rows of them), on a grid of --fit-nodes noise levels;
  // --fit-ratio bounds the ratio of successive steps (default: none).
  std::optional<bench::StepCosts> step_costs;
  const double fit_ratio = std::stod(bench_arg(argc, argv, "--fit-ratio", "inf"));
  if (const std::string fit_data = bench_arg(argc, argv, "--fit-data", ""); !fit_data.empty()) {
    const at::Tensor data = model.scaling.to_model(read_npy(fit_data).to(model.dtype));
    const int64_t rows = std::min<int64_t>(data.size(0), bench_int_arg(argc, argv, "--fit-rows", 4096));
    step_costs = bench::measure_step_costs(*inner, *model.sde, data.narrow(0, 0, rows),
                                           bench_int_arg(argc, argv, "--fit-nodes", 200), make_generator(at::kCPU, 999));
  }
  std::printf("model: %s; dataset %s; %lld samples per sampler and seed, %lld seed(s)\n\n",
              checkpoint.empty() ? ("exact " + gmm_dataset).c_str() : checkpoint.c_str(), dataset.c_str(),
              static_cast<long long>(n), static_cast<long long>(seeds));
  std::map<int64_t, std::vector<double>> fitted_times;  // by steps: each schedule is found once
  const auto fitted_for = [&](int64_t steps) -> const std::vector<double>& {
    auto found = fitted_times.find(steps);
    if (found == fitted_times.end())
      found = fitted_times.emplace(steps, bench::fitted_step_times(*step_costs, *model.sde, steps, fit_ratio)).first;
    return found->second;
  };
  if (step_costs) {
    std::printf("fitted schedule of 20 steps, sigma / m:");
    for (double t : fitted_for(20)) std::printf(" %.3g", model.sde->noise_to_signal(t));
    std::printf("\n\n");
  }
  std::printf("| sampler | evaluations | energy distance | mean true log p | seconds per seed |\n|---|---|---|---|---|\n");
  std::printf("| held-out data (floor) | – | %.4f | %s | – |\n", energy_distance(other, held_out),
              truth ? summary({mean_logp(other)}, "%.3f").c_str() : "–");
  for (Row row : samplers()) {
    if (row.fitted && !step_costs) continue;
    try {
      check_sampler_fits(row.options.kind, *model.sde);  // a flow path: the ODE and the multistep solvers
      if (is_multistep(row.options.kind)) check_step_schedule(*model.sde, row.options.multistep.schedule, row.options.steps);
    } catch (const std::exception&) {
      continue;
    }
    // The name as printed ({schedule} filled in), which is what --only matches.
    std::string label = row.name;
    if (const auto at = label.find("{schedule}"); at != std::string::npos)
      label.replace(at, 10, to_string(resolve_schedule(row.options.multistep.schedule, *model.sde)));
    if (!chosen(label)) continue;
    if (row.fitted) row.options.multistep.times = fitted_for(row.options.steps);
    CountingScore counted(*inner);
    auto sampler = make_sampler(row.options);
    DrawConfig draw;
    draw.n = n;
    draw.chunk_size = n;
    std::vector<double> distances, logps;
    double secs = 0;
    for (int64_t seed = 1; seed <= seeds; ++seed) {
      const auto t0 = std::chrono::steady_clock::now();
      at::Tensor x = draw_samples(*sampler, counted, *model.sde, model.data_shape, draw, at::Tensor(),
                                  make_generator(at::kCPU, static_cast<uint64_t>(seed)), at::TensorOptions().dtype(model.dtype));
      secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      x = model.scaling.to_data(x).to(at::kDouble);
      distances.push_back(energy_distance(x, held_out));
      if (truth) logps.push_back(mean_logp(x));
    }
    std::printf("| %s | %lld | %s | %s | %.2f |\n", label.c_str(), static_cast<long long>(counted.calls / (n * seeds)),
                summary(distances, "%.4f").c_str(), truth ? summary(logps, "%.3f").c_str() : "–", secs / static_cast<double>(seeds));
    std::fflush(stdout);
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // a malformed number (--n x, --seeds x), an unreadable run
    std::fprintf(stderr, "sbgm_bench_samplers: %s\n", e.what());
    return 1;
  }
}
