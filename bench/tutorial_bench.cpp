// The tutorial's problem in sbgm: training steps/s of its MLP at batch 8 and the time of
// Euler-Maruyama sampling. Prints one JSON object; bench/compare_tutorial.py runs it beside the
// PyTorch reference and reports the ratios.
//
//   sbgm_bench_tutorial [--train-steps N] [--train-threads T] [--samples N] [--sample-steps K] [--sample-threads T]

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sbgm/data/toy.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/run_config.hpp"
#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/trainer.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int64_t arg(int argc, char** argv, const char* name, int64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoll(argv[i + 1]);
  return fallback;
}

// The tutorial's configuration (examples/tutorial.toml).
RunConfig tutorial_config() {
  RunConfig c;
  c.merge_toml_file(std::string(SBGM_SOURCE_DIR) + "/examples/tutorial.toml");
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t train_steps = arg(argc, argv, "--train-steps", 3000);
  const int64_t train_threads = arg(argc, argv, "--train-threads", 1);
  const int64_t samples = arg(argc, argv, "--samples", 5000);
  const int64_t sample_steps = arg(argc, argv, "--sample-steps", 1000);
  const int64_t sample_threads = arg(argc, argv, "--sample-threads", 0);

  RunConfig config = tutorial_config();
  config.train.steps = train_steps + 200;
  const at::Tensor data = make_toy_dataset("circle8", 8, 0);
  std::shared_ptr<const SDE> sde = make_sde(config.sde);
  auto net = build_net(config, {2}, 0);

  configure_threads(static_cast<int>(train_threads));
  Trainer trainer(net, nullptr, sde, config.model.output, config.train, data);
  for (int i = 0; i < 200; ++i) trainer.step();  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  at::Tensor loss;
  for (int64_t i = 0; i < train_steps; ++i) loss = trainer.step();
  const double train_time = seconds_since(t0);
  const double final_loss = loss.item<double>();

  configure_threads(static_cast<int>(sample_threads));
  tune_allocator();
  net->eval();
  NetworkScore score(net, sde, config.model.output);
  EulerMaruyama sampler({sample_steps, true});
  DrawConfig draw;
  draw.n = samples;
  t0 = std::chrono::steady_clock::now();
  const at::Tensor x = draw_samples(sampler, score, *sde, {2}, draw, at::Tensor(), make_generator(at::kCPU, 1),
                                    at::TensorOptions());
  const double sample_time = seconds_since(t0);

  std::printf(
      "{\"train_steps_per_s\": %.2f, \"train_threads\": %d, \"final_loss\": %.4f, \"sample_seconds\": %.3f, "
      "\"sample_threads\": %d, \"samples\": %lld, \"sample_steps\": %lld, \"sample_mean_radius\": %.4f}\n",
      train_steps / train_time, static_cast<int>(train_threads), final_loss, sample_time, at::get_num_threads(),
      static_cast<long long>(samples), static_cast<long long>(sample_steps), x.norm(2, 1).mean().item<double>());
  return 0;
}
