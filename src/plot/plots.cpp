#include "sbgm/plot/plots.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "sbgm/plot/canvas.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

constexpr Color kInk{40, 40, 40}, kGrid{225, 225, 225}, kData{90, 90, 90}, kModel{31, 119, 180};

std::string format_tick(double v) {
  std::ostringstream s;
  s.precision(6);
  s << (std::abs(v) < 1e-12 ? 0.0 : v);
  return s.str();
}

// Round tick positions covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 5) {
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  const double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) ticks.push_back(t);
  return ticks;
}

// A rectangle of the canvas with data coordinates.
struct Panel {
  int x0, y0, x1, y1;
  double xmin, xmax, ymin, ymax;
  bool log_y = false;
  double px(double x) const { return x0 + (x - xmin) / (xmax - xmin) * (x1 - x0); }
  double py(double y) const {
    if (log_y) y = std::log10(y);
    return y1 - (y - ymin) / (ymax - ymin) * (y1 - y0);
  }
  void draw_frame(Canvas& c, const std::string& title) const {
    for (double t : nice_ticks(xmin, xmax)) {
      const int x = static_cast<int>(std::lround(px(t)));
      c.line(x, y0, x, y1, kGrid);
      const std::string label = format_tick(t);
      c.text(x - Canvas::text_width(label) / 2, y1 + 5, label, kInk);
    }
    for (double t : nice_ticks(ymin, ymax)) {
      const int y = static_cast<int>(std::lround(y1 - (t - ymin) / (ymax - ymin) * (y1 - y0)));
      c.line(x0, y, x1, y, kGrid);
      const std::string label = log_y ? format_tick(std::pow(10.0, t)) : format_tick(t);
      c.text(x0 - Canvas::text_width(label) - 5, y - 3, label, kInk);
    }
    c.line(x0, y0, x1, y0, kInk);
    c.line(x0, y1, x1, y1, kInk);
    c.line(x0, y0, x0, y1, kInk);
    c.line(x1, y0, x1, y1, kInk);
    c.text((x0 + x1) / 2 - Canvas::text_width(title, 2) / 2, y0 - 20, title, kInk, 2);
  }
};

// Limits covering the bulk of both sets (0.5% and 99.5% quantiles, padded), so a few
// far-off samples do not squash the picture.
std::pair<double, double> limits(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor all = at::cat({a.reshape({-1}), b.reshape({-1})}).to(at::kDouble);
  const at::Tensor finite = all.masked_select(at::isfinite(all));
  if (finite.numel() == 0) return {-1, 1};
  const at::Tensor q = at::quantile(finite, at::tensor({0.005, 0.995}, at::kDouble));
  double lo = q[0].item<double>(), hi = q[1].item<double>();
  const double pad = std::max(0.08 * (hi - lo), 1e-3);
  return {lo - pad, hi + pad};
}

void scatter(Canvas& c, const Panel& p, const at::Tensor& xy, Color color) {
  const at::Tensor pts = xy.to(at::kDouble).contiguous();
  const double* v = pts.data_ptr<double>();
  const double alpha = std::clamp(600.0 / std::max<int64_t>(pts.size(0), 1), 0.08, 0.9);
  for (int64_t i = 0; i < pts.size(0); ++i) {
    const double x = v[2 * i], y = v[2 * i + 1];
    if (x < p.xmin || x > p.xmax || y < p.ymin || y > p.ymax) continue;
    c.disc(p.px(x), p.py(y), 2.0, color, alpha);
  }
}

void histogram(Canvas& c, const Panel& p, const at::Tensor& x, int bins, Color color, double alpha) {
  const at::Tensor h = at::histc(x.to(at::kDouble).reshape({-1}), bins, p.xmin, p.xmax);
  const at::Tensor density = h / (h.sum().clamp_min(1) * ((p.xmax - p.xmin) / bins));
  for (int i = 0; i < bins; ++i) {
    const double lo = p.xmin + (p.xmax - p.xmin) * i / bins, hi = p.xmin + (p.xmax - p.xmin) * (i + 1) / bins;
    c.fill_rect(static_cast<int>(p.px(lo)), static_cast<int>(p.py(density[i].item<double>())),
                static_cast<int>(p.px(hi)) - 1, p.y1, color, alpha);
  }
}

}  // namespace

