#pragma once
// Multi-head self-attention for the image networks, behind one switch: the fused kernel
// (at::scaled_dot_product_attention, flash / memory-efficient on CUDA) on LibTorch 2.x, the
// written-out softmax(q k^T / sqrt(d)) v on 1.13, which has no public fused kernel.

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

namespace sbgm {

enum class AttentionKernel {
  Auto,      // fused where this LibTorch has it, written out otherwise
  Fused,     // throws InvalidArgument where this LibTorch has no fused kernel
  Explicit,  // written out
};

bool fused_attention_available();

// q, k, v: [B, heads, N, d] -> [B, heads, N, d].
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     AttentionKernel kernel = AttentionKernel::Auto);

// Tokens [B, N, width] -> [B, N, width]: one projection to queries, keys and values for all
// heads, attention, and an output projection (zero-initialised when zero_output, so that a
// residual block around it starts as the identity).
class SelfAttention : public torch::nn::Module {
 public:
  SelfAttention(int64_t width, int64_t heads, bool zero_output);
  at::Tensor forward(const at::Tensor& tokens);

 private:
  int64_t heads_;
  torch::nn::Linear qkv_{nullptr}, output_{nullptr};
};

}  // namespace sbgm
