#include "sbgm/nets/resnet.hpp"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include "activation.hpp"
#include "norm_input.hpp"
#include "zero_init.hpp"

namespace sbgm {

ResNetScoreNet::ResNetScoreNet(const NetConfig& config, int64_t data_dim, int64_t cond_dim)
    : activation_(config.activation), cond_dim_(cond_dim) {
  const int64_t w = config.width;
  embedding_ = register_module(
      "embedding", std::make_shared<TimeEmbedding>(config.time_embedding, config.embedding_dim, config.fourier_scale));
  input_ = register_module("input", torch::nn::Linear(data_dim, w));
  embed_ = register_module("embed", torch::nn::Linear(embedding_->dim() + cond_dim, w));
  norms_ = register_module("norms", torch::nn::ModuleList());
  first_ = register_module("first", torch::nn::ModuleList());
  second_ = register_module("second", torch::nn::ModuleList());
  block_embed_ = register_module("block_embed", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.depth; ++i) {
    norms_->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({w})));
    first_->push_back(torch::nn::Linear(w, w));
    block_embed_->push_back(torch::nn::Linear(w, w));
    torch::nn::Linear second(w, w);
    zero_init(second);
    second_->push_back(second);
  }
  output_norm_ = register_module("output_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({w})));
  output_ = register_module("output", torch::nn::Linear(w, data_dim));
}

at::Tensor ResNetScoreNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const int64_t batch = x.size(0);
  at::Tensor e = embedding_->forward(t);
  if (cond_dim_ > 0) e = at::cat({e, y.reshape({batch, -1})}, 1);
  e = activate(embed_->forward(e), activation_);
  at::Tensor h = input_->forward(x.reshape({batch, -1}));
  for (size_t i = 0; i < first_->size(); ++i) {
    at::Tensor r = activate(norms_->ptr<torch::nn::LayerNormImpl>(i)->forward(norm_input(h)), activation_);
    r = first_->ptr<torch::nn::LinearImpl>(i)->forward(r) + block_embed_->ptr<torch::nn::LinearImpl>(i)->forward(e);
    r = second_->ptr<torch::nn::LinearImpl>(i)->forward(activate(r, activation_));
    h = h + r;
  }
  h = output_->forward(activate(output_norm_->forward(norm_input(h)), activation_));
  return h.reshape(x.sizes());
}

}  // namespace sbgm
