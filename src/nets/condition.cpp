#include "sbgm/nets/condition.hpp"

#include <ATen/ATen.h>

#include "sbgm/util/error.hpp"

namespace sbgm {

at::Tensor ConditionInput::present(const at::Tensor& y) const {
  if (dim == 0) return at::Tensor();
  if (!y.defined()) throw InvalidArgument("this model is conditional: it needs a condition y");
  const at::Tensor flat = y.reshape({y.size(0), -1});
  if (flat.size(1) != dim)
    throw InvalidArgument("conditions have " + std::to_string(flat.size(1)) + " features but the model takes " +
                          std::to_string(dim));
  if (!droppable) return flat;
  return at::cat({flat, at::ones({flat.size(0), 1}, flat.options())}, 1);
}

at::Tensor ConditionInput::absent(int64_t batch, const at::TensorOptions& options) const {
  if (!droppable || dim == 0) throw InvalidArgument("only a model trained with condition dropout can go without its condition");
  return at::zeros({batch, net_dim()}, options);
}

at::Tensor ConditionInput::dropped(const at::Tensor& y, const at::Tensor& keep) const {
  if (!droppable) throw InvalidArgument("conditions can be dropped only for a network trained with condition dropout");
  return present(y) * keep.reshape({-1, 1});
}

}  // namespace sbgm
