#include "sbgm/data/scaling.hpp"

#include <ATen/ATen.h>

namespace sbgm {

Scaling Scaling::standardize(const at::Tensor& data) {
  const at::Tensor d = data.to(at::kDouble);
  at::Tensor scale = data.size(0) > 1 ? d.std(0, /*unbiased=*/false) : at::ones_like(d[0]);
  scale = at::where(scale > 0, scale, at::ones_like(scale));
  return {d.mean(0).to(data.scalar_type()), scale.to(data.scalar_type())};
}

Scaling Scaling::pixels(int64_t levels, double lo, double hi, const at::Tensor& sample) {
  const double scale = static_cast<double>(levels - 1) / (hi - lo);
  return {at::full_like(sample, -lo * scale), at::full_like(sample, scale)};
}

at::Tensor Scaling::to_model(const at::Tensor& x) const {
  if (is_identity()) return x;
  return (x - shift.to(x.device())) / scale.to(x.device());
}

at::Tensor Scaling::to_data(const at::Tensor& x) const {
  if (is_identity()) return x;
  return x * scale.to(x.device()) + shift.to(x.device());
}

double Scaling::log_abs_det_jacobian() const {
  if (is_identity()) return 0.0;
  return -at::log(scale.to(at::kDouble)).sum().item<double>();
}

}  // namespace sbgm
