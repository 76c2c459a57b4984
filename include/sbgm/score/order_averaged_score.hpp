#pragma once
// A score averaged over orders of its condition's elements. A network that reads a set's elements
// (data.cond_set) as one vector learns to ignore their order only as well as its training shows
// it every order; averaged over all orders of the elements its score is exactly blind to them,
// and over some of them each order's own error partly cancels. The average of the scores is the
// score of the normalised geometric mean of the orders' densities, so samplers and the
// probability-flow likelihood serve it as they serve one network.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "sbgm/score/score_model.hpp"

namespace sbgm {

// `count` distinct orders of `elements` elements, each a permutation of 0..elements-1: the
// identity first, then further orders drawn from a fixed seed, so that a request asked again
// averages the same ones; all elements! of them when count reaches that. InvalidArgument for
// elements < 1 or count < 1.
std::vector<std::vector<int64_t>> element_orders(int64_t elements, int64_t count);

class OrderAveragedScore final : public ScoreModel {
 public:
  // inner: the score of conditions [B, C] made of `elements` elements of C / elements features
  // each, one after another; orders: permutations of the elements (element_orders).
  OrderAveragedScore(std::unique_ptr<ScoreModel> inner, int64_t elements, std::vector<std::vector<int64_t>> orders);
  void forget_kept_state() override { inner_->forget_kept_state(); }
  at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  WithDivergence score_and_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  at::Tensor velocity(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y, const SDE& sde) override;
  VelocityWithDivergence velocity_and_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                                 const SDE& sde) override;
  int64_t orders() const { return static_cast<int64_t>(orders_.size()); }

 private:
  // y with its elements in the k-th order.
  at::Tensor reordered(const at::Tensor& y, int64_t k) const;
  // The mean over the orders of fn(y in that order); fn returns one tensor.
  template <typename Fn>
  at::Tensor mean_over_orders(const at::Tensor& y, Fn fn) const;

  std::unique_ptr<ScoreModel> inner_;
  int64_t elements_;
  std::vector<std::vector<int64_t>> orders_;
  std::vector<at::Tensor> indices_;  // each order as an index tensor, made once (every step uses them)
};

}  // namespace sbgm
