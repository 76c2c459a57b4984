#pragma once
// An image condition for the image networks (internal): y is an image of `channels` channels at
// the data's height and width, flattened into the condition vector as ConditionInput makes it
// ([y flattened] or, when it can be dropped, [y flattened, present flag]). The networks take it
// as extra input channels — concatenated to x in the UNet, patchified with x (so each token
// carries its patch of y) in DiT and Mixer — with the flag as one more constant channel.

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "sbgm/util/error.hpp"

namespace sbgm {

class ImageCondition {
 public:
  ImageCondition() = default;
  // image_shape: the data's [C, H, W]; cond_dim: the features the network receives for y.
  ImageCondition(int64_t channels, const std::vector<int64_t>& image_shape, int64_t cond_dim)
      : channels_(channels), height_(image_shape.at(1)), width_(image_shape.at(2)) {
    if (channels_ == 0) return;  // a vector condition, embedded with the time
    const int64_t pixels = channels_ * height_ * width_;
    if (cond_dim != pixels && cond_dim != pixels + 1)
      throw InvalidArgument("model.cond_channels = " + std::to_string(channels_) + " takes conditions of " +
                            std::to_string(channels_) + " x " + std::to_string(height_) + " x " + std::to_string(width_) +
                            " = " + std::to_string(pixels) + " features per row (images the data's size), got " +
                            std::to_string(cond_dim - (cond_dim > pixels ? 1 : 0)));
    flag_ = cond_dim == pixels + 1;
  }

  bool active() const { return channels_ > 0; }
  // Channels the network's input gains.
  int64_t extra_channels() const { return active() ? channels_ + (flag_ ? 1 : 0) : 0; }
  // The features of y the conditioning embedding takes (none when y goes into the channels).
  int64_t embedded_dim(int64_t cond_dim) const { return active() ? 0 : cond_dim; }

  // x [B, C, H, W] with y's image (and flag) concatenated as channels; x itself when inactive.
  at::Tensor with_channels(const at::Tensor& x, const at::Tensor& y) const {
    if (!active()) return x;
    const int64_t b = x.size(0), pixels = channels_ * height_ * width_;
    std::vector<at::Tensor> parts{x, y.narrow(1, 0, pixels).reshape({b, channels_, height_, width_})};
    if (flag_) parts.push_back(y.narrow(1, pixels, 1).reshape({b, 1, 1, 1}).expand({b, 1, height_, width_}));
    return at::cat(parts, 1);
  }

 private:
  int64_t channels_ = 0, height_ = 0, width_ = 0;
  bool flag_ = false;
};

}  // namespace sbgm
