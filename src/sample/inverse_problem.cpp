#include "sbgm/sample/inverse_problem.hpp"

#include <ATen/ATen.h>

#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<InverseMethod, 3> kMethodNames{
    {{InverseMethod::Moments, "moments"}, {InverseMethod::Replace, "replace"}, {InverseMethod::NoiseLevel, "noise-level"}}};
}

std::string to_string(InverseMethod m) { return enum_to_string(m, kMethodNames); }
InverseMethod inverse_method_from_string(const std::string& s) { return enum_from_string(s, kMethodNames, "inverse-problem method"); }

at::Tensor sample_by_replacement(ScoreModel& prior, const SDE& sde, const Observation& observation, at::Tensor x,
                                 const at::Tensor& y, int64_t steps, at::Generator gen, const StepFn& on_step) {
  if (steps < 1) throw InvalidArgument("sampler steps must be at least 1");
  at::NoGradGuard no_grad;
  const at::Tensor t_buffer = at::empty({x.size(0)}, x.options());
  const at::Tensor mask = observation.mask.to(x.options());
  const at::Tensor values = observation.values.to(x.options());
  at::Tensor noise = at::empty_like(x), known = at::empty_like(x);
  for_each_reverse_step(sde, steps, [&](double t, double s, bool last) {
    reverse_euler_maruyama_step(prior, sde, x, y, t_buffer, t, t - s, noise, !last, gen);
    // The observed features: the observation diffused to time s (itself after the last step).
    known.copy_(values);
    if (!last) known.mul_(sde.mean_coeff(s)).add_(noise.normal_(0.0, 1.0, gen), sde.marginal_std(s));
    x.mul_(1 - mask).add_(known * mask);
    if (on_step) on_step(s, x);
  });
  return x;
}

}  // namespace sbgm
