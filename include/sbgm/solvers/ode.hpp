#pragma once
// Integrators for dy/dt = f(t, y) on tensors (y of any shape, usually a batch): fixed-step
// Euler, Heun and RK4, and the adaptive embedded pairs Bogacki-Shampine 3(2), Dormand-Prince 5(4)
// and Tsitouras 5(4)
// with a PI step-size controller (or scipy's integral controller, for step-for-step comparison
// with solve_ivp). Nothing here knows about diffusion.

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>

namespace sbgm {

using ODEFunction = std::function<at::Tensor(double t, const at::Tensor& y)>;

enum class SolverKind { Euler, Heun, RK4, Bosh3, Dopri5, Tsit5 };
std::string to_string(SolverKind kind);
SolverKind solver_kind_from_string(const std::string& name);
bool is_adaptive(SolverKind kind);

// How an adaptive solver chooses its next step from the error estimate err (a step is accepted
// when err <= 1 under PI control and err < 1 under integral control, as scipy does).
enum class StepControl {
  PI,        // h *= 0.9 err^-alpha err_prev^beta, Hairer's DOPRI5 constants: smooth step sequences
  Integral,  // h *= 0.9 err^(-1/order), never growing right after a rejection: scipy's solve_ivp
             // (and so score_sde) exactly, for step-for-step comparison with it
};
std::string to_string(StepControl control);
StepControl step_control_from_string(const std::string& name);

struct SolverConfig {
  SolverKind kind = SolverKind::Dopri5;
  double rtol = 1e-5;          // adaptive: relative tolerance
  double atol = 1e-5;          // adaptive: absolute tolerance
  int64_t steps = 100;         // fixed-step methods: number of uniform steps
  int64_t max_steps = 100000;  // adaptive: attempted steps before giving up with an error
  double first_step = 0;       // adaptive: initial |h| (0: chosen from the problem)
  StepControl control = StepControl::PI;

  void validate() const;
};

struct SolveStats {
  int64_t accepted = 0, rejected = 0, function_evals = 0;
};

// y(t1) from y(t0) = y0 (t1 may be below t0). Adaptive solvers control the error in the RMS norm
// of err / (atol + rtol max(|y_n|, |y_{n+1}|)) over all elements, as torchdiffeq, diffrax and
// scipy do. on_step is called after every accepted step with the time and state reached.
at::Tensor odeint(const ODEFunction& f, const at::Tensor& y0, double t0, double t1, const SolverConfig& config,
                  SolveStats* stats = nullptr,
                  const std::function<void(double t, const at::Tensor& y)>& on_step = {});

}  // namespace sbgm
