#pragma once
// The times a few-step sampler visits between T and t_eps. How they are spaced matters as much
// as the solver's order when there are only 10-20 of them (Lu et al. 2022, Karras et al. 2022):
// - logsnr: uniform in the half log-SNR lambda(t) = log(m(t) / sigma(t)), the variable in which
//   the exponential integrators are written (DPM-Solver's choice for unconditional models);
// - time: uniform in t (the flow-matching path's natural grid; DPM-Solver's for guided images);
// - karras: EDM's noise levels sigma / m spaced uniformly in (sigma / m)^(1/rho);
// - adaptive: found from the model by the multistep samplers (multistep.hpp,
//   adaptive_step_times): steps placed where the solver's local error is, in lambda.
// The linear path's lambda is -inf at t = T (m(T) = 0), so only the time schedule starts there.

#include <cstdint>
#include <string>
#include <vector>

namespace sbgm {

class SDE;

enum class StepSchedule { Auto, LogSNR, Time, Karras, Adaptive };
std::string to_string(StepSchedule schedule);  // auto, logsnr, time, karras, adaptive
StepSchedule step_schedule_from_string(const std::string& name);

// What auto means for this SDE: logsnr for the diffusions, time for the linear path.
StepSchedule resolve_schedule(StepSchedule schedule, const SDE& sde);

// InvalidArgument for steps < 1, rho <= 0, or a schedule the SDE cannot start (logsnr, karras
// or adaptive on the linear path): what a request checks before a model runs.
void check_step_schedule(const SDE& sde, StepSchedule schedule, int64_t steps, double rho = 7.0);

// steps + 1 decreasing times from T to t_eps (exactly those two at the ends). rho: the karras
// schedule's curvature. Throws as check_step_schedule, and for adaptive, which needs the model.
std::vector<double> step_times(const SDE& sde, StepSchedule schedule, int64_t steps, double rho = 7.0);

}  // namespace sbgm
