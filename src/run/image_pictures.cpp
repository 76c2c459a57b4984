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

void write_model_inverse_grid(const std::string& path, const Model& model, const at::Tensor& observed,
                              const at::Tensor& mask, const at::Tensor& samples, int64_t max_rows, int64_t max_samples) {
  const int64_t rows = std::min(observed.size(0), max_rows), n = std::min(samples.size(1), max_samples);
  const at::Tensor shown = samples.narrow(0, 0, rows).narrow(1, 0, n).to(at::kDouble);
  const PixelRange range = model_pixel_range(model, shown.flatten(0, 1));
  const at::Tensor grey = at::full({}, 0.5 * (range.lo + range.hi), at::kDouble);
  const at::Tensor seen = observed.narrow(0, 0, rows).to(at::kDouble).where(mask.narrow(0, 0, rows) > 0, grey);
  write_image_grid(path, at::cat({seen.unsqueeze(1), shown}, 1).flatten(0, 1), range, 1 + n);
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
