// Where one training step of the tutorial's MLP (batch 8, 1 thread) spends its time: the fused
// Adam step, the manual forward (with the loss) and backward, and the matrix products alone.
// Prints microseconds per call; docs/benchmarks.md quotes it.
//
//   sbgm_bench_step_parts

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cstdio>

#include "sbgm/nets/score_net.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/dsm_loss.hpp"
#include "sbgm/train/flat_parameters.hpp"
#include "sbgm/train/optimizer.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {
template <class F>
double microseconds_per_call(F f, int calls = 2000) {
  for (int i = 0; i < 100; ++i) f();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / calls * 1e6;
}
}  // namespace

int main() {
  configure_threads(1);
  RunConfig config;
  config.merge_toml_file(std::string(SBGM_SOURCE_DIR) + "/examples/tutorial.toml");
  auto net = build_net(config, {2}, 0);
  FlatParameters flat(*net);
  FusedAdam adam(flat.values(), config.train.adam);
  auto sde = make_sde(config.sde);
  c10::InferenceMode no_autograd;
  const at::Tensor x = at::randn({8, 2}), t = at::rand({8}) * 0.9 + 0.05, z = at::randn({8, 2});
  const auto weighting = config.train.loss.weighting;
  DSMManual m = dsm_loss_manual(*net, config.model.output, *sde, weighting, x, at::Tensor(), t, z);
  std::printf("fused Adam step (%lld parameters): %.1f us\n", static_cast<long long>(flat.numel()),
              microseconds_per_call([&] { adam.step(flat.values(), flat.grads(), 1e-3); }));
  std::printf("forward + loss (manual path):       %.1f us\n", microseconds_per_call([&] {
                m = dsm_loss_manual(*net, config.model.output, *sde, weighting, x, at::Tensor(), t, z);
              }));
  std::printf("backward into grads:                %.1f us\n",
              microseconds_per_call([&] { net->backward_into_grads(m.grad_output); }));
  const at::Tensor a = at::randn({8, 256}), w = at::randn({256, 256});
  at::Tensor out_w = at::empty({256, 256}), out_a = at::empty({8, 256});
  std::printf("one 8x256x256 product (forward):    %.1f us\n", microseconds_per_call([&] { at::mm_out(out_a, a, w.t()); }));
  std::printf("one weight gradient 256x8x256:      %.1f us\n", microseconds_per_call([&] { at::mm_out(out_w, a.t(), a); }));
  return 0;
}
