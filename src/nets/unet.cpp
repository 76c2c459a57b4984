#include "sbgm/nets/unet.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>

#include "conditioning_embedding.hpp"
#include "image_condition.hpp"
#include "norm_input.hpp"
#include "sbgm/nets/attention.hpp"
#include "zero_init.hpp"

namespace sbgm {
namespace {

// GroupNorm with up to 32 groups (the DDPM choice) of at least 4 channels each where the
// channels allow: one channel per group would normalise every feature map on its own and erase
// per-channel information.
torch::nn::GroupNorm group_norm(int64_t channels) {
  int64_t groups = std::min<int64_t>(32, std::max<int64_t>(1, channels / 4));
  while (channels % groups != 0) --groups;
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels));
}

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
}

// One step of a path through the UNet. `skips` carries the down path's outputs to the up path:
// down layers push onto it, up residual blocks pop from it.
class UNetLayer : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& h, const at::Tensor& emb, std::vector<at::Tensor>& skips) = 0;
};

enum class Skip { None, Push, Pop };

// A residual block, optionally followed by self-attention over the feature map's pixels.
class ResidualBlock final : public UNetLayer {
 public:
  ResidualBlock(int64_t in, int64_t out, int64_t emb_dim, double dropout, int64_t heads, Skip skip)
      : dropout_(dropout), skip_(skip) {
    norm1_ = register_module("norm1", group_norm(in));
    conv1_ = register_module("conv1", conv(in, out, 3));
    emb_ = register_module("emb", torch::nn::Linear(emb_dim, 2 * out));
    norm2_ = register_module("norm2", group_norm(out));
    conv2_ = register_module("conv2", conv(out, out, 3));
    zero_init(conv2_);  // the block starts as the identity (or as its shortcut)
    if (in != out) shortcut_ = register_module("shortcut", conv(in, out, 1));
    if (heads > 0) {
      attention_norm_ = register_module("attention_norm", group_norm(out));
      attention_ = register_module("attention", std::make_shared<SelfAttention>(out, heads, true));
    }
  }

  at::Tensor forward(const at::Tensor& input, const at::Tensor& emb, std::vector<at::Tensor>& skips) override {
    at::Tensor x = input;
    if (skip_ == Skip::Pop) {
      x = at::cat({x, skips.back()}, 1);
      skips.pop_back();
    }
    at::Tensor r = conv1_->forward(at::silu(norm1_->forward(norm_input(x))));
    // The conditioning scales and shifts the normalised features (ADM's scale-shift norm): a
    // bias added before the GroupNorm would be mostly normalised away.
    const std::vector<at::Tensor> scale_shift = emb_->forward(emb).unsqueeze(-1).unsqueeze(-1).chunk(2, 1);
    r = at::addcmul(scale_shift[1], norm2_->forward(norm_input(r)), 1 + scale_shift[0]);
    r = conv2_->forward(at::dropout(at::silu(r), dropout_, is_training()));
    at::Tensor h = (shortcut_ ? shortcut_->forward(x) : x) + r;
    if (attention_) {
      const int64_t b = h.size(0), c = h.size(1), height = h.size(2), width = h.size(3);
      const at::Tensor tokens = attention_norm_->forward(norm_input(h)).flatten(2).transpose(1, 2);  // [B, HW, C]
      h = h + attention_->forward(tokens).transpose(1, 2).reshape({b, c, height, width});
    }
    if (skip_ == Skip::Push) skips.push_back(h);
    return h;
  }

 private:
  double dropout_;
  Skip skip_;
  torch::nn::GroupNorm norm1_{nullptr}, norm2_{nullptr}, attention_norm_{nullptr};
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, shortcut_{nullptr};
  torch::nn::Linear emb_{nullptr};
  std::shared_ptr<SelfAttention> attention_;
};

