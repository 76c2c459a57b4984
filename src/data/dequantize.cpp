#include "sbgm/data/dequantize.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <string>

#include "sbgm/util/error.hpp"

namespace sbgm {

void Dequantization::validate() const {
  if (levels < 2) throw InvalidArgument("{levels} must be at least 2 (got " + std::to_string(levels) + ")");
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > lo))
    throw InvalidArgument("the dequantisation range must have LO < HI (got " + std::to_string(lo) + ", " +
                          std::to_string(hi) + ")");
}

at::Tensor Dequantization::apply(const at::Tensor& x, at::Generator gen) const {
  validate();
  const at::Tensor k = x.to(at::kDouble);
  const at::Tensor bad = (k != k.round()) | (k < 0) | (k > levels - 1) | ~at::isfinite(k);
  if (bad.any().item<bool>()) {
    const int64_t i = bad.reshape({-1}).nonzero()[0][0].item<int64_t>();
    const int64_t per_row = k.numel() / std::max<int64_t>(k.size(0), 1);
    throw InvalidArgument("data value " + std::to_string(k.reshape({-1})[i].item<double>()) + " in row " +
                          std::to_string(i / per_row) + " is not an integer level in [0, " +
                          std::to_string(levels - 1) + "]");
  }
  const at::Tensor u = at::rand(k.sizes(), gen, k.options());
  return (k + u) * ((hi - lo) / static_cast<double>(levels)) + lo;
}

double Dequantization::log_jacobian(int64_t features) const {
  return static_cast<double>(features) * std::log((hi - lo) / static_cast<double>(levels));
}

}  // namespace sbgm
