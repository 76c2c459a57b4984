#pragma once
// Score networks on patch tokens, for images [B, C, H, W]: the image is cut into p x p patches,
// each linearly embedded to `width` features; `depth` blocks mix the tokens; a final layer maps
// each token back to its patch. Every block is conditioned by adaLN-Zero (Peebles & Xie 2023):
// the conditioning vector sets the shift and scale of each (affine-free) LayerNorm and a gate on
// each residual branch, all zero-initialised, so every block starts as the identity.
//   DiT (Diffusion Transformer): tokens are mixed by multi-head self-attention, with fixed 2-D
//     sine-cosine position embeddings.
//   MLP-Mixer (Tolstikhin et al. 2021): tokens are mixed by an MLP across the token axis, which
//     knows positions by construction.
// Both mix channels with a GELU MLP of width * mlp_ratio.

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include <memory>
#include <vector>

#include "sbgm/nets/score_net.hpp"

namespace sbgm {

class AdaLNOutput;
class ConditioningEmbedding;
class ImageCondition;

class PatchScoreNet final : public ScoreNet {
 public:
  // config.kind: DiT or Mixer. image_shape: [C, H, W], H and W multiples of config.patch_size.
  PatchScoreNet(const NetConfig& config, const std::vector<int64_t>& image_shape, int64_t cond_dim);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;

 private:
  int64_t patch_, channels_;
  std::shared_ptr<ConditioningEmbedding> embedding_;
  std::shared_ptr<const ImageCondition> image_cond_;  // y as extra input channels (model.cond_channels)
  torch::nn::Conv2d patchify_{nullptr};
  at::Tensor position_;  // [1, N, width] buffer, or undefined (Mixer)
  torch::nn::ModuleList blocks_;
  std::shared_ptr<AdaLNOutput> output_;
};

}  // namespace sbgm
