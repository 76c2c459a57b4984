#pragma once
// All trainable parameters of a module in one contiguous buffer, and their gradients in another.
// Each parameter (and its .grad) becomes a view into the flat buffers, so optimiser steps, EMA,
// gradient clipping, checkpointing and all-reduce each run as one pass over one tensor instead
// of a loop over dozens of small ones.

#include <torch/nn/module.h>

namespace sbgm {

class FlatParameters {
 public:
  explicit FlatParameters(torch::nn::Module& module);

  at::Tensor& values() { return values_; }
  at::Tensor& grads() { return grads_; }
  const at::Tensor& values() const { return values_; }
  int64_t numel() const { return values_.numel(); }
  void zero_grad() { grads_.zero_(); }

 private:
  at::Tensor values_;
  at::Tensor grads_;
};

// The module's buffers (non-trained state such as fixed Fourier frequencies) in a stable order.
std::vector<at::Tensor> module_buffers(torch::nn::Module& module);
// Copies saved buffers (from module_buffers of the same architecture) into the module.
void load_module_buffers(torch::nn::Module& module, const std::vector<at::Tensor>& saved);

}  // namespace sbgm