// Halves (stride-2 convolution, on the way down) or doubles (nearest neighbour then a
// convolution, on the way up) the feature map's sides.
class Resample final : public UNetLayer {
 public:
  Resample(int64_t channels, bool down) : down_(down) {
    conv_ = register_module("conv", conv(channels, channels, 3, down ? 2 : 1));
  }
  at::Tensor forward(const at::Tensor& h, const at::Tensor&, std::vector<at::Tensor>& skips) override {
    if (down_) {
      at::Tensor out = conv_->forward(h);
      skips.push_back(out);
      return out;
    }
    return conv_->forward(at::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2}));
  }

 private:
  bool down_;
  torch::nn::Conv2d conv_{nullptr};
};

}  // namespace

UNetScoreNet::UNetScoreNet(const NetConfig& config, const std::vector<int64_t>& image_shape, int64_t cond_dim) {
  config.validate_image_shape(image_shape);
  const int64_t channels = image_shape[0], width = config.width, emb_dim = 4 * width;
  image_cond_ = std::make_shared<const ImageCondition>(config.cond_channels, image_shape, cond_dim);
  embedding_ = register_module(
      "embedding", std::make_shared<ConditioningEmbedding>(config, emb_dim, image_cond_->embedded_dim(cond_dim)));
  input_ = register_module("input", conv(channels + image_cond_->extra_channels(), width, 3));
  down_ = register_module("down", torch::nn::ModuleList());
  middle_ = register_module("middle", torch::nn::ModuleList());
  up_ = register_module("up", torch::nn::ModuleList());

  const auto& mult = config.channel_mult;
  const int64_t levels = static_cast<int64_t>(mult.size());
  auto heads_at = [&](int64_t side) {
    const auto& res = config.attention_res;
    return std::find(res.begin(), res.end(), side) != res.end() ? config.heads : 0;
  };
  // The channels of every skip connection, in the order the down path makes them.
  std::vector<int64_t> skip_channels{width};
  int64_t c = width, side = image_shape[1];
  for (int64_t level = 0; level < levels; ++level) {
    const int64_t out = width * mult[level];
    for (int64_t i = 0; i < config.depth; ++i) {
      down_->push_back(std::make_shared<ResidualBlock>(c, out, emb_dim, config.dropout, heads_at(side), Skip::Push));
      c = out;
      skip_channels.push_back(c);
    }
    if (level + 1 < levels) {
      down_->push_back(std::make_shared<Resample>(c, true));
      skip_channels.push_back(c);
      side /= 2;
    }
  }
  middle_->push_back(std::make_shared<ResidualBlock>(c, c, emb_dim, config.dropout, config.heads, Skip::None));
  middle_->push_back(std::make_shared<ResidualBlock>(c, c, emb_dim, config.dropout, 0, Skip::None));
  for (int64_t level = levels - 1; level >= 0; --level) {
    const int64_t out = width * mult[level];
    for (int64_t i = 0; i <= config.depth; ++i) {
      up_->push_back(std::make_shared<ResidualBlock>(c + skip_channels.back(), out, emb_dim, config.dropout, heads_at(side), Skip::Pop));
      skip_channels.pop_back();
      c = out;
    }
    if (level > 0) {
      up_->push_back(std::make_shared<Resample>(c, false));
      side *= 2;
    }
  }
  output_norm_ = register_module("output_norm", group_norm(c));
  output_ = register_module("output", conv(c, channels, 3));
  zero_init(output_);
}

at::Tensor UNetScoreNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const at::Tensor emb = at::silu(embedding_->forward(t, y));
  std::vector<at::Tensor> skips;
  at::Tensor h = input_->forward(image_cond_->with_channels(x, y));
  skips.push_back(h);
  for (const auto& path : {down_, middle_, up_})
    for (const auto& layer : *path) h = layer->as<UNetLayer>()->forward(h, emb, skips);
  return output_->forward(at::silu(output_norm_->forward(norm_input(h))));
}

}  // namespace sbgm
