#pragma once
// A trainable score network: (x [B, ...], t [B], y [B, ...] or undefined) -> [B, ...] shaped
// like x. What the output means is the NetConfig's Parameterization.

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>

#include <memory>
#include <vector>

#include "sbgm/nets/net_config.hpp"

namespace sbgm {

class ScoreNet : public torch::nn::Module {
 public:
  // y: the condition, or an undefined tensor for an unconditional network.
  virtual at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) = 0;

  // Optional: the output and, in divergence ([B]), sum_k d out_k / d x_k over the flattened
  // features of x, computed without autograd (forward tangents instead of one reverse pass per
  // feature). The likelihood's exact divergence uses it when present, autograd otherwise.
  virtual bool supports_divergence() const { return false; }
  virtual at::Tensor forward_with_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                             at::Tensor& divergence);
  // Whether forward_with_divergence is the faster way for inputs like x. The default: when
  // supported, from 8 features up (forward tangents batch the D reverse passes of autograd;
  // measured in bench/divergence_bench.cpp, docs/benchmarks.md: 2-6% slower at D = 2, even at
  // D = 8, 1.2-1.8x faster from D = 32 on).
  virtual bool prefers_own_divergence(const at::Tensor& x) const;
  // Optional training fast path without autograd, for networks small enough that autograd's
  // per-op bookkeeping dominates (the tutorial's MLP at batch 8). forward_for_backward keeps
  // what backward_into_grads needs; backward_into_grads writes d loss / d parameter, given
  // d loss / d output, into every parameter's .grad (overwriting it). Networks without it are
  // trained through autograd.
  virtual bool supports_manual_backward() const { return false; }
  virtual at::Tensor forward_for_backward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y);
  virtual void backward_into_grads(const at::Tensor& grad_output);
  // Zeroes the output layer, so that the network starts at 0 (a residual on a baseline): the
  // vector networks register it last, a weight [dim, width] and a bias [dim]. InvalidArgument for
  // a network without such a layer; nothing for one without parameters (a fixed stand-in).
  virtual void zero_output(int64_t dim);
  // Where dropout draws its masks while training (model.dropout > 0): from gen, one mask row per
  // row of a batch of total_rows of which this process trains rows [first_row, first_row + its
  // batch), so that a resumed or data-parallel run draws the masks one process would (the
  // trainer passes its generator, whose state the checkpoint keeps). Without it the masks come
  // from the global generator.
  virtual void draw_dropout_from(const at::Generator& gen, int64_t first_row, int64_t total_rows);
  // Drops what this network and every network inside it keep from one call to the next to save
  // work (the ReLU MLP's Jacobian trace), so that the next call's result depends on its own
  // inputs only, not on the calls before it: a likelihood calls it before each solve.
  void forget_kept_state();

 protected:
  // This network's own part of forget_kept_state (the networks inside it are called apart).
  virtual void forget_own_kept_state() {}
  struct DropoutDraws {
    at::Generator gen;  // undefined: the global generator
    int64_t first_row = 0, total_rows = 0;
  };
  // h with each element zeroed with probability p and the rest scaled by 1 / (1 - p), and the
  // mask used (mask_out: 0 or 1 / (1 - p)); h itself when p is 0 or the network is not training.
  at::Tensor dropout(const at::Tensor& h, double p, at::Tensor* mask_out = nullptr) const;
  DropoutDraws dropout_draws_;
};

// A network around another (GaussianBaselineNet, ScaledInputNet): what the inner network does
// without autograd the wrapper does too, and the weight gradients of its manual path are the
// inner network's (a wrapper adds no parameters of its own).
class WrappedScoreNet : public ScoreNet {
 public:
  bool supports_divergence() const override { return net_->supports_divergence(); }
  bool prefers_own_divergence(const at::Tensor& x) const override { return net_->prefers_own_divergence(x); }
  bool supports_manual_backward() const override { return net_->supports_manual_backward(); }
  void backward_into_grads(const at::Tensor& grad_output) override { net_->backward_into_grads(grad_output); }
  void zero_output(int64_t dim) override { net_->zero_output(dim); }
  void draw_dropout_from(const at::Generator& gen, int64_t first_row, int64_t total_rows) override {
    net_->draw_dropout_from(gen, first_row, total_rows);
  }

 protected:
  explicit WrappedScoreNet(std::shared_ptr<ScoreNet> net) : net_(register_module("net", std::move(net))) {}
  std::shared_ptr<ScoreNet> net_;
};

// Builds the network described by config for samples of shape data_shape (without the batch
// dimension) and conditions of cond_dim features (0: unconditional). Initialisation draws from
// the global torch generator; seed it first for reproducible weights.
std::shared_ptr<ScoreNet> make_score_net(const NetConfig& config, const std::vector<int64_t>& data_shape,
                                         int64_t cond_dim = 0);

}  // namespace sbgm
