#include "sbgm/nets/token_net.hpp"

#include <ATen/ATen.h>

#include <string>

#include "adaln_block.hpp"
#include "conditioning_embedding.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

TokenScoreNet::TokenScoreNet(const NetConfig& config, int64_t data_dim, int64_t cond_dim)
    : data_dim_(data_dim), cond_dim_(cond_dim) {
  const int64_t w = config.width, tokens = data_dim + cond_dim;
  time_ = register_module("time", std::make_shared<ConditioningEmbedding>(config, w, 0));
  // Unit-variance entries: the blocks' LayerNorms see the value's and the name's parts at one scale.
  value_ = register_parameter("value", at::randn({tokens, w}));
  name_ = register_parameter("name", at::randn({tokens, w}));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.depth; ++i) blocks_->push_back(std::make_shared<AdaLNBlock>(config, tokens));
  output_ = register_module("output", std::make_shared<AdaLNOutput>(w, 1));
}

at::Tensor TokenScoreNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const int64_t b = x.size(0);
  at::Tensor values = x.reshape({b, data_dim_});
  if (cond_dim_ > 0) values = at::cat({values, y.reshape({b, cond_dim_}).to(values.scalar_type())}, 1);
  at::Tensor h = at::addcmul(name_.unsqueeze(0), values.unsqueeze(-1), value_.unsqueeze(0));  // [B, N, width]
  const at::Tensor c = at::silu(time_->forward(t, {}));
  for (const auto& block : *blocks_) h = block->as<AdaLNBlock>()->forward(h, c);
  return output_->forward(h.narrow(1, 0, data_dim_), c).reshape(x.sizes());
}

void TokenScoreNet::zero_output(int64_t dim) {
  if (dim != data_dim_)
    throw InvalidArgument("the transformer's output has " + std::to_string(data_dim_) + " features, not " +
                          std::to_string(dim));
  output_->zero();
}

}  // namespace sbgm
