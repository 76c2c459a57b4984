#pragma once
// Multi-layer perceptron score network: [x, time features, y] -> width x depth hidden layers -> x.
// With the tutorial time features, ReLU, width 256 and depth 4 it is the tutorial's model.

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include "sbgm/nets/score_net.hpp"
#include "sbgm/nets/time_embedding.hpp"

namespace sbgm {

class MLPScoreNet final : public ScoreNet {
 public:
  MLPScoreNet(const NetConfig& config, int64_t data_dim, int64_t cond_dim);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;

 private:
  Activation activation_;
  int64_t cond_dim_;
  std::shared_ptr<TimeEmbedding> embedding_;
  torch::nn::ModuleList layers_;
};

}  // namespace sbgm
