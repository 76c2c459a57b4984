#include "sbgm/train/optimizer.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

// The whole Adam(W) update for a contiguous float range in one pass. Compiled for AVX2+FMA
// too and picked at load time, so the portable build still runs at full width where it can.
__attribute__((target_clones("default", "arch=x86-64-v3"))) void adam_kernel(
    float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t n, float lr,
    float b1, float b2, float eps, float decay_factor, float bias1, float bias2_sqrt) {
  const float step_size = lr / bias1;
  const float inv_bias2_sqrt = 1.0f / bias2_sqrt;
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) * inv_bias2_sqrt + eps;
    p[i] = p[i] * decay_factor - step_size * mi / denom;
  }
}

}  // namespace

FusedAdam::FusedAdam(const at::Tensor& params, AdamConfig config) : config_(config) {
  if (!(config.beta1 >= 0 && config.beta1 < 1) || !(config.beta2 >= 0 && config.beta2 < 1))
    throw InvalidArgument("Adam betas must lie in [0, 1)");
  if (!(config.eps > 0)) throw InvalidArgument("Adam eps must be positive");
  if (!(config.weight_decay >= 0)) throw InvalidArgument("weight decay must not be negative");
  m_ = at::zeros_like(params);
  v_ = at::zeros_like(params);
}

void FusedAdam::restore(const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq, int64_t step) {
  if (!exp_avg.sizes().equals(m_.sizes()) || !exp_avg_sq.sizes().equals(v_.sizes()))
    throw IOError("optimizer state in the checkpoint does not match the model");
  m_.copy_(exp_avg);
  v_.copy_(exp_avg_sq);
  step_ = step;
}

void FusedAdam::step(at::Tensor& params, const at::Tensor& grads, double lr) {
  ++step_;
  const double bias1 = 1.0 - std::pow(config_.beta1, static_cast<double>(step_));
  const double bias2 = 1.0 - std::pow(config_.beta2, static_cast<double>(step_));
  const double decay_factor = 1.0 - lr * config_.weight_decay;
  if (params.device().is_cpu() && params.scalar_type() == at::kFloat && params.is_contiguous()) {
    float* p = params.data_ptr<float>();
    const float* g = grads.data_ptr<float>();
    float* m = m_.data_ptr<float>();
    float* v = v_.data_ptr<float>();
    // Large models split the pass over threads; the tutorial's 200k parameters stay on one.
    at::parallel_for(0, params.numel(), 1 << 18, [&](int64_t begin, int64_t end) {
      adam_kernel(p + begin, g + begin, m + begin, v + begin, end - begin, static_cast<float>(lr),
                  static_cast<float>(config_.beta1), static_cast<float>(config_.beta2),
                  static_cast<float>(config_.eps), static_cast<float>(decay_factor), static_cast<float>(bias1),
                  static_cast<float>(std::sqrt(bias2)));
    });
    return;
  }
  // Other devices and dtypes: the same update as a handful of whole-buffer tensor ops.
  at::NoGradGuard no_grad;
  m_.mul_(config_.beta1).add_(grads, 1.0 - config_.beta1);
  v_.mul_(config_.beta2).addcmul_(grads, grads, 1.0 - config_.beta2);
  at::Tensor denom = (v_.sqrt() / std::sqrt(bias2)).add_(config_.eps);
  if (config_.weight_decay > 0) params.mul_(decay_factor);
  params.addcdiv_(m_, denom, -lr / bias1);
}

}  // namespace sbgm
