#pragma once
// Applies an Activation to a tensor (internal to the networks).

#include <ATen/ATen.h>

#include "sbgm/nets/net_config.hpp"

namespace sbgm {

inline at::Tensor activate(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::ReLU: return at::relu(x);
    case Activation::SiLU: return at::silu(x);
    case Activation::GELU: return at::gelu(x);
    case Activation::Tanh: return at::tanh(x);
  }
  return x;
}

}  // namespace sbgm