namespace {

struct Series {
  at::Tensor points;  // [N, D]
  Color color;
  std::string name;
};

// One panel per series (scatter of the first two features) on shared axes, or for D = 1 one
// panel with the series' histograms overlaid.
void plot_series(const std::string& path, const std::vector<Series>& series) {
  std::vector<at::Tensor> xs, ys;
  for (const auto& s : series) {
    xs.push_back(s.points.select(1, 0));
    if (s.points.size(1) > 1) ys.push_back(s.points.select(1, 1));
  }
  const auto [xlo, xhi] = limits(at::cat(xs), at::cat(xs));
  if (series.front().points.size(1) == 1) {
    constexpr int kBins = 60;
    Canvas c(720, 480);
    Panel p{80, 50, 690, 420, xlo, xhi, 0, 1};
    double ymax = 0;
    std::string title;
    for (const auto& s : series) {
      const at::Tensor h = at::histc(s.points.to(at::kDouble), kBins, xlo, xhi);
      ymax = std::max(ymax, (h / (h.sum().clamp_min(1) * ((xhi - xlo) / kBins))).max().item<double>());
      title += (title.empty() ? "" : " and ") + s.name;
    }
    p.ymax = 1.1 * std::max(ymax, 1e-12);
    p.draw_frame(c, title);
    for (const auto& s : series) histogram(c, p, s.points, kBins, s.color, 0.45);
    c.write_png(path);
    return;
  }
  const auto [ylo, yhi] = limits(at::cat(ys), at::cat(ys));
  const int n = static_cast<int>(series.size());
  Canvas c(500 * n, 520);
  for (int i = 0; i < n; ++i) {
    const Panel panel{70 + 500 * i, 50, 470 + 500 * i, 450, xlo, xhi, ylo, yhi};
    panel.draw_frame(c, series[i].name);
    scatter(c, panel, series[i].points.narrow(1, 0, 2), series[i].color);
  }
  c.write_png(path);
}

at::Tensor as_rows(const at::Tensor& x) { return x.detach().cpu().reshape({x.size(0), -1}); }

}  // namespace

void plot_samples_alone(const std::string& path, const at::Tensor& samples) {
  plot_series(path, {{as_rows(samples), kModel, "samples"}});
}

void plot_samples(const std::string& path, const at::Tensor& data, const at::Tensor& samples,
                  const std::string& data_title, const std::string& samples_title) {
  if (!data.defined()) return plot_samples_alone(path, samples);
  if (as_rows(data).size(1) != as_rows(samples).size(1))
    throw InvalidArgument("plot_samples: data and samples differ in dimension");
  plot_series(path, {{as_rows(data), kData, data_title}, {as_rows(samples), kModel, samples_title}});
}

void plot_loss_curve(const std::string& path, const std::vector<double>& steps, const std::vector<double>& losses) {
  if (steps.size() != losses.size()) throw InvalidArgument("plot_loss_curve: steps and losses differ in length");
  Canvas c(720, 480);
  std::vector<std::pair<double, double>> pts;
  for (size_t i = 0; i < steps.size(); ++i)
    if (std::isfinite(losses[i])) pts.emplace_back(steps[i], losses[i]);
  double xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  bool log_y = false;
  if (!pts.empty()) {
    xmin = pts.front().first;
    xmax = std::max(pts.back().first, xmin + 1);
    auto [lo, hi] = std::minmax_element(pts.begin(), pts.end(), [](auto& a, auto& b) { return a.second < b.second; });
    ymin = lo->second;
    ymax = hi->second;
    log_y = ymin > 0 && ymax / ymin > 10;
    if (log_y) {
      ymin = std::log10(ymin);
      ymax = std::log10(ymax);
    }
    const double pad = std::max(0.05 * (ymax - ymin), 1e-6);
    ymin -= pad;
    ymax += pad;
  }
  Panel p{90, 50, 690, 420, xmin, xmax, ymin, ymax, log_y};
  p.draw_frame(c, "training loss");
  c.text(390 - Canvas::text_width("step") / 2, 445, "step", kInk);
  for (size_t i = 1; i < pts.size(); ++i)
    c.line(p.px(pts[i - 1].first), p.py(pts[i - 1].second), p.px(pts[i].first), p.py(pts[i].second), kModel);
  c.write_png(path);
}

namespace {

// Matplotlib's viridis at eleven evenly spaced stops, linearly interpolated.
Color viridis(double u) {
  static constexpr std::array<std::array<double, 3>, 11> kStops{{{68, 1, 84},
                                                                  {72, 36, 117},
                                                                  {65, 68, 135},
                                                                  {53, 95, 141},
                                                                  {42, 120, 142},
                                                                  {33, 145, 140},
                                                                  {34, 168, 132},
                                                                  {68, 191, 112},
                                                                  {122, 209, 81},
                                                                  {189, 223, 38},
                                                                  {253, 231, 37}}};
  const double x = std::clamp(u, 0.0, 1.0) * (kStops.size() - 1);
  const size_t i = std::min(static_cast<size_t>(x), kStops.size() - 2);
  const double f = x - static_cast<double>(i);
  auto mix = [&](int c) { return static_cast<uint8_t>(std::lround(kStops[i][c] + f * (kStops[i + 1][c] - kStops[i][c]))); };
  return {mix(0), mix(1), mix(2)};
}

}  // namespace

