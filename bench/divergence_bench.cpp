// Exact divergence of an MLP score: the network's own (MLPScoreNet::forward_with_divergence:
// forward tangents, or for a ReLU MLP on the CPU the trace kept between calls) against D reverse
// passes through autograd (ScoreModel's default), per data dimension D.
//
//   sbgm_bench_divergence [--batch 1000] [--width 256] [--depth 3] [--activation relu|silu|...]
//                         [--threads 1] [--reps 20]
//
// Every call moves the points a little along a fixed direction and t a little towards 0, as an
// ODE solve does between evaluations, so that a ReLU network's units switch as they do there
// (a repeated input would show the kept trace's best case). Prints a markdown table of
// milliseconds per call (median of reps) for D = 2, 8, 32, 128.

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "sbgm/nets/net_config.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {

template <class F>
double median_ms(int reps, F&& f) {
  std::vector<double> ms;
  f();  // warm-up
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + reps / 2, ms.end());
  return ms[reps / 2];
}

}  // namespace

int main(int argc, char** argv) try {
  const int64_t batch = bench_int_arg(argc, argv, "--batch", 1000);
  const int reps = static_cast<int>(bench_int_arg(argc, argv, "--reps", 20));
  if (batch < 1 || reps < 1) throw std::invalid_argument("--batch and --reps must be at least 1");
  configure_threads(static_cast<int>(bench_int_arg(argc, argv, "--threads", 1)));
  tune_allocator();
  NetConfig config;
  config.width = bench_int_arg(argc, argv, "--width", 256);
  config.depth = bench_int_arg(argc, argv, "--depth", 3);
  config.activation = activation_from_string(bench_arg(argc, argv, "--activation", "relu"));
  const auto sde = std::shared_ptr<const SDE>(make_sde(SDEConfig{}));
  std::printf("%s MLP %lldx%lld, batch %lld\n\n", to_string(config.activation).c_str(),
              static_cast<long long>(config.width), static_cast<long long>(config.depth), static_cast<long long>(batch));
  std::printf("| D | the network's own (ms) | autograd, D reverse passes (ms) | ratio |\n|---|---|---|---|\n");
  for (int64_t d : {2, 8, 32, 128}) {
    at::manual_seed(0);
    NetworkScore model(make_score_net(config, {d}), sde, Parameterization::Noise);
    const at::Tensor x0 = at::randn({batch, d}), t0 = at::rand({batch}) * 0.9 + 0.05;
    // about a thousandth of the way through the flow per call
    const at::Tensor dx = at::randn({1, d}) * (3e-3 / std::sqrt(static_cast<double>(d)));
    const auto time_calls = [&](const auto& divergence) {
      int64_t call = 0;
      return median_ms(reps, [&] {
        ++call;
        const at::Tensor x = x0 + dx * static_cast<double>(call), t = (t0 - 1e-3 * static_cast<double>(call)).clamp_min(1e-3);
        divergence(x, t);
      });
    };
    const double own = time_calls([&](const at::Tensor& x, const at::Tensor& t) { model.score_and_divergence(x, t, at::Tensor()); });
    const double autograd =
        time_calls([&](const at::Tensor& x, const at::Tensor& t) { model.ScoreModel::score_and_divergence(x, t, at::Tensor()); });
    std::printf("| %lld | %.2f | %.2f | %.2f |\n", static_cast<long long>(d), own, autograd, autograd / own);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sbgm_bench_divergence: %s\n", e.what());
  return 1;
}
