#pragma once
// Multi-layer perceptron score network: [x, time features, y] -> width x depth hidden layers -> x.
// With the tutorial time features, ReLU, width 256 and depth 4 it is the tutorial's model.
// model.dropout > 0 drops hidden activations while training (after every hidden layer).

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include "sbgm/nets/score_net.hpp"
#include "sbgm/nets/time_embedding.hpp"

namespace sbgm {

class ReluJacobianTrace;

class MLPScoreNet final : public ScoreNet {
 public:
  MLPScoreNet(const NetConfig& config, int64_t data_dim, int64_t cond_dim);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;

  bool supports_divergence() const override { return true; }
  at::Tensor forward_with_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                     at::Tensor& divergence) override;
  bool prefers_own_divergence(const at::Tensor& x) const override;
  bool supports_manual_backward() const override { return true; }
  at::Tensor forward_for_backward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  void backward_into_grads(const at::Tensor& grad_output) override;

 protected:
  void forget_own_kept_state() override;

 private:
  at::Tensor input_features(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y);

  Activation activation_;
  int64_t cond_dim_;
  double dropout_;
  std::shared_ptr<TimeEmbedding> embedding_;
  torch::nn::ModuleList layers_;
  std::vector<torch::nn::LinearImpl*> linear_;  // the layers, without a shared_ptr copy per use
  std::vector<int64_t> widths_;                  // every layer's output features
  // A ReLU network's exact divergence, kept up to date between calls (relu_jacobian_trace.hpp).
  std::shared_ptr<ReluJacobianTrace> relu_trace_;
  // The manual path's buffers, reused while the batch size stays the same: the input, every
  // layer's pre-activation and activation, and the back-propagated gradient; with dropout, each
  // hidden layer's mask and its dropped activation (the next layer's input).
  at::Tensor input_;
  std::vector<at::Tensor> pre_, post_, delta_, mask_, dropped_;
  std::vector<int64_t> output_shape_;
};

}  // namespace sbgm
