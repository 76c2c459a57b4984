#include "sbgm/sample/probability_flow.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "sbgm/nets/score_model.hpp"
#include "sbgm/sde/sde.hpp"

namespace sbgm {

namespace {
constexpr int64_t kProgressUnits = 1000;
}

ProbabilityFlowSampler::ProbabilityFlowSampler(SolverConfig config) : config_(config) { config_.validate(); }

int64_t ProbabilityFlowSampler::steps() const { return is_adaptive(config_.kind) ? kProgressUnits : config_.steps; }

at::Tensor ProbabilityFlowSampler::run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y,
                                       at::Generator, const std::function<void()>& on_step) {
  const auto shape = x.sizes().vec();
  auto drift = [&](double t, const at::Tensor& state) {
    const at::Tensor tt = at::full({state.size(0)}, t, state.options());
    return sde.probability_flow_drift(state, model.score(state, tt, y), t);
  };
  int64_t reported = 0;
  auto report = [&](double t) {
    if (!on_step) return;
    if (!is_adaptive(config_.kind)) return on_step();
    const auto reached = static_cast<int64_t>(std::floor(kProgressUnits * (sde.T() - t) / (sde.T() - sde.t_eps()) + 1e-9));
    for (; reported < std::min(reached, kProgressUnits); ++reported) on_step();
  };
  return odeint(drift, x, sde.T(), sde.t_eps(), config_, &stats_, report);
}

}  // namespace sbgm
