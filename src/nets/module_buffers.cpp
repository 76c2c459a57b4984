#include "sbgm/nets/module_buffers.hpp"

#include <ATen/ATen.h>

#include "sbgm/util/error.hpp"

namespace sbgm {

std::vector<at::Tensor> module_buffers(torch::nn::Module& module) { return module.buffers(/*recurse=*/true); }

void load_module_buffers(torch::nn::Module& module, const std::vector<at::Tensor>& saved) {
  auto buffers = module_buffers(module);
  if (buffers.size() != saved.size()) throw IOError("saved buffers do not match the network");
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < buffers.size(); ++i) {
    if (!buffers[i].sizes().equals(saved[i].sizes())) throw IOError("saved buffers do not match the network");
    buffers[i].copy_(saved[i]);
  }
}

}  // namespace sbgm
