#include "sbgm/data/bounds.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

constexpr double kInside = 1e-6;  // how far a point on a bound is moved in (see to_unbounded)

// Every term of the bijection for rows of x [N, D] (float64), with the kinds of feature as masks.
struct Parts {
  at::Tensor both, lower_only, upper_only;  // [D] bool
  at::Tensor lo, hi, width;                 // [D], finite stand-ins where a side is open
  at::Tensor s;                             // [N, D] (x - lo) / width, kept inside (0, 1)
  at::Tensor above_lo, below_hi;            // [N, D] x - lo and hi - x, kept positive
};

Parts parts(const Bounds& b, const at::Tensor& x) {
  Parts p;
  const at::Tensor lower = b.lower.to(x.device()), upper = b.upper.to(x.device());
  const at::Tensor lo_finite = at::isfinite(lower), hi_finite = at::isfinite(upper);
  p.both = lo_finite & hi_finite;
  p.lower_only = lo_finite & ~hi_finite;
  p.upper_only = hi_finite & ~lo_finite;
  p.lo = at::where(lo_finite, lower, at::zeros_like(lower));
  p.hi = at::where(hi_finite, upper, at::ones_like(upper));
  p.width = at::where(p.both, p.hi - p.lo, at::ones_like(lower));
  p.s = ((x - p.lo) / p.width).clamp(kInside, 1 - kInside);
  p.above_lo = at::max(x - p.lo, kInside * p.lo.abs().clamp_min(1));
  p.below_hi = at::max(p.hi - x, kInside * p.hi.abs().clamp_min(1));
  return p;
}

// Rows as [N, D] float64 on the bounds' device.
at::Tensor rows_of(const Bounds& b, const at::Tensor& x) {
  if (x.dim() < 1 || x.numel() / std::max<int64_t>(1, x.size(0)) != b.lower.numel())
    throw InvalidArgument("bounds for " + std::to_string(b.lower.numel()) + " features given rows of another width");
  return x.reshape({x.size(0), -1}).to(at::kDouble);
}

at::Tensor expand(const std::vector<double>& values, double open, int64_t features, const std::string& key) {
  if (values.empty()) return at::full({features}, open, at::kDouble);
  const auto n = static_cast<int64_t>(values.size());
  if (n != 1 && n != features)
    throw InvalidArgument(key + ": " + std::to_string(n) + " values for samples of " + std::to_string(features) +
                          " features (give one for every feature, or one per feature)");
  for (double v : values)
    if (std::isnan(v)) throw InvalidArgument(key + ": NaN is not a bound");
  at::Tensor t = at::tensor(std::vector<double>(values), at::kDouble);
  return n == 1 ? t.expand({features}).clone() : t;
}

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

Bounds Bounds::from_lists(const std::vector<double>& lower, const std::vector<double>& upper, int64_t features) {
  if (lower.empty() && upper.empty()) return {};
  const double inf = std::numeric_limits<double>::infinity();
  Bounds b{expand(lower, -inf, features, "data.lower"), expand(upper, inf, features, "data.upper")};
  const at::Tensor bad = (b.lower >= b.upper).nonzero();
  if (bad.size(0) > 0) {
    const int64_t f = bad[0][0].item<int64_t>();
    throw InvalidArgument("data.lower must lie below data.upper: feature " + std::to_string(f) + " has bounds [" +
                          number(b.lower[f].item<double>()) + ", " + number(b.upper[f].item<double>()) + "]");
  }
  return b;
}

at::Tensor Bounds::inside(const at::Tensor& x) const {
  if (none()) return at::ones({x.size(0)}, at::kBool);
  const at::Tensor r = rows_of(*this, x).cpu();
  return ((r >= lower) & (r <= upper)).all(1);
}

std::string Bounds::first_outside(const at::Tensor& x) const {
  if (none()) return "";
  const at::Tensor r = rows_of(*this, x).cpu();
  const at::Tensor out = ((r >= lower) & (r <= upper)).logical_not().nonzero();
  if (out.size(0) == 0) return "";
  const int64_t row = out[0][0].item<int64_t>(), f = out[0][1].item<int64_t>();
  const double v = r[row][f].item<double>();
  const double lo = lower[f].item<double>(), hi = upper[f].item<double>();
  const std::string where = std::isnan(v)  ? "is NaN"
                            : v < lo       ? "is below its lower bound " + number(lo)
                                           : "is above its upper bound " + number(hi);
  return "row " + std::to_string(row) + ": feature " + std::to_string(f) + " = " + number(v) + " " + where;
}

at::Tensor Bounds::to_unbounded(const at::Tensor& x) const {
  if (none()) return x;
  const at::Tensor r = rows_of(*this, x);
  const Parts p = parts(*this, r);
  const at::Tensor u = at::where(p.both, at::log(p.s) - at::log1p(-p.s),
                                 at::where(p.lower_only, at::log(p.above_lo),
                                           at::where(p.upper_only, -at::log(p.below_hi), r)));
  return u.to(x.scalar_type()).reshape(x.sizes());
}

at::Tensor Bounds::to_bounded(const at::Tensor& u) const {
  if (none()) return u;
  const at::Tensor r = rows_of(*this, u);
  const Parts p = parts(*this, r);
  const at::Tensor x = at::where(p.both, p.lo + p.width * at::sigmoid(r),
                                 at::where(p.lower_only, p.lo + at::exp(r),
                                           at::where(p.upper_only, p.hi - at::exp(-r), r)));
  return x.to(u.scalar_type()).reshape(u.sizes());
}

at::Tensor Bounds::log_abs_det_jacobian(const at::Tensor& x) const {
  if (none()) return at::zeros({x.size(0)}, x.options().dtype(at::kDouble));
  const at::Tensor r = rows_of(*this, x);
  const Parts p = parts(*this, r);
  const at::Tensor per_feature =
      at::where(p.both, -at::log(p.width) - at::log(p.s) - at::log1p(-p.s),
                at::where(p.lower_only, -at::log(p.above_lo),
                          at::where(p.upper_only, -at::log(p.below_hi), at::zeros_like(r))));
  return per_feature.sum(1);
}

}  // namespace sbgm
