#pragma once
// Adam / AdamW on one flat parameter buffer: one fused pass over params, grads and both moments
// per step (libtorch's stock Adam makes several passes per parameter tensor).

#include <ATen/core/Tensor.h>

namespace sbgm {

struct AdamConfig {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled (AdamW) when > 0
};

class FusedAdam {
 public:
  FusedAdam(const at::Tensor& params, AdamConfig config);

  // One update of params from grads at learning rate lr; step counts from 1.
  void step(at::Tensor& params, const at::Tensor& grads, double lr);

  // A step that makes no update (its gradient was not finite) still counts, so that the count
  // stays the trainer's step and a resumed run continues exactly as an uninterrupted one.
  void skip() { ++step_; }
  int64_t step_count() const { return step_; }
  const at::Tensor& exp_avg() const { return m_; }
  const at::Tensor& exp_avg_sq() const { return v_; }
  // Restores the state saved in a checkpoint.
  void restore(const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq, int64_t step);

 private:
  AdamConfig config_;
  at::Tensor m_, v_;
  int64_t step_ = 0;
};

}  // namespace sbgm
