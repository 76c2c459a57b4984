#include "sbgm/train/flat_parameters.hpp"

#include <ATen/ATen.h>


namespace sbgm {

FlatParameters::FlatParameters(torch::nn::Module& module, int64_t spare) {
  auto params = module.parameters(/*recurse=*/true);
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  const auto opts = params.empty() ? at::TensorOptions().dtype(at::kFloat) : params.front().options();
  values_ = at::empty({total}, opts.requires_grad(false));
  grad_buffer_ = at::zeros({total + spare}, opts.requires_grad(false));
  grads_ = grad_buffer_.narrow(0, 0, total);
  at::NoGradGuard no_grad;
  int64_t offset = 0;
  for (auto& p : params) {
    const int64_t n = p.numel();
    at::Tensor value_view = values_.narrow(0, offset, n).view(p.sizes());
    value_view.copy_(p.detach());
    p.set_data(value_view);
    p.mutable_grad() = grads_.narrow(0, offset, n).view(p.sizes());
    offset += n;
  }
}

}  // namespace sbgm
