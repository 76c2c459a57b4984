#pragma once
// What one call chooses about evaluating a model's score, beside the model itself.

#include "sbgm/util/autocast.hpp"

namespace sbgm {

// How one call evaluates a model's score — the call's choice, not the model's: classifier-free
// guidance (scale w, for a model trained with condition dropout: (1 + w) s(x, t | y) - w s(x, t))
// and the precision of the network's evaluations (bfloat16 autocast; trained networks only).
// Likelihoods always compute in the model's dtype.
struct ScoreOptions {
  double guidance = 0;
  Precision precision = Precision::Float32;
};

}  // namespace sbgm
