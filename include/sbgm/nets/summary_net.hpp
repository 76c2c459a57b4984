#pragma once
// A learnt summary of the condition, trained jointly with the score network (an "embedding
// network" in sbi's words): where x is a raw, high-dimensional simulator output (a spike train,
// a time series), the score network sees summary(x) of model.summary_dim features instead.
//   mlp: two hidden layers of 64 units.
//   cnn: the condition's features read as a series [model.summary_channels, length] (channel
//        after channel), two blocks of a 5-tap convolution and a max-pool by 2 (16 and 32
//        channels), then a hidden layer of 64 units: a 1-D CNN for series.
//   set: the condition's features read as elements of data.cond_set features each (element
//        after element), such as iid points drawn by one simulation: each element
//        through the same two layers of 64 units, their mean, then a hidden layer of 64 units
//        (DeepSets; Zaheer et al. 2017). No order of the elements changes the summary, so the
//        network need not learn the symmetry from the data.
// All use model.activation. The score network itself is unchanged; SummarizedConditionNet
// applies the summary in front of it, so samplers, likelihoods and checkpoints see one network.

#include <torch/nn/modules/container/modulelist.h>

#include <memory>

#include "sbgm/nets/net_config.hpp"
#include "sbgm/nets/score_net.hpp"

namespace sbgm {

class SummaryNet final : public torch::nn::Module {
 public:
  // cond_dim: the features of one condition (checked against the kind: a cnn needs a series of
  // at least 4 steps per channel, a set whole elements of set_element features).
  SummaryNet(const NetConfig& config, int64_t cond_dim, int64_t set_element = 0);
  // y [B, cond_dim] -> [B, summary_dim].
  at::Tensor forward(const at::Tensor& y);

 private:
  Activation activation_;
  int64_t channels_ = 0;  // cnn: channels of the series; set: features of an element (0: mlp)
  torch::nn::ModuleList convolutions_, element_, linear_;  // element_: the set's per-element layers
};

// score(x, t, summary(y)). With condition dropout (droppable) the network's condition is
// [y, flag]: the flag is kept and an absent condition (flag 0) stays all zeros.
class SummarizedConditionNet final : public ScoreNet {
 public:
  SummarizedConditionNet(std::shared_ptr<SummaryNet> summary, std::shared_ptr<ScoreNet> net, bool droppable);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  // The summary does not depend on x: the divergence is the score network's own.
  bool supports_divergence() const override { return net_->supports_divergence(); }
  at::Tensor forward_with_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                     at::Tensor& divergence) override;
  bool prefers_own_divergence(const at::Tensor& x) const override { return net_->prefers_own_divergence(x); }
  void draw_dropout_from(const at::Generator& gen, int64_t first_row, int64_t total_rows) override {
    net_->draw_dropout_from(gen, first_row, total_rows);
  }
  // Trained through autograd (the summary needs its gradients too).

 private:
  at::Tensor summarize(const at::Tensor& y);

  std::shared_ptr<SummaryNet> summary_;
  std::shared_ptr<ScoreNet> net_;
  bool droppable_;
  // Outside training a sampler passes the same conditions at every step: their summary is
  // computed once. The cache holds the condition tensor (so its storage cannot pass to another)
  // and its version (so an in-place change is seen).
  struct Cached {
    at::Tensor y, summary;
    int64_t version = -1;
  } cached_;
};

}  // namespace sbgm
