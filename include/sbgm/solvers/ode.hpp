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
// A batch of independent problems dy_i/dt = f(t_i, y_i), one per row: t [b] (y's dtype and
// device), y [b, ...], rows [b] (int64, y's device) the indices in the original batch of the rows
// passed, so that per-row data (conditions, probes) can follow them.
using RowwiseODEFunction =
    std::function<at::Tensor(const at::Tensor& t, const at::Tensor& y, const at::Tensor& rows)>;

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
  // adaptive, for callers that solve a batch of independent rows (likelihoods, ODE sampling):
  // each row its own steps and error control (odeint_rowwise) instead of one step for all
  bool per_row = false;

  void validate() const;
};

struct SolveStats {
  int64_t accepted = 0, rejected = 0;  // steps (odeint_rowwise: summed over rows)
  int64_t function_evals = 0;          // calls of f
  int64_t row_evals = 0;               // rows passed to f, summed over calls: the work done
};

// y(t1) from y(t0) = y0 (t1 may be below t0). Adaptive solvers control the error in the RMS norm
// of err / (atol + rtol max(|y_n|, |y_{n+1}|)) over all elements, as torchdiffeq, diffrax and
// scipy do. on_step is called after every accepted step with the time and state reached.
at::Tensor odeint(const ODEFunction& f, const at::Tensor& y0, double t0, double t1, const SolverConfig& config,
                  SolveStats* stats = nullptr,
                  const std::function<void(double t, const at::Tensor& y)>& on_step = {});

// The rows of y0 [B, ...] solved as B independent problems: every row has its own step size and
// its own error control (the RMS norm over that row), and leaves the batch when it reaches t1.
// Each row then takes the steps it needs, not the steps the hardest row of the batch needs; the
// work is the sum over rows, and a row's result does not depend on which rows share its batch.
// Batched in one call of f per stage, so the network still sees large batches. With B = 1 it
// takes odeint's steps; fixed-step methods are odeint's.
at::Tensor odeint_rowwise(const RowwiseODEFunction& f, const at::Tensor& y0, double t0, double t1,
                          const SolverConfig& config, SolveStats* stats = nullptr);

}  // namespace sbgm
