// Forward+backward throughput of one image network, for bench/compare_image_nets.py:
//   sbgm_bench_image_nets --shape C,H,W --batch B --iters N --threads T [--precision bfloat16]
//                         [--channels-last 1] [--device cuda] [--model.KEY VALUE ...]
// prints {"parameters": P, "images_per_s": R} (the loss is the mean squared output, the work of
// one training step without the optimiser). On CUDA each step ends by reading the loss back, so
// the clock stops when the GPU has finished, not when the kernels were queued.
#include <ATen/ATen.h>
#include <torch/utils.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "bench_args.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/run/run_config.hpp"
#include "sbgm/util/autocast.hpp"
#include "sbgm/util/runtime.hpp"

int main(int argc, char** argv) {
  using namespace sbgm;
  RunConfig config;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strncmp(argv[i], "--model.", 8) == 0) config.set(argv[i] + 2, argv[i + 1]);
  std::vector<int64_t> shape;
  std::stringstream text(bench_arg(argc, argv, "--shape", "1,28,28"));
  for (std::string item; std::getline(text, item, ',');) shape.push_back(std::stoll(item));
  const int64_t batch = std::stoll(bench_arg(argc, argv, "--batch", "32"));
  const int iters = std::stoi(bench_arg(argc, argv, "--iters", "10"));
  const Precision precision = precision_from_string(bench_arg(argc, argv, "--precision", "float32"));
  const bool channels_last = bench_arg(argc, argv, "--channels-last", "0") == "1";
  const c10::Device device = parse_device(bench_arg(argc, argv, "--device", "cpu"));
  configure_threads(std::stoi(bench_arg(argc, argv, "--threads", "0")));
  tune_allocator();

  torch::manual_seed(0);
  auto net = make_score_net(config.model, shape);
  net->to(device);
  int64_t parameters = 0;
  for (const auto& p : net->parameters()) parameters += p.numel();
  std::vector<int64_t> full{batch};
  full.insert(full.end(), shape.begin(), shape.end());
  at::Tensor x = at::randn(full).to(device);
  const at::Tensor t = at::rand({batch}).to(device);
  if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  auto step = [&] {
    net->zero_grad();
    at::Tensor out;
    {
      const AutocastScope autocast(x.device().type(), precision);
      out = net->forward(x, t, at::Tensor()).to(at::kFloat);
    }
    const at::Tensor loss = out.square().mean();
    loss.backward();
    return loss.item<double>();
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up: allocator, OpenMP pool, kernel selection
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"parameters\": %lld, \"images_per_s\": %.3f}\n", static_cast<long long>(parameters),
              static_cast<double>(batch) * iters / seconds);
  return 0;
}
