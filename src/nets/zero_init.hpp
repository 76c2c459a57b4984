#pragma once
// Zero-initialises a layer's weight and bias (internal to the networks): residual branches whose
// last layer starts at zero make a block start as the identity.

#include <ATen/ATen.h>

namespace sbgm {

template <class Layer>
void zero_init(Layer& layer) {
  at::NoGradGuard no_grad;
  layer->weight.zero_();
  layer->bias.zero_();
}

}  // namespace sbgm
