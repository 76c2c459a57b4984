#include "sbgm/nets/mlp.hpp"

#include <ATen/ATen.h>

#include "activation.hpp"

namespace sbgm {

MLPScoreNet::MLPScoreNet(const NetConfig& config, int64_t data_dim, int64_t cond_dim)
    : activation_(config.activation), cond_dim_(cond_dim) {
  embedding_ = register_module(
      "embedding", std::make_shared<TimeEmbedding>(config.time_embedding, config.embedding_dim, config.fourier_scale));
  layers_ = register_module("layers", torch::nn::ModuleList());
  int64_t in = data_dim + embedding_->dim() + cond_dim;
  for (int64_t i = 0; i < config.depth; ++i) {
    layers_->push_back(torch::nn::Linear(in, config.width));
    in = config.width;
  }
  layers_->push_back(torch::nn::Linear(in, data_dim));
}

at::Tensor MLPScoreNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const int64_t batch = x.size(0);
  std::vector<at::Tensor> inputs{x.reshape({batch, -1}), embedding_->forward(t)};
  if (cond_dim_ > 0) inputs.push_back(y.reshape({batch, -1}));
  at::Tensor h = at::cat(inputs, 1);
  const size_t n = layers_->size();
  for (size_t i = 0; i < n; ++i) {
    h = layers_->ptr<torch::nn::LinearImpl>(i)->forward(h);
    if (i + 1 < n) h = activate(h, activation_);
  }
  return h.reshape(x.sizes());
}

}  // namespace sbgm
