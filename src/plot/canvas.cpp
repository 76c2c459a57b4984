#include "sbgm/plot/canvas.hpp"

#include <stb_easy_font.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>

#include "sbgm/io/atomic_file.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

Canvas::Canvas(int width, int height, Color background) : width_(width), height_(height) {
  if (width < 1 || height < 1) throw InvalidArgument("canvas size must be positive");
  pixels_.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

void Canvas::blend(int x, int y, Color c, double alpha) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_ || alpha <= 0) return;
  alpha = std::min(alpha, 1.0);
  uint8_t* p = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
  p[0] = static_cast<uint8_t>(std::lround(p[0] + (c.r - p[0]) * alpha));
  p[1] = static_cast<uint8_t>(std::lround(p[1] + (c.g - p[1]) * alpha));
  p[2] = static_cast<uint8_t>(std::lround(p[2] + (c.b - p[2]) * alpha));
}

void Canvas::fill_rect(int x0, int y0, int x1, int y1, Color c, double alpha) {
  for (int y = std::max(0, std::min(y0, y1)); y <= std::min(height_ - 1, std::max(y0, y1)); ++y)
    for (int x = std::max(0, std::min(x0, x1)); x <= std::min(width_ - 1, std::max(x0, x1)); ++x) blend(x, y, c, alpha);
}

void Canvas::line(double x0, double y0, double x1, double y1, Color c, double alpha) {
  const double len = std::max(std::abs(x1 - x0), std::abs(y1 - y0));
  const int n = std::max(1, static_cast<int>(std::ceil(len)));
  if (n > 100000) return;  // a degenerate (off-canvas) segment
  for (int i = 0; i <= n; ++i) {
    const double u = static_cast<double>(i) / n;
    blend(static_cast<int>(std::lround(x0 + u * (x1 - x0))), static_cast<int>(std::lround(y0 + u * (y1 - y0))), c, alpha);
  }
}

void Canvas::disc(double cx, double cy, double r, Color c, double alpha) {
  // Coverage-weighted edge pixels, so small dots look round.
  const int x0 = static_cast<int>(std::floor(cx - r - 1)), x1 = static_cast<int>(std::ceil(cx + r + 1));
  const int y0 = static_cast<int>(std::floor(cy - r - 1)), y1 = static_cast<int>(std::ceil(cy + r + 1));
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      const double d = std::hypot(x + 0.5 - cx, y + 0.5 - cy);
      const double coverage = std::clamp(r + 0.5 - d, 0.0, 1.0);
      blend(x, y, c, alpha * coverage);
    }
}

void Canvas::text(int x, int y, const std::string& s, Color c, int scale) {
  // stb_easy_font emits quads (4 vertices of 16 bytes: x, y, z as floats, then a color).
  static thread_local std::vector<char> buffer(1 << 16);
  std::string copy = s;
  const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buffer.data(), static_cast<int>(buffer.size()));
  for (int q = 0; q < quads; ++q) {
    const float* v0 = reinterpret_cast<const float*>(buffer.data() + q * 64);
    const float* v2 = reinterpret_cast<const float*>(buffer.data() + q * 64 + 32);
    fill_rect(x + static_cast<int>(v0[0] * scale), y + static_cast<int>(v0[1] * scale),
              x + static_cast<int>(v2[0] * scale) - 1, y + static_cast<int>(v2[1] * scale) - 1, c);
  }
}

int Canvas::text_width(const std::string& s, int scale) {
  std::string copy = s;
  return stb_easy_font_width(copy.data()) * scale;
}

void Canvas::write_png(const std::string& path) const {
  // Encoded in memory (stb's file writer does not report a failed fwrite), then written atomically.
  std::string png;
  const auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &png, width_, height_, 3, pixels_.data(), width_ * 3))
    throw IOError(path + ": cannot write: the PNG could not be encoded");
  write_bytes_atomically(path, png);
}

}  // namespace sbgm
