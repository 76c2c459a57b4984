#pragma once
// Deterministic sampling: integrate the probability-flow ODE dx = [f - g^2 s / 2] dt from T down
// to t_eps with any solver of sbgm::solvers (adaptive ones to a tolerance, others in fixed steps).

#include "sbgm/sample/sampler.hpp"
#include "sbgm/solvers/ode.hpp"

namespace sbgm {

class ProbabilityFlowSampler final : public Sampler {
 public:
  explicit ProbabilityFlowSampler(SolverConfig config);
  at::Tensor run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y, at::Generator gen,
                 const StepFn& on_step) override;
  const SolveStats& last_stats() const { return stats_; }

 private:
  SolverConfig config_;
  SolveStats stats_;
};

}  // namespace sbgm