void plot_trajectories(const std::string& path, const std::vector<PathPanel>& panels) {
  if (panels.empty()) throw InvalidArgument("plot_trajectories: nothing to draw");
  std::vector<at::Tensor> firsts;
  double t_max = 0;
  for (const auto& p : panels) {
    if (p.states.dim() < 2 || p.states.size(0) != static_cast<int64_t>(p.times.size()))
      throw InvalidArgument("plot_trajectories: states must be [steps, K, ...] with one time per step");
    firsts.push_back(p.states.reshape({p.states.size(0), p.states.size(1), -1}).select(2, 0).to(at::kDouble));
    for (double t : p.times) t_max = std::max(t_max, t);
  }
  std::vector<at::Tensor> flat;
  for (const auto& f : firsts) flat.push_back(f.reshape({-1}));
  const auto [ylo, yhi] = limits(at::cat(flat), at::cat(flat));
  const int n = static_cast<int>(panels.size());
  Canvas c(560 * n, 520);
  for (int i = 0; i < n; ++i) {
    const Panel panel{80 + 560 * i, 50, 530 + 560 * i, 450, 0.0, std::max(t_max, 1e-12), ylo, yhi};
    panel.draw_frame(c, panels[i].title);
    c.text((panel.x0 + panel.x1) / 2 - Canvas::text_width("t (sampling runs right to left)") / 2, 475,
           "t (sampling runs right to left)", kInk);
    const at::Tensor v = firsts[i].contiguous();
    const double* a = v.data_ptr<double>();
    const int64_t steps = v.size(0), k = v.size(1);
    for (int64_t j = 0; j < k; ++j) {
      const Color color = viridis(k == 1 ? 0.5 : 0.9 * static_cast<double>(j) / static_cast<double>(k - 1));
      for (int64_t s = 1; s < steps; ++s) {
        const double y0 = std::clamp(a[(s - 1) * k + j], ylo, yhi), y1 = std::clamp(a[s * k + j], ylo, yhi);
        c.line(panel.px(panels[i].times[s - 1]), panel.py(y0), panel.px(panels[i].times[s]), panel.py(y1), color, 0.8);
      }
    }
  }
  c.write_png(path);
}

void plot_density_map(const std::string& path, const at::Tensor& log_density, std::array<double, 2> x_range,
                      std::array<double, 2> y_range, const at::Tensor& points, const std::string& title, double span) {
  if (log_density.dim() != 2 || log_density.size(0) < 2 || log_density.size(1) < 2)
    throw InvalidArgument("plot_density_map: log_density must be a [ny, nx] grid with nx, ny >= 2");
  if (!(x_range[1] > x_range[0]) || !(y_range[1] > y_range[0])) throw InvalidArgument("plot_density_map: empty range");
  const at::Tensor grid = log_density.to(at::kDouble).contiguous();
  const int64_t ny = grid.size(0), nx = grid.size(1);
  const double* g = grid.data_ptr<double>();
  const at::Tensor finite = grid.masked_select(at::isfinite(grid));
  const double top = finite.numel() ? finite.max().item<double>() : 0.0;
  const double bottom = finite.numel() ? std::max(finite.min().item<double>(), top - span) : top - span;
  const double range = std::max(top - bottom, 1e-12);
  Canvas c(640, 540);
  const Panel panel{70, 50, 520, 500, x_range[0], x_range[1], y_range[0], y_range[1]};
  // Each pixel takes the nearest grid value.
  for (int py = panel.y0; py <= panel.y1; ++py) {
    for (int px = panel.x0; px <= panel.x1; ++px) {
      const double fx = static_cast<double>(px - panel.x0) / (panel.x1 - panel.x0);
      const double fy = static_cast<double>(panel.y1 - py) / (panel.y1 - panel.y0);
      const int64_t j = std::lround(fx * (nx - 1)), i = std::lround(fy * (ny - 1));
      const double v = g[i * nx + j];
      c.blend(px, py, std::isfinite(v) ? viridis((v - bottom) / range) : Color{0, 0, 0});
    }
  }
  panel.draw_frame(c, title);
  if (points.defined()) {
    const at::Tensor xy = as_rows(points).to(at::kDouble).contiguous();
    if (xy.size(1) != 2) throw InvalidArgument("plot_density_map: overlay points must be [N, 2]");
    const double* v = xy.data_ptr<double>();
    const double alpha = std::clamp(400.0 / std::max<int64_t>(xy.size(0), 1), 0.1, 0.9);
    for (int64_t r = 0; r < xy.size(0); ++r) {
      const double x = v[2 * r], y = v[2 * r + 1];
      if (x < panel.xmin || x > panel.xmax || y < panel.ymin || y > panel.ymax) continue;
      c.disc(panel.px(x), panel.py(y), 1.6, {255, 255, 255}, alpha);
    }
  }
  // Colour bar with its scale in nats.
  const Panel bar{560, 50, 580, 500, 0, 1, bottom, top};
  for (int py = bar.y0; py <= bar.y1; ++py)
    c.fill_rect(bar.x0, py, bar.x1, py, viridis(static_cast<double>(bar.y1 - py) / (bar.y1 - bar.y0)));
  for (double t : nice_ticks(bottom, top)) {
    const int y = static_cast<int>(std::lround(bar.py(t)));
    c.line(bar.x1, y, bar.x1 + 4, y, kInk);
    c.text(bar.x1 + 7, y - 3, format_tick(t), kInk);
  }
  c.text(bar.x0 - 4, bar.y0 - 14, "log p", kInk);
  c.write_png(path);
}

