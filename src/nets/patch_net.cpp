#include "sbgm/nets/patch_net.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "adaln_block.hpp"
#include "conditioning_embedding.hpp"
#include "image_condition.hpp"

namespace sbgm {
namespace {

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
  for (int64_t i = 0; i < config.depth; ++i) blocks_->push_back(std::make_shared<AdaLNBlock>(config, rows * cols));
  output_ = register_module("output", std::make_shared<AdaLNOutput>(w, patch_ * patch_ * channels_));
}

at::Tensor PatchScoreNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const int64_t b = x.size(0), rows = x.size(2) / patch_, cols = x.size(3) / patch_;
  const at::Tensor c = at::silu(embedding_->forward(t, y));
  at::Tensor h = patchify_->forward(image_cond_->with_channels(x, y)).flatten(2).transpose(1, 2);  // [B, N, width]
  if (position_.defined()) h = h + position_;
  for (const auto& block : *blocks_) h = block->as<AdaLNBlock>()->forward(h, c);
  h = output_->forward(h, c);  // [B, N, p * p * C]
  // Each token back to its patch: [B, rows, cols, p, p, C] -> [B, C, rows, p, cols, p].
  return h.reshape({b, rows, cols, patch_, patch_, channels_})
      .permute({0, 5, 1, 3, 2, 4})
      .reshape({b, channels_, rows * patch_, cols * patch_});
}

}  // namespace sbgm
