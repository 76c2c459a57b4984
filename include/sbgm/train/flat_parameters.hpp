#pragma once
// All trainable parameters of a module in one contiguous buffer, and their gradients in another.
// Each parameter (and its .grad) becomes a view into the flat buffers, so optimiser steps, EMA,
// gradient clipping, checkpointing and all-reduce each run as one pass over one tensor instead
// of a loop over dozens of small ones.

#include <torch/nn/module.h>

namespace sbgm {

class FlatParameters {
 public:
  // spare: extra elements after the gradients in the same buffer, which travel with them
  // through an all-reduce at no extra message (the trainer sends its loss and stop flag there).
  explicit FlatParameters(torch::nn::Module& module, int64_t spare = 0);

  at::Tensor& values() { return values_; }
  at::Tensor& grads() { return grads_; }
  const at::Tensor& values() const { return values_; }
  int64_t numel() const { return values_.numel(); }
  void zero_grad() { grads_.zero_(); }
  // The gradients followed by the spare elements, one contiguous tensor.
  at::Tensor& grads_and_spare() { return grad_buffer_; }
  at::Tensor spare() { return grad_buffer_.narrow(0, numel(), grad_buffer_.numel() - numel()); }

 private:
  at::Tensor values_;
  at::Tensor grad_buffer_;
  at::Tensor grads_;  // the first numel() elements of grad_buffer_
};

}  // namespace sbgm
