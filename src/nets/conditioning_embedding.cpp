#include "conditioning_embedding.hpp"

#include <ATen/ATen.h>

namespace sbgm {

ConditioningEmbedding::ConditioningEmbedding(const NetConfig& config, int64_t out_dim, int64_t cond_dim)
    : cond_dim_(cond_dim) {
  // The tutorial's four features are too few to tell a thousand noise levels apart in an image
  // network; it gets sinusoidal features of `width` dimensions instead.
  const bool tutorial = config.time_embedding == TimeEmbeddingKind::Tutorial;
  const int64_t features = tutorial ? config.width + config.width % 2 : config.embedding_dim;
  time_ = register_module("time", std::make_shared<TimeEmbedding>(
                                      tutorial ? TimeEmbeddingKind::Sinusoidal : config.time_embedding, features,
                                      config.fourier_scale));
  first_ = register_module("first", torch::nn::Linear(time_->dim(), out_dim));
  second_ = register_module("second", torch::nn::Linear(out_dim, out_dim));
  if (cond_dim > 0) cond_ = register_module("cond", torch::nn::Linear(cond_dim, out_dim));
}

at::Tensor ConditioningEmbedding::forward(const at::Tensor& t, const at::Tensor& y) {
  at::Tensor e = second_->forward(at::silu(first_->forward(time_->forward(t))));
  if (cond_dim_ > 0) e = e + cond_->forward(y.reshape({y.size(0), -1}));
  return e;
}

}  // namespace sbgm
