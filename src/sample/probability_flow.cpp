#include "sbgm/sample/probability_flow.hpp"

#include <ATen/ATen.h>


#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"

namespace sbgm {

ProbabilityFlowSampler::ProbabilityFlowSampler(SolverConfig config) : config_(config) { config_.validate(); }

at::Tensor ProbabilityFlowSampler::run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y,
                                       at::Generator, const StepFn& on_step) {
  // Trajectories are recorded at the steps of one solve, so they need steps common to all rows.
  if (config_.per_row && !on_step) {
    auto drift = [&](const at::Tensor& t, const at::Tensor& state, const at::Tensor& rows) {
      const at::Tensor yr = y.defined() && y.size(0) == x.size(0) ? y.index_select(0, rows) : y;  // else shared
      return model.velocity(state, t, yr, sde);
    };
    return odeint_rowwise(drift, x, sde.T(), sde.t_eps(), config_, &stats_);
  }
  auto drift = [&](double t, const at::Tensor& state) {
    const at::Tensor tt = at::full({state.size(0)}, t, state.options());
    return model.velocity(state, tt, y, sde);
  };
  return odeint(drift, x, sde.T(), sde.t_eps(), config_, &stats_, on_step);
}

}  // namespace sbgm
