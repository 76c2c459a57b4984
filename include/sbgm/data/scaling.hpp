#pragma once
// An affine map between data space and the space the model is trained in, x_model = (x - shift) / scale
// (per feature), stored in every checkpoint and undone on output.

#include <ATen/core/Tensor.h>

namespace sbgm {

struct Scaling {
  at::Tensor shift;  // shaped like one sample, or undefined for the identity
  at::Tensor scale;

  static Scaling identity() { return {}; }
  // Per-feature mean and standard deviation of data [N, ...] (features with zero spread keep scale 1).
  static Scaling standardize(const at::Tensor& data);
  // Pixel levels 0 .. levels - 1 onto [lo, hi] linearly, the same for every feature of samples
  // shaped like sample (one sample of the data, for the tensors' shape and dtype).
  static Scaling pixels(int64_t levels, double lo, double hi, const at::Tensor& sample);

  bool is_identity() const { return !shift.defined(); }
  at::Tensor to_model(const at::Tensor& x) const;
  at::Tensor to_data(const at::Tensor& x) const;
  // log |det d x_model / d x| for one sample (add to the model's log-density to get the data's).
  double log_abs_det_jacobian() const;
};

}  // namespace sbgm
