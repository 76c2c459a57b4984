#include "adaln_block.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "norm_input.hpp"
#include "sbgm/nets/attention.hpp"
#include "zero_init.hpp"

namespace sbgm {

at::Tensor modulated_norm(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
  const at::Tensor n = at::layer_norm(norm_input(x), {x.size(-1)}, {}, {}, 1e-6);
  return at::addcmul(shift.unsqueeze(1), n, 1 + scale.unsqueeze(1));
}

GeluMLP::GeluMLP(int64_t in, int64_t hidden, double dropout) : dropout_(dropout) {
  first_ = register_module("first", torch::nn::Linear(in, hidden));
  second_ = register_module("second", torch::nn::Linear(hidden, in));
}

at::Tensor GeluMLP::forward(const at::Tensor& x) {
  const at::Tensor h = at::dropout(at::gelu(first_->forward(x), "tanh"), dropout_, is_training());
  return second_->forward(h);
}

AdaLNBlock::AdaLNBlock(const NetConfig& config, int64_t tokens) {
  const int64_t w = config.width;
  modulation_ = register_module("modulation", torch::nn::Linear(w, 6 * w));
  zero_init(modulation_);
  if (config.kind == NetKind::Mixer) {
    const int64_t token_hidden = config.token_mlp_dim > 0 ? config.token_mlp_dim : std::max<int64_t>(w / 2, 1);
    token_mlp_ = register_module("token_mlp", std::make_shared<GeluMLP>(tokens, token_hidden, config.dropout));
  } else {
    attention_ = register_module("attention", std::make_shared<SelfAttention>(w, config.heads, false));
  }
  const auto hidden = static_cast<int64_t>(std::llround(w * config.mlp_ratio));
  channel_mlp_ =
      register_module("channel_mlp", std::make_shared<GeluMLP>(w, std::max<int64_t>(hidden, 1), config.dropout));
}

at::Tensor AdaLNBlock::forward(const at::Tensor& x, const at::Tensor& c) {
  const std::vector<at::Tensor> m = modulation_->forward(c).chunk(6, 1);
  const at::Tensor a = modulated_norm(x, m[0], m[1]);
  const at::Tensor mixed =
      attention_ ? attention_->forward(a) : token_mlp_->forward(a.transpose(1, 2)).transpose(1, 2);
  const at::Tensor h = at::addcmul(x, m[2].unsqueeze(1), mixed);
  return at::addcmul(h, m[5].unsqueeze(1), channel_mlp_->forward(modulated_norm(h, m[3], m[4])));
}

AdaLNOutput::AdaLNOutput(int64_t width, int64_t out) {
  modulation_ = register_module("modulation", torch::nn::Linear(width, 2 * width));
  linear_ = register_module("linear", torch::nn::Linear(width, out));
  zero();
}

void AdaLNOutput::zero() {
  zero_init(modulation_);
  zero_init(linear_);
}

at::Tensor AdaLNOutput::forward(const at::Tensor& x, const at::Tensor& c) {
  const std::vector<at::Tensor> m = modulation_->forward(c).chunk(2, 1);
  return linear_->forward(modulated_norm(x, m[0], m[1]));
}

}  // namespace sbgm
