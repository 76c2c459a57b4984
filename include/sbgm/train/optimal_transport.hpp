#pragma once
// Minibatch optimal transport for flow matching (Tong et al. 2023; Pooladian et al. 2023): each
// batch's data rows are paired with its noise rows by the permutation of least total squared
// distance, so the straight paths of one batch do not cross and the learnt flow is straighter.
// The pairing is exact (the Hungarian algorithm, O(B^3) on the CPU in float64): at a batch of
// 256 it costs a few milliseconds a step.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace sbgm {

// The assignment of least total cost for a square cost matrix [n, n] (finite): column[i] is the
// column paired with row i, a permutation of 0 .. n-1. Throws InvalidArgument for a matrix that
// is not square or holds NaN or Inf.
std::vector<int64_t> min_cost_assignment(const at::Tensor& cost);

// z's rows reordered so that row i of the result is the noise paired with x0's row i by the least
// total squared distance (x0, z: [B, ...] of one shape).
at::Tensor ot_paired_noise(const at::Tensor& x0, const at::Tensor& z);

}  // namespace sbgm
