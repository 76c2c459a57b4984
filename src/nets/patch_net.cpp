#include "sbgm/nets/patch_net.hpp"

#include <ATen/ATen.h>
#include <torch/nn/modules/normalization.h>

#include <cmath>

#include "conditioning_embedding.hpp"
#include "image_condition.hpp"
#include "norm_input.hpp"
#include "sbgm/nets/attention.hpp"
#include "zero_init.hpp"

namespace sbgm {
namespace {

// LayerNorm without affine parameters, then x (1 + scale) + shift per row ([B, width] each).
at::Tensor modulated_norm(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
  const at::Tensor n = at::layer_norm(norm_input(x), {x.size(-1)}, {}, {}, 1e-6);
  return at::addcmul(shift.unsqueeze(1), n, 1 + scale.unsqueeze(1));
}

// Two linear layers with a tanh-approximated GELU between them, applied over the last axis.
class MLP : public torch::nn::Module {
 public:
  MLP(int64_t in, int64_t hidden, double dropout) : dropout_(dropout) {
    first_ = register_module("first", torch::nn::Linear(in, hidden));
    second_ = register_module("second", torch::nn::Linear(hidden, in));
  }
  at::Tensor forward(const at::Tensor& x) {
    const at::Tensor h = at::dropout(at::gelu(first_->forward(x), "tanh"), dropout_, is_training());
    return second_->forward(h);
  }

 private:
  double dropout_;
  torch::nn::Linear first_{nullptr}, second_{nullptr};
};

// One adaLN-Zero block: x + g1 * mix_tokens(norm(x)), then x + g2 * mlp(norm(x)).
class PatchBlock : public torch::nn::Module {
 public:
  PatchBlock(const NetConfig& config, int64_t tokens) {
    const int64_t w = config.width;
    modulation_ = register_module("modulation", torch::nn::Linear(w, 6 * w));
    zero_init(modulation_);
    if (config.kind == NetKind::DiT) {
      attention_ = register_module("attention", std::make_shared<SelfAttention>(w, config.heads, false));
    } else {
      const int64_t token_hidden = config.token_mlp_dim > 0 ? config.token_mlp_dim : std::max<int64_t>(w / 2, 1);
      token_mlp_ = register_module("token_mlp", std::make_shared<MLP>(tokens, token_hidden, config.dropout));
    }
    const auto hidden = static_cast<int64_t>(std::llround(w * config.mlp_ratio));
    channel_mlp_ = register_module("channel_mlp", std::make_shared<MLP>(w, std::max<int64_t>(hidden, 1), config.dropout));
  }

  // x [B, N, width], c [B, width] (already through SiLU)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& c) {
    const std::vector<at::Tensor> m = modulation_->forward(c).chunk(6, 1);
    const at::Tensor a = modulated_norm(x, m[0], m[1]);
    const at::Tensor mixed =
        attention_ ? attention_->forward(a) : token_mlp_->forward(a.transpose(1, 2)).transpose(1, 2);
    const at::Tensor h = at::addcmul(x, m[2].unsqueeze(1), mixed);
    return at::addcmul(h, m[5].unsqueeze(1), channel_mlp_->forward(modulated_norm(h, m[3], m[4])));
  }

 private:
  torch::nn::Linear modulation_{nullptr};
  std::shared_ptr<SelfAttention> attention_;
  std::shared_ptr<MLP> token_mlp_, channel_mlp_;
};

// Fixed 2-D sine-cosine position embeddings [1, rows * cols, width] (as in MAE and DiT): half the
// features encode the row, half the column, each as sin/cos at geometric frequencies.
at::Tensor sincos_positions(int64_t rows, int64_t cols, int64_t width) {
  const int64_t quarter = width / 4;
  const at::Tensor freq = at::exp(at::arange(quarter, at::kFloat) * (-std::log(10000.0) / std::max<int64_t>(quarter, 1)));
  auto encode = [&](const at::Tensor& pos) {  // [N] -> [N, 2 * quarter]
    const at::Tensor phase = pos.unsqueeze(1) * freq.unsqueeze(0);
    return at::cat({at::sin(phase), at::cos(phase)}, 1);
  };
  const at::Tensor r = at::arange(rows, at::kFloat).repeat_interleave(cols);
  const at::Tensor c = at::arange(cols, at::kFloat).repeat({rows});
  at::Tensor pos = at::cat({encode(r), encode(c)}, 1);
  if (pos.size(1) < width) pos = at::constant_pad_nd(pos, {0, width - pos.size(1)});  // width not a multiple of 4
  return pos.unsqueeze(0);
}

}  // namespace

PatchScoreNet::PatchScoreNet(const NetConfig& config, const std::vector<int64_t>& image_shape, int64_t cond_dim)
    : patch_(config.patch_size), channels_(image_shape.at(0)) {
  config.validate_image_shape(image_shape);
  const int64_t w = config.width, rows = image_shape[1] / patch_, cols = image_shape[2] / patch_;
  image_cond_ = std::make_shared<const ImageCondition>(config.cond_channels, image_shape, cond_dim);
  embedding_ = register_module(
      "embedding", std::make_shared<ConditioningEmbedding>(config, w, image_cond_->embedded_dim(cond_dim)));
  patchify_ = register_module("patchify", torch::nn::Conv2d(torch::nn::Conv2dOptions(
                                              channels_ + image_cond_->extra_channels(), w, patch_).stride(patch_)));
  if (config.kind == NetKind::DiT) position_ = register_buffer("position", sincos_positions(rows, cols, w));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.depth; ++i) blocks_->push_back(std::make_shared<PatchBlock>(config, rows * cols));
  final_modulation_ = register_module("final_modulation", torch::nn::Linear(w, 2 * w));
  zero_init(final_modulation_);
  final_ = register_module("final", torch::nn::Linear(w, patch_ * patch_ * channels_));
  zero_init(final_);
}

at::Tensor PatchScoreNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const int64_t b = x.size(0), rows = x.size(2) / patch_, cols = x.size(3) / patch_;
  const at::Tensor c = at::silu(embedding_->forward(t, y));
  at::Tensor h = patchify_->forward(image_cond_->with_channels(x, y)).flatten(2).transpose(1, 2);  // [B, N, width]
  if (position_.defined()) h = h + position_;
  for (const auto& block : *blocks_) h = block->as<PatchBlock>()->forward(h, c);
  const std::vector<at::Tensor> m = final_modulation_->forward(c).chunk(2, 1);
  h = final_->forward(modulated_norm(h, m[0], m[1]));  // [B, N, p * p * C]
  // Each token back to its patch: [B, rows, cols, p, p, C] -> [B, C, rows, p, cols, p].
  return h.reshape({b, rows, cols, patch_, patch_, channels_})
      .permute({0, 5, 1, 3, 2, 4})
      .reshape({b, channels_, rows * patch_, cols * patch_});
}

}  // namespace sbgm
