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
//
// A run's bounds come from data.lower / data.upper, or are found in its training rows
// (data.bounds = find; Bounds::find): a posterior's parameters are draws from the prior, so a
// prior with a box support shows its edges in them. A run keeps its samples within the bounds
// either by that map or by modelling the data as they are and drawing again every sample that
// falls outside (data.keep_within; run/model.hpp).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sbgm {

// How a run gets its bounds (data.bounds).
enum class BoundsRule {
  Auto,  // the run chooses (run/run_defaults.hpp)
  None,  // data.lower and data.upper only (empty: unbounded)
  Find,  // Bounds::find on the training rows, where data.lower and data.upper are empty
};
std::string to_string(BoundsRule v);
BoundsRule bounds_rule_from_string(const std::string& s);

// How a run keeps its samples within its bounds (data.keep_within).
enum class KeepWithin {
  Auto,    // the run chooses (run/run_defaults.hpp)
  Map,     // the network models the bijection's image of the data (below)
  Reject,  // the network models the data as they are; samples outside are drawn again
};
std::string to_string(KeepWithin v);
KeepWithin keep_within_from_string(const std::string& s);

struct Bounds {
  at::Tensor lower, upper;  // [D] float64, -inf / +inf for an open side; undefined: no bounds

  // Bounds from the config's lists (data.lower, data.upper): one value for every feature or one
  // per feature of the D a sample has; an empty list leaves that side open. InvalidArgument
  // naming the key for another length, NaN, or lower >= upper.
  static Bounds from_lists(const std::vector<double>& lower, const std::vector<double>& upper, int64_t features);

  // The edges rows [N, D] show: a side of a feature is bounded where the density of its values
  // stays up to their extreme instead of falling off into a tail (bounds.cpp says how this is
  // told), just beyond the extreme by the mean spacing of the values nearest it; other sides
  // open. No bounds (none()) when no side shows an edge, or for fewer than 500 rows.
  static Bounds find(const at::Tensor& rows);

  bool none() const { return !lower.defined(); }
  // The bounds as the config's lists (data.lower, data.upper): one value per feature, -inf / inf
  // for an open side; both empty for none().
  std::vector<double> lower_list() const;
  std::vector<double> upper_list() const;
  // Rows x [N, ...] (D features each): [N] true where every feature lies within its closed bounds.
  at::Tensor inside(const at::Tensor& x) const;
  // The first row of x outside the bounds described for an error ("row 3: feature 2 = 1.5 is
  // above its upper bound 1"), or "" when every row is inside.
  std::string first_outside(const at::Tensor& x) const;
  // Rows x [N, ...] with every feature moved onto its nearest point within the bounds.
  at::Tensor clamp(const at::Tensor& x) const;
  // x -> u, in x's dtype (computed in float64). Points on a bound are moved just inside it (by a
  // millionth of the box, or of the distance scale for an open side) so that u stays finite.
  at::Tensor to_unbounded(const at::Tensor& x) const;
  // u -> x: always within the bounds.
  at::Tensor to_bounded(const at::Tensor& u) const;
  // [N]: log |det du/dx| of each row of x (float64), to add to the log-density of u.
  at::Tensor log_abs_det_jacobian(const at::Tensor& x) const;
};

// A box as a model uses it: the bounds its bijection maps (KeepWithin::Map, and Auto, as a
// checkpoint written before data.keep_within means) or those its samples are drawn again to meet
// (Reject); the other one is none().
struct BoxUse {
  Bounds mapped, rejected;
};
BoxUse use_box(const Bounds& box, KeepWithin keep);

}  // namespace sbgm
