#include "sbgm/run/likelihood_request.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "sbgm/data/dataset.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {

LikelihoodConfig resolve_likelihood(const Model& model, const LikelihoodRequest& request) {
  LikelihoodConfig config = request.config;
  if (config.chunk_size == 0) config.chunk_size = likelihood_chunk_rows(model);
  return config;
}

Dequantization resolve_dequantization(const Model& model, const LikelihoodRequest& request) {
  // A model of pixel data works on the levels themselves: level k dequantises to k + u.
  const bool pixels = !model.analytic() && model.config.data.pixel_range(false).has_value();
  Dequantization d;
  if (request.levels) d.levels = *request.levels;
  else if (pixels) d.levels = model.config.data.levels;
  if (request.range) {
    d.lo = request.range->first;
    d.hi = request.range->second;
  } else if (pixels) {
    d.lo = 0.0;
    d.hi = static_cast<double>(d.levels);
  }
  d.validate();
  return d;
}

LikelihoodReport run_likelihood_request(const Model& model, const LikelihoodRequest& request,
                                        const ProgressFn& progress) {
  LikelihoodReport report;
  report.config = resolve_likelihood(model, request);
  report.config.validate();
  if (!request.dequantize && (request.levels || request.range))
    throw InvalidArgument("dequantisation levels and range go with dequantize");
  if (!request.x.defined()) throw InvalidArgument("no rows to evaluate");
  at::Tensor x = model_rows(model, request.x);
  double log_jacobian = 0;  // of the map from the levels to the model's range, per row
  if (request.dequantize) {
    const Dequantization d = resolve_dequantization(model, request);
    x = d.apply(x, make_generator(c10::kCPU, request.seed + 1));
    log_jacobian = d.log_jacobian(x.numel() / x.size(0));
  }
  const LikelihoodResult r =
      model_log_likelihood(model, x, report.config, request.seed, progress, request.cond, request.comm,
                           request.set_orders, support_draws_of(model, request.support_draws));
  report.stats = r.stats;
  report.log_prob = r.log_prob + log_jacobian;
  const double dims = static_cast<double>(x.numel() / x.size(0));
  const double units = request.bits_per_dim ? dims * std::log(2.0) : 1.0;
  report.value = request.bits_per_dim ? -report.log_prob / units : report.log_prob;
  report.std_error = r.std_error / units;
  report.mean = report.value.mean().item<double>();
  report.mean_std_error = mean_standard_error(r) / units;
  return report;
}

double mean_standard_error(const LikelihoodResult& r) {
  const int64_t n = r.std_error.numel();
  if (n == 0) return 0;
  const at::Tensor total = r.std_error.to(at::kDouble).square();
  if (!r.shared_error.defined()) return std::sqrt(total.sum().item<double>()) / static_cast<double>(n);
  const at::Tensor own = (total - r.shared_error.to(at::kDouble).cpu().square()).clamp_min(0);
  return std::hypot(std::sqrt(own.sum().item<double>()) / static_cast<double>(n),
                    shared_error_of_mean(r.shared_error, r.shared_group, n));
}

double shared_error_of_mean(const at::Tensor& shared_error, const at::Tensor& shared_group, int64_t n) {
  if (n == 0 || shared_error.numel() == 0) return 0;
  const at::Tensor shared = shared_error.to(at::kDouble).cpu(), group = shared_group.to(at::kLong).cpu();
  // The rows of a group share one error: their sum moves by its sum over them.
  const at::Tensor per_group = at::zeros({group.max().item<int64_t>() + 1}, at::kDouble).index_add_(0, group, shared);
  return std::sqrt(per_group.square().sum().item<double>()) / static_cast<double>(n);
}

DensityGrid density_grid(const Model& model, int64_t g, const std::optional<std::array<double, 4>>& range,
                         const at::Tensor& data) {
  if (model.data_shape != std::vector<int64_t>{2}) throw InvalidArgument("{grid} needs a model of 2-D points");
  if (g < 2) throw InvalidArgument("{grid} must be at least 2");
  DensityGrid grid;
  if (range) {
    grid.x_range = {(*range)[0], (*range)[1]};
    grid.y_range = {(*range)[2], (*range)[3]};
  } else {
    if (!data.defined()) throw InvalidArgument("{grid} needs {range} XMIN,XMAX,YMIN,YMAX or {data} to set its extent");
    if (data.dim() != 2 || data.size(1) != 2) throw InvalidArgument("{grid}: the data must be [N, 2]");
    const at::Tensor lo = std::get<0>(data.min(0)), hi = std::get<0>(data.max(0)), pad = (hi - lo) * 0.1 + 1e-3;
    grid.x_range = {(lo[0] - pad[0]).item<double>(), (hi[0] + pad[0]).item<double>()};
    grid.y_range = {(lo[1] - pad[1]).item<double>(), (hi[1] + pad[1]).item<double>()};
  }
  for (const auto& r : {grid.x_range, grid.y_range})
    if (!std::isfinite(r[0]) || !std::isfinite(r[1]) || !(r[1] > r[0]))
      throw InvalidArgument("{range} needs XMIN < XMAX and YMIN < YMAX");
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor xs = at::linspace(grid.x_range[0], grid.x_range[1], g, opts);
  const at::Tensor ys = at::linspace(grid.y_range[0], grid.y_range[1], g, opts);
  grid.points = at::stack({xs.repeat({g}), ys.repeat_interleave(g)}, 1);
  return grid;
}

}  // namespace sbgm
