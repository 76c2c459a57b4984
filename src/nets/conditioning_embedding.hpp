#pragma once
// The image networks' conditioning vector (internal): time features through a two-layer SiLU MLP,
// plus a linear embedding of the condition y when there is one. Every block of the network reads it.

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include "sbgm/nets/net_config.hpp"
#include "sbgm/nets/time_embedding.hpp"

namespace sbgm {

class ConditioningEmbedding : public torch::nn::Module {
 public:
  // out_dim features per row; cond_dim features of y (0: unconditional).
  ConditioningEmbedding(const NetConfig& config, int64_t out_dim, int64_t cond_dim);
  // t [B], y [B, ...] or undefined -> [B, out_dim]
  at::Tensor forward(const at::Tensor& t, const at::Tensor& y);

 private:
  int64_t cond_dim_;
  std::shared_ptr<TimeEmbedding> time_;
  torch::nn::Linear first_{nullptr}, second_{nullptr}, cond_{nullptr};
};

}  // namespace sbgm
