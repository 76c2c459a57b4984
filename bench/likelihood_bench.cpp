// Exact log-likelihood of N points under a trained MLP (docs/benchmarks.md): times sbgm's
// probability-flow solve and exports what bench/compare_likelihood.py needs to run the
// score_sde-style reference on the same model and points.
//
//   sbgm_bench_loglik --checkpoint RUN_DIR --export DIR [--n 10000] [--threads 1] [--rtol 1e-5] [--atol 1e-5]
//                     [--solver dopri5|bosh3|tsit5] [--controller pi|integral] [--divergence exact|autograd]
//                     [--error-control batch|row] [--dtype float32|float64]
//                     [--name sbgm_logp]
//
// DIR receives points.npy (data space), W<i>.npy / b<i>.npy (the EMA weights of each Linear),
// shift.npy / scale.npy (the standardisation, when the run has one) and NAME.npy; stdout is
// one JSON object with the settings, the seconds and the solver's statistics.

#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include "bench_args.hpp"
#include "sbgm/data/toy.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {

// The model's score with the base class's divergence: D reverse passes through autograd.
class AutogradDivergence final : public ScoreModel {
 public:
  explicit AutogradDivergence(std::unique_ptr<ScoreModel> inner) : inner_(std::move(inner)) {}
  at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override { return inner_->score(x, t, y); }

 private:
  std::unique_ptr<ScoreModel> inner_;
};

}  // namespace

int run(int argc, char** argv) {
  const std::string checkpoint = bench_arg(argc, argv, "--checkpoint", ""), dir = bench_arg(argc, argv, "--export", "");
  if (checkpoint.empty() || dir.empty()) {
    std::fprintf(stderr, "usage: sbgm_bench_loglik --checkpoint RUN_DIR --export DIR [--n N] [--threads T]\n");
    return 2;
  }
  const int64_t n = bench_int_arg(argc, argv, "--n", 10000);
  const int threads = static_cast<int>(bench_int_arg(argc, argv, "--threads", 1));
  configure_threads(threads);
  tune_allocator();
  Model model = load_model(checkpoint);
  // float64 for a tight solve (the oracle of per-point accuracy): float32 cannot meet 1e-9.
  if (bench_arg(argc, argv, "--dtype", "float32") == "float64") model.set_dtype(at::kDouble);
  if (model.config.model.kind != NetKind::MLP || model.config.model.time_embedding != TimeEmbeddingKind::Tutorial ||
      (model.config.model.activation != Activation::ReLU && model.config.model.activation != Activation::SiLU) ||
      model.config.sde.kind != SDEKind::VP) {
    std::fprintf(stderr,
                 "the reference reproduces a ReLU or SiLU MLP with the tutorial's time features on a VP SDE only\n");
    return 2;
  }
  const std::string dataset = model.config.data.dataset.empty() ? "ring8" : model.config.data.dataset;
  const at::Tensor points = make_toy_dataset(dataset, n, 777);
  write_npy(dir + "/points.npy", points);
  int64_t layer = 0;
  for (const auto& child : model.net->modules(/*include_self=*/false)) {
    if (const auto* linear = child->as<torch::nn::LinearImpl>()) {
      write_npy(dir + "/W" + std::to_string(layer) + ".npy", linear->weight);
      write_npy(dir + "/b" + std::to_string(layer) + ".npy", linear->bias);
      ++layer;
    }
  }
  if (!model.scaling.is_identity()) {
    write_npy(dir + "/shift.npy", model.scaling.shift);
    write_npy(dir + "/scale.npy", model.scaling.scale);
  }
  LikelihoodConfig lc;
  lc.solver.rtol = std::stod(bench_arg(argc, argv, "--rtol", "1e-5"));
  lc.solver.atol = std::stod(bench_arg(argc, argv, "--atol", "1e-5"));
  lc.solver.kind = solver_kind_from_string(bench_arg(argc, argv, "--solver", "dopri5"));
  lc.solver.control = step_control_from_string(bench_arg(argc, argv, "--controller", "pi"));
  const std::string error_control = bench_arg(argc, argv, "--error-control", "batch");
  if (error_control != "batch" && error_control != "row") throw std::invalid_argument("--error-control: batch or row");
  lc.solver.per_row = error_control == "row";
  // "autograd": the divergence through D reverse passes, as before forward tangents (for comparison).
  const bool autograd = bench_arg(argc, argv, "--divergence", "exact") == "autograd";
  lc.chunk_size = n;  // one solve over the whole batch, as the reference does
  const auto t0 = std::chrono::steady_clock::now();
  LikelihoodResult r;
  if (autograd) {
    AutogradDivergence score(model.score_model());
    r = log_likelihood(score, *model.sde, model.scaling.to_model(points), at::Tensor(), lc, make_generator(c10::kCPU, 0));
    r.log_prob += model.scaling.log_abs_det_jacobian();
  } else {
    r = model_log_likelihood(model, points, lc, 0);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_npy(dir + "/" + bench_arg(argc, argv, "--name", "sbgm_logp") + ".npy", r.log_prob);
  std::printf(
      "{\"n\": %lld, \"threads\": %d, \"layers\": %lld, \"activation\": \"%s\", \"output\": \"%s\", \"beta_min\": %.17g, \"beta_max\": %.17g, "
      "\"t_eps\": %.17g, \"T\": %.17g, \"rtol\": %.17g, \"atol\": %.17g, \"seconds\": %.6f, \"function_evals\": %lld, "
      "\"evals_per_point\": %.3f, \"accepted\": %lld, \"rejected\": %lld, \"mean_logp\": %.9f}\n",
      static_cast<long long>(n), threads, static_cast<long long>(layer), to_string(model.config.model.activation).c_str(),
      to_string(model.config.model.output).c_str(),
      model.config.sde.beta_min, model.config.sde.beta_max, model.config.sde.t_eps, model.config.sde.T, lc.solver.rtol,
      lc.solver.atol, seconds, static_cast<long long>(r.stats.function_evals),
      static_cast<double>(r.stats.row_evals) / static_cast<double>(n), static_cast<long long>(r.stats.accepted),
      static_cast<long long>(r.stats.rejected), r.log_prob.mean().item<double>());
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sbgm_bench_loglik: %s\n", e.what());
    return 1;
  }
}
