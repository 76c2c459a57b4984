#pragma once
// Residual MLP score network: pre-norm residual blocks, each taking the time (and condition)
// embedding as an added bias, with the last layer of every block initialised to zero so that
// the network starts as a near-identity stack.

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "sbgm/nets/score_net.hpp"
#include "sbgm/nets/time_embedding.hpp"

namespace sbgm {

class ResNetScoreNet final : public ScoreNet {
 public:
  ResNetScoreNet(const NetConfig& config, int64_t data_dim, int64_t cond_dim);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;

 private:
  Activation activation_;
  int64_t cond_dim_;
  std::shared_ptr<TimeEmbedding> embedding_;
  torch::nn::Linear input_{nullptr}, embed_{nullptr}, output_{nullptr};
  torch::nn::ModuleList norms_, first_, second_, block_embed_;
  torch::nn::LayerNorm output_norm_{nullptr};
};

}  // namespace sbgm
