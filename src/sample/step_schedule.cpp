#include "sbgm/sample/step_schedule.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "sbgm/sde/sde.hpp"
#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<StepSchedule, 5> kScheduleNames{{{StepSchedule::Auto, "auto"},
                                                     {StepSchedule::LogSNR, "logsnr"},
                                                     {StepSchedule::Time, "time"},
                                                     {StepSchedule::Karras, "karras"},
                                                     {StepSchedule::Adaptive, "adaptive"}}};
}  // namespace

std::string to_string(StepSchedule schedule) { return enum_to_string(schedule, kScheduleNames); }
StepSchedule step_schedule_from_string(const std::string& name) {
  return enum_from_string(name, kScheduleNames, "step schedule");
}

StepSchedule resolve_schedule(StepSchedule schedule, const SDE& sde) {
  if (schedule != StepSchedule::Auto) return schedule;
  return sde.kind() == SDEKind::Linear ? StepSchedule::Time : StepSchedule::LogSNR;
}

void check_step_schedule(const SDE& sde, StepSchedule schedule, int64_t steps, double rho) {
  if (steps < 1) throw InvalidArgument("sampler steps must be at least 1");
  if (!(rho > 0) || !std::isfinite(rho)) throw InvalidArgument("{rho} (karras schedule) must be positive");
  schedule = resolve_schedule(schedule, sde);
  if (schedule != StepSchedule::Time && !std::isfinite(sde.noise_to_signal(sde.T())))
    throw InvalidArgument("the " + to_string(schedule) + " schedule spaces noise levels, which are infinite at t = T on the " +
                          to_string(sde.kind()) + " path: use the time schedule");
}

std::vector<double> step_times(const SDE& sde, StepSchedule schedule, int64_t steps, double rho) {
  check_step_schedule(sde, schedule, steps, rho);
  schedule = resolve_schedule(schedule, sde);
  if (schedule == StepSchedule::Adaptive)
    throw InvalidArgument("the adaptive schedule is found from the model: use adaptive_step_times");
  const double top = sde.noise_to_signal(sde.T()), bottom = sde.noise_to_signal(sde.t_eps());
  std::vector<double> times(steps + 1);
  const at::Tensor grid = at::linspace(0.0, 1.0, steps + 1, at::TensorOptions().dtype(at::kDouble));
  const at::Tensor log_snr = schedule == StepSchedule::LogSNR ? log_snr_times(sde, grid).t : at::Tensor();
  for (int64_t i = 0; i <= steps; ++i) {
    const double u = double(i) / double(steps);  // 0 at T, 1 at t_eps
    switch (schedule) {
      case StepSchedule::Time:
        times[i] = sde.T() + u * (sde.t_eps() - sde.T());
        break;
      case StepSchedule::LogSNR:
        times[i] = log_snr.data_ptr<double>()[i];
        break;
      case StepSchedule::Karras: {
        const double hi = std::pow(top, 1 / rho), lo = std::pow(bottom, 1 / rho);
        times[i] = sde.time_of_noise_to_signal(std::pow(hi + u * (lo - hi), rho));
        break;
      }
      case StepSchedule::Auto:
      case StepSchedule::Adaptive:
        break;
    }
  }
  times.front() = sde.T();  // the ends exactly, whatever the inversion's rounding
  times.back() = sde.t_eps();
  return times;
}

}  // namespace sbgm
