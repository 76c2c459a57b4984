#pragma once
// A small RGB raster with anti-aliased-enough primitives and text, written as PNG. Enough to
// draw scatter plots, histograms and curves without any plotting library at run time.

#include <cstdint>
#include <string>
#include <vector>

namespace sbgm {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
};

class Canvas {
 public:
  Canvas(int width, int height, Color background = {255, 255, 255});
  int width() const { return width_; }
  int height() const { return height_; }

  // Blends color into pixel (x, y) with opacity alpha in [0, 1]; outside pixels are ignored.
  void blend(int x, int y, Color color, double alpha = 1.0);
  void fill_rect(int x0, int y0, int x1, int y1, Color color, double alpha = 1.0);
  void line(double x0, double y0, double x1, double y1, Color color, double alpha = 1.0);
  void disc(double cx, double cy, double radius, Color color, double alpha = 1.0);
  // Text with its top-left corner at (x, y); scale multiplies the 6-pixel-high built-in font.
  void text(int x, int y, const std::string& s, Color color, int scale = 1);
  static int text_width(const std::string& s, int scale = 1);

  const std::vector<uint8_t>& pixels() const { return pixels_; }
  // Writes the canvas as a PNG file (atomically).
  void write_png(const std::string& path) const;

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;  // RGB, row-major
};

}  // namespace sbgm
