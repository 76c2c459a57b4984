#pragma once
// The transformer block of the token networks (internal; DiT and Mixer on image patches,
// the transformer on the features of vectors), conditioned by adaLN-Zero (Peebles & Xie 2023):
// the conditioning vector sets the shift and scale of each affine-free LayerNorm and a gate on
// each residual branch, all zero-initialised, so that every block starts as the identity.

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <memory>

#include "sbgm/nets/net_config.hpp"

namespace sbgm {

class SelfAttention;

// LayerNorm without affine parameters, then x (1 + scale) + shift: x [B, N, width], shift and
// scale [B, width] (one per row, the same for every token).
at::Tensor modulated_norm(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale);

// Two linear layers with a tanh-approximated GELU between them, over the last axis.
class GeluMLP : public torch::nn::Module {
 public:
  GeluMLP(int64_t in, int64_t hidden, double dropout);
  at::Tensor forward(const at::Tensor& x);

 private:
  double dropout_;
  torch::nn::Linear first_{nullptr}, second_{nullptr};
};

// x + g1 * mix_tokens(norm(x)), then x + g2 * mlp(norm(x)). Tokens are mixed by multi-head
// self-attention (DiT, the transformer) or by an MLP across the token axis (Mixer, which needs
// the number of tokens); channels by a GELU MLP of width * mlp_ratio.
class AdaLNBlock : public torch::nn::Module {
 public:
  AdaLNBlock(const NetConfig& config, int64_t tokens);
  // x [B, N, width], c [B, width] (the conditioning vector, already through SiLU)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& c);

 private:
  torch::nn::Linear modulation_{nullptr};
  std::shared_ptr<SelfAttention> attention_;
  std::shared_ptr<GeluMLP> token_mlp_, channel_mlp_;
};

// The last layer of a token network: a modulated LayerNorm, then a linear map of each token to
// `out` features, both zero-initialised (the network starts at 0).
class AdaLNOutput : public torch::nn::Module {
 public:
  AdaLNOutput(int64_t width, int64_t out);
  // x [B, N, width], c [B, width] -> [B, N, out]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& c);
  void zero();

 private:
  torch::nn::Linear modulation_{nullptr}, linear_{nullptr};
};

}  // namespace sbgm
