#include "sbgm/nets/attention.hpp"

#include <ATen/ATen.h>
#include <torch/version.h>

#include <cmath>

#include "sbgm/util/error.hpp"
#include "zero_init.hpp"

#if TORCH_VERSION_MAJOR >= 2
#define SBGM_FUSED_ATTENTION 1
#else
#define SBGM_FUSED_ATTENTION 0
#endif

namespace sbgm {

bool fused_attention_available() { return SBGM_FUSED_ATTENTION != 0; }

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, AttentionKernel kernel) {
  if (kernel == AttentionKernel::Fused && !fused_attention_available())
    throw InvalidArgument("fused attention needs LibTorch 2.x (this is " TORCH_VERSION ")");
#if SBGM_FUSED_ATTENTION
  if (kernel != AttentionKernel::Explicit) return at::scaled_dot_product_attention(q, k, v);
#endif
  // softmax(q k^T / sqrt(d)) v
  const int64_t b = q.size(0), h = q.size(1), n = q.size(2), d = q.size(3);
  const at::Tensor q3 = q.reshape({b * h, n, d}), k3 = k.reshape({b * h, -1, d}), v3 = v.reshape({b * h, -1, d});
  const at::Tensor scores = at::bmm(q3, k3.transpose(1, 2)).mul_(1.0 / std::sqrt(static_cast<double>(d)));
  return at::bmm(at::softmax(scores, -1), v3).reshape({b, h, n, d});
}

SelfAttention::SelfAttention(int64_t width, int64_t heads, bool zero_output) : heads_(heads) {
  qkv_ = register_module("qkv", torch::nn::Linear(width, 3 * width));
  output_ = register_module("output", torch::nn::Linear(width, width));
  if (zero_output) zero_init(output_);
}

at::Tensor SelfAttention::forward(const at::Tensor& tokens) {
  const int64_t b = tokens.size(0), n = tokens.size(1), width = tokens.size(2);
  // [B, N, 3, heads, d] -> three [B, heads, N, d]
  const at::Tensor qkv = qkv_->forward(tokens).reshape({b, n, 3, heads_, width / heads_}).permute({2, 0, 3, 1, 4});
  const at::Tensor out = attention(qkv[0], qkv[1], qkv[2]);
  return output_->forward(out.transpose(1, 2).reshape({b, n, width}));
}

}  // namespace sbgm
