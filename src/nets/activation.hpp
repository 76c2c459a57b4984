#pragma once
// Applies an Activation to a tensor, and its derivative (internal to the networks).

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

inline void activate_out(at::Tensor& out, const at::Tensor& pre, Activation a) {
  switch (a) {
    case Activation::ReLU: at::clamp_min_out(out, pre, 0); return;
    case Activation::SiLU: at::silu_out(out, pre); return;
    case Activation::GELU: at::gelu_out(out, pre); return;
    case Activation::Tanh: at::tanh_out(out, pre); return;
  }
}

// grad *= activation'(pre), in place (post = activation(pre)).
inline void activation_backward_(at::Tensor& grad, const at::Tensor& pre, const at::Tensor& post, Activation a) {
  switch (a) {
    case Activation::ReLU: at::threshold_backward_out(grad, grad, pre, 0); return;
    case Activation::SiLU: at::silu_backward_out(grad, grad, pre); return;
    case Activation::GELU: at::gelu_backward_out(grad, grad, pre); return;
    case Activation::Tanh: at::tanh_backward_out(grad, grad, post); return;
  }
}

// activation'(pre) elementwise.
inline at::Tensor activation_derivative(const at::Tensor& pre, const at::Tensor& post, Activation a) {
  if (a == Activation::ReLU) return (pre > 0).to(pre.scalar_type());
  at::Tensor d = at::ones_like(pre);
  activation_backward_(d, pre, post, a);
  return d;
}

}  // namespace sbgm
