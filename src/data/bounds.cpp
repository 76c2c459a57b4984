#include "sbgm/data/bounds.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>

#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

constexpr double kInside = 1e-6;  // how far a point on a bound is moved in (see to_unbounded)

constexpr EnumNames<BoundsRule, 3> kRuleNames{
    {{BoundsRule::Auto, "auto"}, {BoundsRule::None, "none"}, {BoundsRule::Find, "find"}}};
constexpr EnumNames<KeepWithin, 3> kKeepNames{
    {{KeepWithin::Auto, "auto"}, {KeepWithin::Map, "map"}, {KeepWithin::Reject, "reject"}}};

// Bounds::find. Near an edge a where the density f stays positive, the smallest values are evenly
// spaced (x_(j) - a ~ j / (n f(a))), so the (2k+1)-th smallest lies twice as far from the minimum
// as the (k+1)-th; where the density vanishes like (x - a)^alpha the ratio is 2^(1 / (1 + alpha)),
// and where it falls off into a tail (Gaussian, Student, log-normal) the extreme values spread out
// and it is 1.1-1.3. A side is bounded at a ratio of 1.6 or more, with k a twentieth of the rows
// (at least 50). In 200 draws each at 500, 1000, 10^4 and 10^5 rows (docs/sbi.md; the test checks
// 100 at 500 and 10^4): a uniform's sides found in 99-100%, an exponential's zero and a Gaussian
// truncated at 1 sd in 93-100%; a side of a Gaussian, a Student t_3 or a mixture of two narrow
// Gaussians never. Edges that are real but where the density vanishes (log-normal, Gamma(2),
// Beta(2, 2)) are found now and then at 500-1000 rows (4-50%), never at 10^4 or more.
constexpr int64_t kFewestRowsToFind = 500;
constexpr int64_t kFewestEdgeRows = 50;
constexpr int64_t kEdgeRowsPart = 20;  // k: this part of the rows
constexpr double kEdgeRatio = 1.6;

// The bound a side shows, or nothing: distances [n] of the sorted values from the extreme (the
// first 0), increasing.
std::optional<double> edge_distance(const double* d, int64_t n) {
  const int64_t k = std::max(kFewestEdgeRows, n / kEdgeRowsPart);
  if (d[k] <= 0 || d[2 * k] < kEdgeRatio * d[k]) return std::nullopt;
  return d[k] / static_cast<double>(k);  // the mean spacing: how far beyond the extreme the edge lies
}

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

std::vector<double> to_list(const at::Tensor& t) {
  if (!t.defined()) return {};
  const at::Tensor c = t.to(at::kDouble).contiguous().cpu();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

std::string to_string(BoundsRule v) { return enum_to_string(v, kRuleNames); }
BoundsRule bounds_rule_from_string(const std::string& s) { return enum_from_string(s, kRuleNames, "bounds rule"); }
std::string to_string(KeepWithin v) { return enum_to_string(v, kKeepNames); }
KeepWithin keep_within_from_string(const std::string& s) { return enum_from_string(s, kKeepNames, "data.keep_within value"); }

BoxUse use_box(const Bounds& box, KeepWithin keep) {
  if (keep == KeepWithin::Reject) return {Bounds{}, box};
  return {box, Bounds{}};
}

Bounds Bounds::find(const at::Tensor& rows) {
  const int64_t n = rows.size(0);
  if (n < kFewestRowsToFind) return {};
  const at::Tensor sorted = std::get<0>(rows.reshape({n, -1}).to(at::kDouble).cpu().sort(0)).t().contiguous();
  const int64_t features = sorted.size(0);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> lower(features, -inf), upper(features, inf), distances(n);
  bool found = false;
  for (int64_t f = 0; f < features; ++f) {
    const double* v = sorted[f].data_ptr<double>();
    for (int64_t j = 0; j < n; ++j) distances[j] = v[j] - v[0];
    if (const auto gap = edge_distance(distances.data(), n)) {
      lower[f] = v[0] - *gap;
      found = true;
    }
    for (int64_t j = 0; j < n; ++j) distances[j] = v[n - 1] - v[n - 1 - j];
    if (const auto gap = edge_distance(distances.data(), n)) {
      upper[f] = v[n - 1] + *gap;
      found = true;
    }
  }
  if (!found) return {};
  return Bounds{at::tensor(lower, at::kDouble), at::tensor(upper, at::kDouble)};
}

std::vector<double> Bounds::lower_list() const { return to_list(lower); }
std::vector<double> Bounds::upper_list() const { return to_list(upper); }

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

namespace {

// Rows r (float64, within the bounds) in the precision `type`, still within them: rounding can
// carry a value on a bound outward (the float32 nearest 1.00051542 is 1.0005155), and such values
// step one representable number inward. The step is a constant to autograd (the MAP ascends
// through the map), so gradients pass as through the rounding alone.
at::Tensor inside_in_precision(const Bounds& b, const at::Tensor& r, at::ScalarType type) {
  const at::Tensor c = r.to(type);
  at::Tensor step;
  {
    at::NoGradGuard no_grad;
    const at::Tensor d = c.detach(), back = d.to(at::kDouble);
    const at::Tensor lo = b.lower.to(r.device()), hi = b.upper.to(r.device());
    const double inf = std::numeric_limits<double>::infinity();
    const at::Tensor inward = at::where(back > hi, at::nextafter(d, at::full_like(d, -inf)),
                                        at::where(back < lo, at::nextafter(d, at::full_like(d, inf)), d));
    // Exact: a difference of neighbouring floats; 0 where nothing moved (an infinite value too).
    step = at::where(inward == d, at::zeros_like(d), inward - d);
  }
  return c + step;
}

}  // namespace

at::Tensor Bounds::clamp(const at::Tensor& x) const {
  if (none()) return x;
  const at::Tensor r = rows_of(*this, x);
  return inside_in_precision(*this, at::max(at::min(r, upper.to(r.device())), lower.to(r.device())), x.scalar_type())
      .reshape(x.sizes());
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
  // The exp of an open side overflows u's type where u is far out (a barely trained model's
  // draws): the type's largest finite value stands for it, so a sample is never infinite.
  const double most = u.scalar_type() == at::kDouble ? std::numeric_limits<double>::max()
                      : u.scalar_type() == at::kHalf ? 65504.0
                                                     : static_cast<double>(std::numeric_limits<float>::max());
  return inside_in_precision(*this, x.clamp(-most, most), u.scalar_type()).reshape(u.sizes());
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
