#pragma once
// Features of the diffusion time t [B] -> [B, dim] that a network takes as input.

#include <torch/nn/module.h>

#include "sbgm/nets/net_config.hpp"

namespace sbgm {

class TimeEmbedding : public torch::nn::Module {
 public:
  TimeEmbedding(TimeEmbeddingKind kind, int64_t dim, double fourier_scale);
  at::Tensor forward(const at::Tensor& t);
  int64_t dim() const { return dim_; }

 private:
  TimeEmbeddingKind kind_;
  int64_t dim_;
  at::Tensor frequencies_;  // [dim / 2]; a buffer (saved, not trained)
};

}  // namespace sbgm
