#pragma once
// What one call chooses about evaluating a model's score, beside the model itself.

#include <cstdint>

#include "sbgm/util/autocast.hpp"

namespace sbgm {

// How one call evaluates a model's score — the call's choice, not the model's: classifier-free
// guidance (scale w, for a model trained with condition dropout: (1 + w) s(x, t | y) - w s(x, t))
// and the precision of the network's evaluations (bfloat16 autocast; trained networks only).
// Likelihoods always compute in the model's dtype. set_orders > 1: for a model whose condition is
// a declared set (data.cond_set) read by a network that sees its elements in order, the score
// averaged over that many orders of the elements (all of them when there are no more;
// score/order_averaged_score.hpp), at that many network evaluations each.
struct ScoreOptions {
  double guidance = 0;
  Precision precision = Precision::Float32;
  int64_t set_orders = 1;
};

}  // namespace sbgm
