#include "sbgm/plot/image_grid.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "sbgm/plot/canvas.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

PixelRange PixelRange::of(const at::Tensor& x) {
  const double lo = x.min().item<double>(), hi = x.max().item<double>();
  return hi > lo ? PixelRange{lo, hi} : PixelRange{lo - 1, lo + 1};
}

void write_image_grid(const std::string& path, const at::Tensor& images, PixelRange range, int64_t columns) {
  if (images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3))
    throw InvalidArgument("an image grid needs images [N, 1 or 3, H, W]");
  const int64_t n = images.size(0), channels = images.size(1), h = images.size(2), w = images.size(3);
  if (n == 0) throw InvalidArgument("an image grid needs at least one image");
  if (columns <= 0) columns = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int64_t rows = (n + columns - 1) / columns;
  const int zoom = static_cast<int>(std::max<int64_t>(1, (64 + std::max(h, w) - 1) / std::max(h, w)));
  const int gap = 2;
  // Pixel bytes [N, H, W, C] in 0 .. 255.
  const at::Tensor bytes = ((images.detach().to(at::kCPU, at::kDouble) - range.lo) * (255.0 / (range.hi - range.lo)))
                               .round()
                               .clamp(0, 255)
                               .to(at::kByte)
                               .permute({0, 2, 3, 1})
                               .contiguous();
  const uint8_t* p = bytes.data_ptr<uint8_t>();
  Canvas canvas(static_cast<int>(columns * (w * zoom + gap) + gap), static_cast<int>(rows * (h * zoom + gap) + gap),
                Color{40, 40, 40});
  for (int64_t i = 0; i < n; ++i) {
    const int x0 = static_cast<int>(gap + (i % columns) * (w * zoom + gap));
    const int y0 = static_cast<int>(gap + (i / columns) * (h * zoom + gap));
    for (int64_t r = 0; r < h; ++r)
      for (int64_t c = 0; c < w; ++c) {
        const uint8_t* px = p + ((i * h + r) * w + c) * channels;
        const Color color = channels == 1 ? Color{px[0], px[0], px[0]} : Color{px[0], px[1], px[2]};
        const int x = x0 + static_cast<int>(c) * zoom, y = y0 + static_cast<int>(r) * zoom;
        canvas.fill_rect(x, y, x + zoom - 1, y + zoom - 1, color);
      }
  }
  canvas.write_png(path);
}

void write_image_strip(const std::string& path, const at::Tensor& frames, PixelRange range) {
  if (frames.dim() != 5) throw InvalidArgument("a denoising strip needs frames [S, K, C, H, W]");
  const int64_t steps = frames.size(0);
  write_image_grid(path, frames.transpose(0, 1).flatten(0, 1), range, steps);
}

}  // namespace sbgm
