#pragma once
// A network's buffers — its state that training does not change (fixed Fourier frequencies, a
// linear-Gaussian fit) — as checkpoints save and restore them beside the weights.

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <vector>

namespace sbgm {

// The module's buffers in a stable order.
std::vector<at::Tensor> module_buffers(torch::nn::Module& module);
// Copies saved buffers (from module_buffers of the same architecture) into the module; IOError
// when their count or shapes do not match it.
void load_module_buffers(torch::nn::Module& module, const std::vector<at::Tensor>& saved);

}  // namespace sbgm
