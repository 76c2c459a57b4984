#pragma once
// A transformer over the features of vector samples (model.type = transformer), for posteriors
// above all. Every feature of x_t and of the condition y is one token: its value times a learnt
// vector plus a learnt vector that names the feature (as in the Simformer, Gloeckler et al. 2024,
// and GenSBI's joint transformers). `depth` adaLN-Zero blocks (nets/patch_net.hpp's, with
// self-attention) conditioned on the time mix the tokens, and each token of x is read back to
// its own output feature. Where an MLP sees one vector and must learn from the training pairs
// which parameter depends on which feature of the condition, attention weighs the pairs of
// tokens directly; the network's cost grows with the square of the number of features.

#include <torch/nn/modules/container/modulelist.h>

#include <memory>

#include "sbgm/nets/score_net.hpp"

namespace sbgm {

class AdaLNOutput;
class ConditioningEmbedding;

class TokenScoreNet final : public ScoreNet {
 public:
  // data_dim features of x (flattened), cond_dim of y (0: unconditional).
  TokenScoreNet(const NetConfig& config, int64_t data_dim, int64_t cond_dim);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  void zero_output(int64_t dim) override;

 private:
  int64_t data_dim_, cond_dim_;
  std::shared_ptr<ConditioningEmbedding> time_;  // the time only; y enters as tokens
  at::Tensor value_, name_;                       // [data_dim + cond_dim, width] each
  torch::nn::ModuleList blocks_;
  std::shared_ptr<AdaLNOutput> output_;
};

}  // namespace sbgm
