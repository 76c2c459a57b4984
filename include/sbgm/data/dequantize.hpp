#pragma once
// Uniform dequantisation of integer-valued data (Theis, van den Oord & Bethge 2016): a level k in
// {0, ..., levels - 1} becomes z = lo + (k + u) (hi - lo) / levels with u ~ U[0, 1) per feature,
// so that a continuous density p on [lo, hi]^D bounds the discrete likelihood from below:
// log P(k) >= E_u[log p(z)] + D log((hi - lo) / levels). For 8-bit images, levels = 256; with
// bits/dim reported as -(that bound) / (D ln 2).

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sbgm {

struct Dequantization {
  int64_t levels = 256;
  double lo = 0.0, hi = 1.0;  // the continuous range the model was trained on

  void validate() const;  // throws InvalidArgument naming the bad value
  // x: [N, ...] of integer levels (any real dtype); throws InvalidArgument naming the first value
  // that is not an integer in [0, levels). Returns float64 points in [lo, hi).
  at::Tensor apply(const at::Tensor& x, at::Generator gen) const;
  // D log((hi - lo) / levels): add to log p(z) of one row of D features.
  double log_jacobian(int64_t features) const;
};

}  // namespace sbgm
