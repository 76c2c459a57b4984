#pragma once
// K networks of one architecture that learn the same score side by side, their outputs averaged
// (model.ensemble). In training each member takes its own K-th of the batch, so the members see
// different samples and noise, as K runs of batch B/K would, at the cost of one run of batch B;
// the loss over the batch is then the mean of the members' losses. In evaluation the output is
// the members' mean: the part of the error that differs from one trained network to the next —
// a 10-dimensional posterior's mean pushed one way by one seed and another way by the next
// (docs/sbi.md) — averages out, where a mixture of the members' samples would only widen.

#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

#include "sbgm/nets/score_net.hpp"

namespace sbgm {

class EnsembleNet final : public ScoreNet {
 public:
  explicit EnsembleNet(std::vector<std::shared_ptr<ScoreNet>> members);
  int64_t size() const { return static_cast<int64_t>(members_.size()); }

  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  // The mean of the members' divergences (evaluation only).
  bool supports_divergence() const override;
  at::Tensor forward_with_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                     at::Tensor& divergence) override;
  bool prefers_own_divergence(const at::Tensor& x) const override;
  // Training only: each member's part of the batch through its own manual path.
  bool supports_manual_backward() const override;
  at::Tensor forward_for_backward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  void backward_into_grads(const at::Tensor& grad_output) override;
  // Every member's output layer.
  void zero_output(int64_t dim) override;
  // Every member draws its masks from gen for its own share of the rows.
  void draw_dropout_from(const at::Generator& gen, int64_t first_row, int64_t total_rows) override;

 private:
  // Each member on its own part of the batch (by its manual path or through autograd), the parts
  // concatenated in the batch's order.
  at::Tensor on_parts(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y, bool manual);

  std::vector<std::shared_ptr<ScoreNet>> members_;
  std::vector<int64_t> parts_;  // the rows each member took in the last on_parts
};

}  // namespace sbgm
