#pragma once
// Pictures of an image model's samples: grids of samples and strips of the denoising sequence,
// with pixel values shown on the model's pixel scale (0 .. levels - 1 for pixel data, the
// samples' own range otherwise).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sbgm/sample/sampler.hpp"

namespace sbgm {

struct Model;

// Whether samples of this shape are pictured as images: [C, H, W] with C = 1 or 3.
bool is_image_shape(const std::vector<int64_t>& sample_shape);

// Up to max_images of samples [N, C, H, W] (data space) as a grid.
void write_model_sample_grid(const std::string& path, const Model& model, const at::Tensor& samples,
                             int64_t max_images = 100);

// An inverse problem's picture: one row per observed image (observed [N, C, H, W], data space;
// unobserved pixels, where mask [N, C, H, W] is 0, drawn mid-grey) followed by its posterior
// samples (samples [N, n, C, H, W]); at most max_rows rows and max_samples samples each.
void write_model_inverse_grid(const std::string& path, const Model& model, const at::Tensor& observed,
                              const at::Tensor& mask, const at::Tensor& samples, int64_t max_rows = 16,
                              int64_t max_samples = 7);

// The denoising sequence of each path (states [S, K, C, H, W], data space) at `frames` evenly
// spaced steps, the last being the sample: one row per path.
void write_model_denoising_strip(const std::string& path, const Model& model, const Trajectories& paths,
                                 int64_t frames = 10);

}  // namespace sbgm
