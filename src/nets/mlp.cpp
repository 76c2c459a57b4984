#include "sbgm/nets/mlp.hpp"

#include <ATen/ATen.h>

#include "activation.hpp"
#include "relu_jacobian_trace.hpp"

namespace sbgm {

MLPScoreNet::MLPScoreNet(const NetConfig& config, int64_t data_dim, int64_t cond_dim)
    : activation_(config.activation), cond_dim_(cond_dim), dropout_(config.dropout) {
  embedding_ = register_module(
      "embedding", std::make_shared<TimeEmbedding>(config.time_embedding, config.embedding_dim, config.fourier_scale));
  layers_ = register_module("layers", torch::nn::ModuleList());
  int64_t in = data_dim + embedding_->dim() + cond_dim;
  for (int64_t i = 0; i < config.depth; ++i) {
    layers_->push_back(torch::nn::Linear(in, config.width));
    in = config.width;
  }
  layers_->push_back(torch::nn::Linear(in, data_dim));
  for (size_t i = 0; i < layers_->size(); ++i) {
    linear_.push_back(layers_->ptr<torch::nn::LinearImpl>(i).get());
    widths_.push_back(linear_.back()->weight.size(0));
  }
  if (activation_ == Activation::ReLU) relu_trace_ = std::make_shared<ReluJacobianTrace>();
}

void MLPScoreNet::forget_own_kept_state() {
  if (relu_trace_) relu_trace_->forget();
}

bool MLPScoreNet::prefers_own_divergence(const at::Tensor& x) const {
  return (relu_trace_ && ReluJacobianTrace::applies(widths_, x)) ||
         ScoreNet::prefers_own_divergence(x);
}

at::Tensor MLPScoreNet::input_features(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const int64_t batch = x.size(0);
  std::vector<at::Tensor> inputs{x.reshape({batch, -1}), embedding_->forward(t)};
  if (cond_dim_ > 0) inputs.push_back(y.reshape({batch, -1}));
  return at::cat(inputs, 1);
}

at::Tensor MLPScoreNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  at::Tensor h = input_features(x, t, y);
  const size_t n = layers_->size();
  for (size_t i = 0; i < n; ++i) {
    h = linear_[i]->forward(h);
    if (i + 1 < n) h = dropout(activate(h, activation_), dropout_);
  }
  return h.reshape(x.sizes());
}

at::Tensor MLPScoreNet::forward_with_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                                at::Tensor& divergence) {
  // A ReLU network's divergence is kept up to date between calls where that applies
  // (relu_jacobian_trace.hpp). Otherwise forward-mode differentiation along each input
  // coordinate e_k of x: the tangent after layer i is (W_i tangent) * activation'(pre_i), and
  // only component k of the last layer's tangent is needed, dot(W_last[k], tangent). The first
  // layer's tangent is column k of W_0 for every row, so the batched work is one [D * B, width]
  // matmul chain, in blocks of tangents that bound memory.
  at::NoGradGuard no_grad;
  const int64_t batch = x.size(0), dim = x.numel() / batch;
  const size_t n = layers_->size();
  const bool kept = relu_trace_ && ReluJacobianTrace::applies(widths_, x);
  at::Tensor h = input_features(x, t, y);
  std::vector<at::Tensor> pres, slopes;  // every hidden layer's pre-activation, or activation'(pre_i)
  for (size_t i = 0; i + 1 < n; ++i) {
    const at::Tensor pre = at::addmm(linear_[i]->bias, h, linear_[i]->weight.t());
    h = activate(pre, activation_);
    if (kept) pres.push_back(pre);
    else slopes.push_back(activation_derivative(pre, h, activation_));
  }
  const at::Tensor& w_last = linear_[n - 1]->weight;
  const at::Tensor out = at::addmm(linear_[n - 1]->bias, h, w_last.t());
  if (kept) {
    std::vector<at::Tensor> weights;
    for (const auto* layer : linear_) weights.push_back(layer->weight);
    divergence = (*relu_trace_)(weights, dim, pres);
    return out.reshape(x.sizes());
  }
  const at::Tensor w_first = linear_[0]->weight.narrow(1, 0, dim).t().contiguous();  // [D, width_0]: row k = d pre_0 / d x_k
  if (n == 1) {
    divergence = w_first.diagonal().sum().expand({batch}).contiguous();
    return out.reshape(x.sizes());
  }
  int64_t width = 1;
  for (const auto& s : slopes) width = std::max(width, s.size(1));
  constexpr int64_t kBlockElements = int64_t{1} << 23;  // 32 MiB of float32 tangents per block
  const int64_t block = std::max<int64_t>(1, std::min(dim, kBlockElements / (batch * width)));
  divergence = at::zeros({batch}, x.options());
  for (int64_t k0 = 0; k0 < dim; k0 += block) {
    const int64_t kb = std::min(block, dim - k0);
    at::Tensor tangent = slopes[0].unsqueeze(0) * w_first.narrow(0, k0, kb).unsqueeze(1);  // [kb, B, width_0]
    for (size_t i = 1; i + 1 < n; ++i) {
      const at::Tensor& w = linear_[i]->weight;
      tangent = at::mm(tangent.reshape({kb * batch, -1}), w.t()).view({kb, batch, -1}).mul_(slopes[i].unsqueeze(0));
    }
    divergence.add_(tangent.mul_(w_last.narrow(0, k0, kb).unsqueeze(1)).sum(at::IntArrayRef{0, 2}));
  }
  return out.reshape(x.sizes());
}

