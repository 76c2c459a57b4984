#pragma once
// Pictures of image samples: a grid of images, and the denoising sequence of a few samples as a
// strip, written as PNG. Values are mapped from [lo, hi] onto 0 .. 255 (clamped); grey images
// ([N, 1, H, W]) are drawn grey, three channels as RGB. Small images are enlarged by an integer
// factor (nearest neighbour) so that each is at least 64 pixels across.

#include <ATen/core/Tensor.h>

#include <string>

namespace sbgm {

struct PixelRange {
  double lo = 0.0, hi = 255.0;
  // The range of x's values (a flat image maps to mid-grey rather than dividing by zero).
  static PixelRange of(const at::Tensor& x);
};

// images [N, C, H, W], C = 1 or 3: `columns` per row (0: as square a grid as N allows).
void write_image_grid(const std::string& path, const at::Tensor& images, PixelRange range, int64_t columns = 0);

// frames [S, K, C, H, W] (S steps of K samples): one row per sample, time running left to right.
void write_image_strip(const std::string& path, const at::Tensor& frames, PixelRange range);

}  // namespace sbgm
