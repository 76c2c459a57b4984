#include "sbgm/run/image_pictures.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "sbgm/plot/image_grid.hpp"
#include "sbgm/run/model.hpp"

namespace sbgm {
namespace {

// Pixel data shows on its levels; anything else on the range of what is pictured. Noisy
// early frames of a strip are clamped to the final samples' range.
PixelRange model_pixel_range(const Model& model, const at::Tensor& final_samples) {
  if (model.config.data.pixel_range(false)) return {0.0, static_cast<double>(model.config.data.levels - 1)};
  return PixelRange::of(final_samples);
}

}  // namespace

bool is_image_shape(const std::vector<int64_t>& shape) { return shape.size() == 3 && (shape[0] == 1 || shape[0] == 3); }

void write_model_sample_grid(const std::string& path, const Model& model, const at::Tensor& samples, int64_t max_images) {
  const at::Tensor shown = samples.narrow(0, 0, std::min(samples.size(0), max_images));
  write_image_grid(path, shown, model_pixel_range(model, shown));
}

void write_model_denoising_strip(const std::string& path, const Model& model, const Trajectories& paths, int64_t frames) {
  const int64_t s = paths.states.size(0);
  frames = std::max<int64_t>(2, std::min(frames, s));
  // Steps 0, ..., s - 1 at even spacing, always ending on the sample.
  const at::Tensor steps = at::linspace(0, static_cast<double>(s - 1), frames).round().to(at::kLong);
  const at::Tensor picked = paths.states.index_select(0, steps);
  write_image_strip(path, picked, model_pixel_range(model, picked[frames - 1]));
}

}  // namespace sbgm