at::Tensor MLPScoreNet::forward_for_backward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  at::NoGradGuard no_grad;
  const int64_t batch = x.size(0);
  const size_t n = layers_->size();
  if (!input_.defined() || input_.size(0) != batch) {
    pre_.assign(n, at::Tensor());
    post_.assign(n, at::Tensor());
    delta_.assign(n, at::Tensor());
    mask_.assign(n, at::Tensor());
    dropped_.assign(n, at::Tensor());
    for (size_t i = 0; i < n; ++i) {
      const int64_t width = linear_[i]->weight.size(0);
      pre_[i] = at::empty({batch, width}, x.options());
      post_[i] = at::empty({batch, width}, x.options());
      delta_[i] = at::empty({batch, width}, x.options());
    }
  }
  input_ = input_features(x, t, y);
  output_shape_ = x.sizes().vec();
  const at::Tensor* h = &input_;
  for (size_t i = 0; i < n; ++i) {
    torch::nn::LinearImpl* layer = linear_[i];
    at::addmm_out(pre_[i], layer->bias, *h, layer->weight.t());
    if (i + 1 == n) break;
    activate_out(post_[i], pre_[i], activation_);
    h = &post_[i];
    if (dropout_ > 0 && is_training()) {
      dropped_[i] = dropout(post_[i], dropout_, &mask_[i]);
      h = &dropped_[i];
    }
  }
  return pre_[n - 1].view(output_shape_);
}

void MLPScoreNet::backward_into_grads(const at::Tensor& grad_output) {
  at::NoGradGuard no_grad;
  const size_t n = layers_->size();
  delta_[n - 1].copy_(grad_output.reshape({grad_output.size(0), -1}));
  const bool dropped = dropout_ > 0 && is_training();
  for (size_t i = n; i-- > 0;) {
    torch::nn::LinearImpl* layer = linear_[i];
    const at::Tensor& h = i == 0 ? input_ : dropped ? dropped_[i - 1] : post_[i - 1];
    at::Tensor& w_grad = layer->weight.mutable_grad();
    at::Tensor& b_grad = layer->bias.mutable_grad();
    if (!w_grad.defined()) w_grad = at::empty_like(layer->weight);
    if (!b_grad.defined()) b_grad = at::empty_like(layer->bias);
    at::mm_out(w_grad, delta_[i].t(), h);
    at::sum_out(b_grad, delta_[i], {0});
    if (i == 0) break;
    at::mm_out(delta_[i - 1], delta_[i], layer->weight);
    if (dropped) delta_[i - 1].mul_(mask_[i - 1]);
    activation_backward_(delta_[i - 1], pre_[i - 1], post_[i - 1], activation_);
  }
}

}  // namespace sbgm
