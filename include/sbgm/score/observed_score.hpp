#pragma once
// The score of p_t(x_t | y) for a linear observation y of some features, around a prior score
// model: Tweedie moment projection (Boys et al. 2023; the method "moments" of
// sample/inverse_problem.hpp, which explains it and its alternatives).

#include <ATen/core/Tensor.h>

#include <memory>

#include "sbgm/score/score_model.hpp"

namespace sbgm {

// One observation per row, in the model's space.
struct Observation {
  at::Tensor values;     // [B, ...]: y where mask is 1 (ignored elsewhere)
  at::Tensor mask;       // [B, ...] of 0/1, 1 where observed
  at::Tensor noise_std;  // sigma_y, a scalar tensor or one value per feature ([...]); 0: exact
};

// The score of p_t(x_t | y) by Tweedie moment projection, around a prior score model (whose own
// condition, if any, is passed through as y).
class ObservedScore final : public ScoreModel {
 public:
  ObservedScore(ScoreModel& prior, std::shared_ptr<const SDE> sde, Observation observation);
  at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;

 private:
  ScoreModel& prior_;
  std::shared_ptr<const SDE> sde_;
  Observation obs_;
};

}  // namespace sbgm
