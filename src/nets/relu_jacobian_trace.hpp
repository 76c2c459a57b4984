#pragma once
// The exact trace of a ReLU MLP's x-Jacobian, kept up to date from one call to the next instead
// of recomputed (internal to the MLP).
//
// With hidden masks m_0..m_{L-1} (unit on: 1, off: 0), u_k the x-column k of W_0 and v_k row k of
// W_L, the trace is sum_k v_k^T M_{L-1} W_{L-1} ... M_1 W_1 M_0 u_k. Its two ends,
//   g_k = W_1 (m_0 * u_k)            (depends on the first mask only) and
//   r_k = W_{L-1}^T (m_{L-1} * v_k)  (on the last mask only; L >= 3),
// change by a column of W_1 (a row of W_{L-1}) times a scalar when one unit of that layer
// switches. Along an ODE solve a point switches about one unit between two evaluations, so
// keeping g and r for every row and updating them costs O(D * width) per switch where forward
// tangents cost D * (L - 1) products of [B, width] x [width, width]. With three hidden layers the
// trace is then sum_k r_k . (m_1 * g_k) and an exact divergence costs little more than the
// forward pass (two hidden products instead of six). Deeper networks keep L - 3 products per k.
//
// The kept state is tied to the batch size and to copies of the weights it was built from (not
// their version counters, which raw-pointer updates such as the fused optimiser's bypass), so a
// call with anything else starts afresh: any sequence of calls gives the exact trace, and only
// the cost depends on how far the masks moved since the last call. It is in the network's dtype
// and computed afresh every kRefreshCalls calls, which bounds the rounding that updates add up; forget()
// makes the next call start afresh (before each likelihood solve, so that its value does not depend
// on the solves before it).

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace sbgm {

class ReluJacobianTrace {
 public:
  // Whether it applies to these layer widths (every Linear's output features, last = D) and the
  // input x [B, ...]: at least two hidden layers, CPU, and state for B rows in x's dtype within a
  // memory bound.
  static bool applies(const std::vector<int64_t>& widths, const at::Tensor& x);

  // weights: every Linear weight, first to last ([out, in]); the first dim inputs of weights[0]
  // are x. pre: the hidden layers' pre-activations of this call, [B, width_i]. Returns [B].
  at::Tensor operator()(const std::vector<at::Tensor>& weights, int64_t dim, const std::vector<at::Tensor>& pre);

  // The next call starts afresh, so that its result does not carry the rounding of the updates
  // before it (a likelihood's solve gives the same value whatever was solved before it).
  void forget() { batch_ = -1; }

 private:
  bool built_for(const std::vector<at::Tensor>& weights, int64_t batch) const;
  void restart(const std::vector<at::Tensor>& weights, int64_t dim, const std::vector<at::Tensor>& pre);

  int64_t batch_ = -1;
  int64_t calls_since_restart_ = 0;
  // Copies of W_0, W_1, W_{L-1}, W_L as the state was built from, and in the kernel's layouts:
  // u [width_0, D] (x-columns of W_0), w1t [width_0, width_1] (row j: column j of W_1),
  // vt [width_{L-1}, D] (W_L transposed); W_{L-1} itself has row j contiguous.
  std::vector<at::Tensor> weights_;
  at::Tensor u_, w1t_, vt_;
  at::Tensor first_mask_, last_mask_;  // bool [B, width_0], [B, width_{L-1}]: the masks g, r are for
  at::Tensor g_, r_;                   // [B, D, width_1], [B, D, width_{L-2}] (r: L >= 3)
};

}  // namespace sbgm
