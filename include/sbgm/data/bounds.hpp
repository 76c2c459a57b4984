#pragma once
// Box bounds on the features of a sample (a prior's support, such as sbibm's uniform priors on
// [-1, 1]) and the bijection onto unbounded space in which a bounded variable is modelled, so
// that no sample falls outside the box and every density carries the map's log-Jacobian. Per
// feature, with lo and hi its bounds (either may be infinite):
//   lo and hi finite: u = logit((x - lo) / (hi - lo))
//   lo only:          u = log(x - lo)
//   hi only:          u = -log(hi - x)
//   neither:          u = x
// Each map is increasing, so ranks and quantiles are the same on both sides.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sbgm {

struct Bounds {
  at::Tensor lower, upper;  // [D] float64, -inf / +inf for an open side; undefined: no bounds

  // Bounds from the config's lists (data.lower, data.upper): one value for every feature or one
  // per feature of the D a sample has; an empty list leaves that side open. InvalidArgument
  // naming the key for another length, NaN, or lower >= upper.
  static Bounds from_lists(const std::vector<double>& lower, const std::vector<double>& upper, int64_t features);

  bool none() const { return !lower.defined(); }
  // Rows x [N, ...] (D features each): [N] true where every feature lies within its closed bounds.
  at::Tensor inside(const at::Tensor& x) const;
  // The first row of x outside the bounds described for an error ("row 3: feature 2 = 1.5 is
  // above its upper bound 1"), or "" when every row is inside.
  std::string first_outside(const at::Tensor& x) const;
  // x -> u, in x's dtype (computed in float64). Points on a bound are moved just inside it (by a
  // millionth of the box, or of the distance scale for an open side) so that u stays finite.
  at::Tensor to_unbounded(const at::Tensor& x) const;
  // u -> x: always within the bounds.
  at::Tensor to_bounded(const at::Tensor& u) const;
  // [N]: log |det du/dx| of each row of x (float64), to add to the log-density of u.
  at::Tensor log_abs_det_jacobian(const at::Tensor& x) const;
};

}  // namespace sbgm
