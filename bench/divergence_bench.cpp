// Exact divergence of an MLP score: forward tangents (MLPScoreNet::forward_with_divergence)
// against D reverse passes through autograd (ScoreModel's default), per data dimension D.
//
//   sbgm_bench_divergence [--batch 1000] [--width 256] [--depth 3] [--threads 1] [--reps 20]
//
// Prints a markdown table of milliseconds per call (median of reps) for D = 2, 8, 32, 128.

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "sbgm/nets/score_model.hpp"
#include "sbgm/nets/score_net.hpp"
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

int main(int argc, char** argv) {
  const int64_t batch = std::stoll(bench_arg(argc, argv, "--batch", "1000"));
  const int reps = std::stoi(bench_arg(argc, argv, "--reps", "20"));
  configure_threads(std::stoi(bench_arg(argc, argv, "--threads", "1")));
  tune_allocator();
  NetConfig config;
  config.width = std::stoll(bench_arg(argc, argv, "--width", "256"));
  config.depth = std::stoll(bench_arg(argc, argv, "--depth", "3"));
  const auto sde = std::shared_ptr<const SDE>(make_sde(SDEConfig{}));
  std::printf("| D | forward tangents (ms) | autograd, D reverse passes (ms) | ratio |\n|---|---|---|---|\n");
  for (int64_t d : {2, 8, 32, 128}) {
    at::manual_seed(0);
    NetworkScore model(make_score_net(config, {d}), sde, Parameterization::Noise);
    const at::Tensor x = at::randn({batch, d}), t = at::rand({batch}) * 0.9 + 0.05;
    const double fast = median_ms(reps, [&] { model.score_and_divergence(x, t, at::Tensor()); });
    const double slow = median_ms(reps, [&] { model.ScoreModel::score_and_divergence(x, t, at::Tensor()); });
    std::printf("| %lld | %.2f | %.2f | %.2f |\n", static_cast<long long>(d), fast, slow, slow / fast);
  }
  return 0;
}
