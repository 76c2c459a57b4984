#include "sbgm/eval/metrics.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <functional>

#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

constexpr int64_t kBlock = 1024;

at::Tensor flat_double(const at::Tensor& x, const char* what) {
  if (x.dim() < 1 || x.size(0) < 2) throw InvalidArgument(std::string(what) + " needs at least two rows");
  return x.reshape({x.size(0), -1}).to(at::kDouble).cpu().contiguous();
}

// Sum over all pairs (a_i, b_j) of kernel(distances block), in row blocks of a.
double pair_sum(const at::Tensor& a, const at::Tensor& b, const std::function<at::Tensor(const at::Tensor&)>& kernel) {
  double total = 0;
  for (int64_t start = 0; start < a.size(0); start += kBlock) {
    const at::Tensor rows = a.narrow(0, start, std::min(kBlock, a.size(0) - start));
    total += kernel(at::cdist(rows, b)).sum().item<double>();
  }
  return total;
}

}  // namespace

double energy_distance(const at::Tensor& x_in, const at::Tensor& y_in) {
  const at::Tensor x = flat_double(x_in, "energy distance: x"), y = flat_double(y_in, "energy distance: y");
  if (x.size(1) != y.size(1)) throw InvalidArgument("energy distance: x and y have different row sizes");
  const auto identity = [](const at::Tensor& d) { return d; };
  const double n = x.size(0), m = y.size(0);
  const double xy = pair_sum(x, y, identity) / (n * m);
  const double xx = pair_sum(x, x, identity) / (n * n);
  const double yy = pair_sum(y, y, identity) / (m * m);
  return std::sqrt(std::max(2 * xy - xx - yy, 0.0));
}

double mmd_rbf(const at::Tensor& x_in, const at::Tensor& y_in, double bandwidth) {
  const at::Tensor x = flat_double(x_in, "MMD: x"), y = flat_double(y_in, "MMD: y");
  if (x.size(1) != y.size(1)) throw InvalidArgument("MMD: x and y have different row sizes");
  if (!(bandwidth > 0)) {
    // Median heuristic on (at most) 2000 pooled rows.
    const at::Tensor pooled = at::cat({x.narrow(0, 0, std::min<int64_t>(1000, x.size(0))),
                                       y.narrow(0, 0, std::min<int64_t>(1000, y.size(0)))});
    const at::Tensor d = at::cdist(pooled, pooled);
    const at::Tensor off = d.masked_select(at::ones_like(d, at::kBool).triu(1));
    bandwidth = off.median().item<double>();
    if (!(bandwidth > 0)) bandwidth = 1.0;
  }
  const double gamma = 0.5 / (bandwidth * bandwidth);
  const auto rbf = [gamma](const at::Tensor& d) { return at::exp(d.square() * -gamma); };
  const double n = x.size(0), m = y.size(0);
  // The diagonals of K(x, x) and K(y, y) are exactly 1; the U-statistic leaves them out.
  const double xx = (pair_sum(x, x, rbf) - n) / (n * (n - 1));
  const double yy = (pair_sum(y, y, rbf) - m) / (m * (m - 1));
  const double xy = pair_sum(x, y, rbf) / (n * m);
  return xx + yy - 2 * xy;
}

}  // namespace sbgm
