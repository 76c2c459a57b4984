#pragma once
// How a condition y reaches a network. A network trained with condition dropout (for
// classifier-free guidance) sees [y, 1] for a present condition and [0, 0] for an absent one, so
// one network learns both s(x, t | y) and s(x, t); any other conditional network sees y as is.
// The flag keeps "no condition" apart from any real y (a zero vector is a real, standardised y).

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sbgm {

struct ConditionInput {
  int64_t dim = 0;         // features of one condition, flattened (0: unconditional)
  bool droppable = false;  // trained with condition dropout

  // Features the network takes per row.
  int64_t net_dim() const { return dim + (dim > 0 && droppable ? 1 : 0); }
  // [B, ...] conditions -> what the network sees for them.
  at::Tensor present(const at::Tensor& y) const;
  // What the network sees for "no condition" (droppable only): [batch, net_dim()].
  at::Tensor absent(int64_t batch, const at::TensorOptions& options) const;
  // Rows of y kept where keep (a [B] tensor of 0/1 in y's dtype) is 1, dropped where it is 0.
  at::Tensor dropped(const at::Tensor& y, const at::Tensor& keep) const;
};

}  // namespace sbgm
