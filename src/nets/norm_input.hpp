#pragma once
// Normalisation layers take their input in float32 when autocast has made it bfloat16 or half
// (internal to the networks): LibTorch 1.13's CPU kernels refuse a reduced-precision input with
// float32 affine parameters, and the statistics are better computed in float32 in any case, as
// CUDA's autocast does.

#include <ATen/core/Tensor.h>

namespace sbgm {

inline at::Tensor norm_input(const at::Tensor& x) {
  const auto type = x.scalar_type();
  return type == at::kBFloat16 || type == at::kHalf ? x.to(at::kFloat) : x;
}

}  // namespace sbgm
