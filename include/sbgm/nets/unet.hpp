#pragma once
// DDPM-style UNet score network (Ho et al. 2020, as in score_sde's DDPM model) for images
// [B, C, H, W]: a 3x3 input convolution; at each resolution `depth` residual blocks (GroupNorm,
// SiLU, 3x3 convolutions; the conditioning vector scales and shifts the second GroupNorm's output
// as in ADM (Dhariwal & Nichol 2021); dropout before the second convolution) with self-attention
// after each block at the chosen resolutions, then a strided
// downsampling convolution; a middle of block, attention, block; the mirror path upwards, each
// block taking the matching skip connection, with nearest-neighbour upsampling and a convolution;
// GroupNorm, SiLU and a zero-initialised 3x3 output convolution.

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <memory>
#include <vector>

#include "sbgm/nets/score_net.hpp"

namespace sbgm {

class ConditioningEmbedding;
class ImageCondition;

class UNetScoreNet final : public ScoreNet {
 public:
  // image_shape: [C, H, W]; H and W must be multiples of 2^(resolutions - 1).
  UNetScoreNet(const NetConfig& config, const std::vector<int64_t>& image_shape, int64_t cond_dim);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;

 private:
  std::shared_ptr<ConditioningEmbedding> embedding_;
  std::shared_ptr<const ImageCondition> image_cond_;  // y as extra input channels (model.cond_channels)
  torch::nn::Conv2d input_{nullptr}, output_{nullptr};
  torch::nn::GroupNorm output_norm_{nullptr};
  torch::nn::ModuleList down_, middle_, up_;  // UNetLayer modules, in the order they run
};

}  // namespace sbgm