void plot_calibration(const std::string& path, const at::Tensor& ranks, int64_t L, const std::vector<double>& levels,
                      const std::vector<CoverageCurve>& curves) {
  if (ranks.dim() != 2 || L < 1) throw InvalidArgument("plot_calibration: ranks must be [S, D] in 0..L");
  const int64_t sims = ranks.size(0), shown = std::min<int64_t>(ranks.size(1), 6);
  // About ten simulations a bin, between 5 and 20 bins, none wider than the ranks allow.
  const int bins = static_cast<int>(std::clamp<int64_t>(sims / 10, 5, std::min<int64_t>(20, L + 1)));
  const double expected = static_cast<double>(sims) / bins;
  const double band = 2.576 * std::sqrt(expected * (1.0 - 1.0 / bins));  // 99% of a binomial count
  const int panels = static_cast<int>(shown) + 1, width = 340;
  Canvas c(width * panels, 380);
  const at::Tensor r = ranks.to(at::kDouble);
  for (int64_t d = 0; d < shown; ++d) {
    const at::Tensor counts = at::histc(r.select(1, d), bins, -0.5, static_cast<double>(L) + 0.5);
    const double top = std::max(counts.max().item<double>(), expected + band) * 1.1;
    const int x0 = static_cast<int>(60 + width * d);
    const Panel p{x0, 50, x0 + width - 90, 320, -0.5, static_cast<double>(L) + 0.5, 0, top};
    c.fill_rect(p.x0, static_cast<int>(p.py(expected + band)), p.x1, static_cast<int>(p.py(std::max(expected - band, 0.0))),
                kGrid);
    p.draw_frame(c, "SBC ranks, theta_" + std::to_string(d));
    for (int b = 0; b < bins; ++b) {
      const double lo = -0.5 + (L + 1.0) * b / bins, hi = -0.5 + (L + 1.0) * (b + 1) / bins;
      c.fill_rect(static_cast<int>(p.px(lo)) + 1, static_cast<int>(p.py(counts[b].item<double>())),
                  static_cast<int>(p.px(hi)) - 1, p.y1, kModel, 0.7);
    }
  }
  const int x0 = static_cast<int>(60 + width * shown);
  const Panel p{x0, 50, x0 + width - 90, 320, 0, 1, 0, 1};
  p.draw_frame(c, "expected coverage");
  c.text((p.x0 + p.x1) / 2 - Canvas::text_width("credible level") / 2, 345, "credible level", kInk);
  c.line(p.px(0), p.py(0), p.px(1), p.py(1), kData);
  static constexpr std::array<Color, 4> kCurves{{{31, 119, 180}, {214, 39, 40}, {44, 160, 44}, {148, 103, 189}}};
  for (size_t k = 0; k < curves.size(); ++k) {
    const Color color = kCurves[k % kCurves.size()];
    double px = 0, py = 0;
    for (size_t i = 0; i < levels.size() && i < curves[k].coverage.size(); ++i) {
      const double x = p.px(levels[i]), y = p.py(curves[k].coverage[i]);
      if (i > 0) c.line(px, py, x, y, color);
      px = x;
      py = y;
    }
    c.text(p.x0 + 8, p.y0 + 8 + 12 * static_cast<int>(k), curves[k].name, color);
  }
  c.write_png(path);
}

}  // namespace sbgm
