#pragma once
// The pictures sbgm draws: model samples beside the data, the training loss curve, sample paths
// through the diffusion, and a log-density heat map.

#include <ATen/core/Tensor.h>

#include <array>
#include <string>
#include <vector>

namespace sbgm {

// Data [N, D] beside samples [M, D] on the same axes: a scatter of the first two features for
// D >= 2, histograms for D = 1. With data undefined, the samples alone. The titles name what the
// two sets are (the observations and posterior samples of an inverse problem, say).
void plot_samples(const std::string& path, const at::Tensor& data, const at::Tensor& samples,
                  const std::string& data_title = "data (grey)", const std::string& samples_title = "samples (blue)");
void plot_samples_alone(const std::string& path, const at::Tensor& samples);

// Loss against step (log scale when the loss is positive and spans more than a decade).
void plot_loss_curve(const std::string& path, const std::vector<double>& steps, const std::vector<double>& losses);

// One panel per set of paths: the first feature of every path against diffusion time t.
struct PathPanel {
  std::string title;
  std::vector<double> times;  // [S]
  at::Tensor states;          // [S, K, ...]
};
void plot_trajectories(const std::string& path, const std::vector<PathPanel>& panels);

// Calibration at a glance: one panel per parameter (the first six) with the histogram of its SBC
// ranks [S, D] (ranks in 0..L) over the band a uniform histogram stays in 99% of the time, then
// one panel of expected coverage against credible level for each named curve, beside the
// diagonal a calibrated estimator follows.
struct CoverageCurve {
  std::string name;
  std::vector<double> coverage;  // at levels
};
void plot_calibration(const std::string& path, const at::Tensor& ranks, int64_t L, const std::vector<double>& levels,
                      const std::vector<CoverageCurve>& curves);

// A heat map of log_density [ny, nx] on the grid x_j = x_range[0] + j (x_range[1] - x_range[0]) / (nx - 1)
// (likewise y_i, row 0 at the bottom), with points [N, 2] overlaid when defined. Colours span
// from the maximum down to at most `span` nats below it, so far tails do not wash out the picture.
void plot_density_map(const std::string& path, const at::Tensor& log_density, std::array<double, 2> x_range,
                      std::array<double, 2> y_range, const at::Tensor& points, const std::string& title,
                      double span = 12.0);

}  // namespace sbgm
