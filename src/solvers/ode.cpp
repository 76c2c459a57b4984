#include "sbgm/solvers/ode.hpp"

#include <ATen/ATen.h>

#include <array>
#include <cmath>
#include <vector>

#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

constexpr EnumNames<SolverKind, 6> kSolverNames{{{SolverKind::Euler, "euler"},
                                                 {SolverKind::Heun, "heun"},
                                                 {SolverKind::RK4, "rk4"},
                                                 {SolverKind::Bosh3, "bosh3"},
                                                 {SolverKind::Dopri5, "dopri5"},
                                                 {SolverKind::Tsit5, "tsit5"}}};
constexpr EnumNames<StepControl, 2> kControlNames{{{StepControl::PI, "pi"}, {StepControl::Integral, "integral"}}};

// An explicit Runge-Kutta tableau; err holds b - b_hat of an embedded pair (empty otherwise).
struct Tableau {
  std::vector<double> c;
  std::vector<std::vector<double>> a;
  std::vector<double> b, err;
  int order;  // of the solution that is propagated
};

const Tableau& tableau(SolverKind kind) {
  static const Tableau euler{{0}, {{}}, {1}, {}, 1};
  static const Tableau heun{{0, 1}, {{}, {1}}, {0.5, 0.5}, {}, 2};
  static const Tableau rk4{{0, 0.5, 0.5, 1}, {{}, {0.5}, {0, 0.5}, {0, 0, 1}}, {1. / 6, 1. / 3, 1. / 3, 1. / 6}, {}, 4};
  // Bogacki & Shampine (1989), 3rd-order solution, FSAL: scipy's RK23. Three evaluations a step;
  // on a ReLU network's kinked vector field it reaches a given accuracy in about a third of
  // Dormand-Prince's evaluations (docs/benchmarks.md).
  static const Tableau bosh3{{0, 0.5, 0.75, 1},
                             {{}, {0.5}, {0, 0.75}, {2. / 9, 1. / 3, 4. / 9}},
                             {2. / 9, 1. / 3, 4. / 9, 0},
                             {2. / 9 - 7. / 24, 1. / 3 - 1. / 4, 4. / 9 - 1. / 3, -1. / 8},
                             3};
  // Dormand & Prince (1980), 5th-order solution, FSAL.
  static const Tableau dopri5{
      {0, 1. / 5, 3. / 10, 4. / 5, 8. / 9, 1, 1},
      {{},
       {1. / 5},
       {3. / 40, 9. / 40},
       {44. / 45, -56. / 15, 32. / 9},
       {19372. / 6561, -25360. / 2187, 64448. / 6561, -212. / 729},
       {9017. / 3168, -355. / 33, 46732. / 5247, 49. / 176, -5103. / 18656},
       {35. / 384, 0, 500. / 1113, 125. / 192, -2187. / 6784, 11. / 84}},
      {35. / 384, 0, 500. / 1113, 125. / 192, -2187. / 6784, 11. / 84, 0},
      {35. / 384 - 5179. / 57600, 0, 500. / 1113 - 7571. / 16695, 125. / 192 - 393. / 640,
       -2187. / 6784 + 92097. / 339200, 11. / 84 - 187. / 2100, -1. / 40},
      5};
  // Tsitouras (2011), 5th-order solution, FSAL.
  static const Tableau tsit5{
      {0, 0.161, 0.327, 0.9, 0.9800255409045097, 1, 1},
      {{},
       {0.161},
       {-0.008480655492356989, 0.335480655492357},
       {2.897153057105493, -6.359448489975075, 4.3622954328695815},
       {5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525},
       {5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383},
       {0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774}},
      {0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774, 0},
      {-0.00178001105222577714, -0.0008164344596567469, 0.007880878010261995, -0.1447110071732629,
       0.5823571654525552, -0.45808210592918697, 1.0 / 66},
      5};
  switch (kind) {
    case SolverKind::Euler: return euler;
    case SolverKind::Heun: return heun;
    case SolverKind::RK4: return rk4;
    case SolverKind::Bosh3: return bosh3;
    case SolverKind::Dopri5: return dopri5;
    case SolverKind::Tsit5: return tsit5;
  }
  return euler;
}

// One fixed step of size h from (t, y) with k[0] = f(t, y) given; fills k[1..].
at::Tensor rk_step(const Tableau& tab, const ODEFunction& f, double t, const at::Tensor& y, double h,
                   std::vector<at::Tensor>& k, int64_t& evals) {
  for (size_t i = 1; i < tab.c.size(); ++i) {
    at::Tensor yi = y.clone();
    for (size_t j = 0; j < i; ++j)
      if (tab.a[i][j] != 0) yi.add_(k[j], h * tab.a[i][j]);
    k[i] = f(t + tab.c[i] * h, yi);
    ++evals;
  }
  at::Tensor y1 = y.clone();
  for (size_t i = 0; i < tab.b.size(); ++i)
    if (tab.b[i] != 0) y1.add_(k[i], h * tab.b[i]);
  return y1;
}

// RMS over each row of v [G, n], as float64 on the CPU: [G].
at::Tensor rms_rows(const at::Tensor& v) { return v.to(at::kDouble).pow(2).mean(1).sqrt().cpu(); }

// f on flattened rows: t [g] (float64, CPU; one time per row), y [g, n], rows [g] (int64, y's
// device) the original indices of the rows passed.
using FlatRows = std::function<at::Tensor(const at::Tensor& t, const at::Tensor& y, const at::Tensor& rows)>;

// Hairer, Norsett & Wanner's starting step (II.4; HINIT of DOPRI5, select_initial_step of scipy)
// for each row of y0 [G, n], for a method whose local error is O(h^order): [G], float64, CPU.
// The trial step stays within the interval [t0, t0 + direction * span]: a field that is nearly
// still at t0 (a VE path's velocity at t_eps) would otherwise send it far past the end, where
// the SDE's coefficients overflow.
at::Tensor initial_steps(const FlatRows& f, double t0, double span, const at::Tensor& y0, const at::Tensor& f0,
                         const at::Tensor& rows, double direction, int order, const SolverConfig& c) {
  const at::Tensor scale = y0.abs() * c.rtol + c.atol;
  const at::Tensor d0 = rms_rows(y0 / scale), d1 = rms_rows(f0 / scale);
  const at::Tensor h0 =
      at::where((d0 < 1e-5).logical_or(d1 < 1e-5), at::full_like(d0, 1e-6), 0.01 * d0 / d1).clamp_max(span);
  const at::Tensor dh = (direction * h0).to(y0.options()).unsqueeze(1);
  const at::Tensor f1 = f(t0 + direction * h0, y0 + f0 * dh, rows);
  const at::Tensor d2 = rms_rows((f1 - f0) / scale) / h0;
  const at::Tensor h1 = at::where((d1 <= 1e-15).logical_and(d2 <= 1e-15), (h0 * 1e-3).clamp_min(1e-6),
                                  (0.01 / at::maximum(d1, d2)).pow(1.0 / order));
  return at::minimum(100 * h0, h1);
}

// The step-size controller's constants. PI control (Hairer & Wanner II, IV.2, with the constants
// of Hairer's DOPRI5 code): h <- h * safety * err^-alpha * err_prev^beta, beta = 0.04,
// alpha = 1/order - 0.75 beta. Its steady state sits at err ~ 0.45; Gustafsson's alpha = 0.7/5,
// beta = 0.4/5 sits at err ~ 0.17 and took 2.1x as many steps on a trained model's likelihood
// (docs/benchmarks.md). The integral controller is scipy's RK45 step for step: beta = 0, no
// growth right after a rejection, and the last step simply clipped to t1.
struct Controller {
  Controller(const SolverConfig& c, int order)
      : pi(c.control == StepControl::PI), beta(pi ? 0.04 : 0.0), alpha(1.0 / order - 0.75 * beta), order(order) {}
  bool pi;
  double beta, alpha;
  int order;
  static constexpr double safety = 0.9, fac_min = 0.2, fac_max = 10.0;
};

// The adaptive solve of the rows of y0 [G, n] as G independent problems, each with its own step
// size, error norm and controller state; a row leaves the batch when it reaches t1. odeint is the
// case G = 1 (the whole state one row), odeint_rowwise the case of a row per problem. The
// bookkeeping (t, h, errors, decisions) is per row in float64 on the CPU; the state stays on y0's
// device. on_step (G = 1 only) is called after every accepted step with the time and state.
at::Tensor adaptive_solve(const FlatRows& f, const at::Tensor& y0, double t0, double t1, const SolverConfig& c,
                          SolveStats& s, const std::function<void(double t, const at::Tensor& y)>& on_step) {
  const int64_t batch = y0.size(0);
  const Tableau& tab = tableau(c.kind);
  const Controller ctl(c, tab.order);
  const double direction = t1 > t0 ? 1.0 : -1.0;
  const at::TensorOptions cpu = at::TensorOptions().dtype(at::kDouble);
  at::Tensor rows = at::arange(batch, y0.options().dtype(at::kLong));
  const FlatRows eval = [&](const at::Tensor& t, const at::Tensor& y, const at::Tensor& which) {
    ++s.function_evals;
    s.row_evals += y.size(0);
    return f(t, y, which);
  };
  const auto per_row = [&](const at::Tensor& v) { return v.to(y0.options()).unsqueeze(1); };  // [b] -> [b, 1]
  // sum_j coef[j] k[j] over the nonzero coefficients
  std::vector<at::Tensor> k(tab.c.size());
  const auto combine = [&](const std::vector<double>& coef, size_t n) {
    at::Tensor acc;
    for (size_t j = 0; j < n; ++j)
      if (coef[j] != 0) acc = acc.defined() ? acc.add(k[j], coef[j]) : k[j] * coef[j];
    return acc;
  };

  at::Tensor out = at::empty_like(y0);
  at::Tensor y = y0;
  at::Tensor t = at::full({batch}, t0, cpu);
  k[0] = eval(t, y, rows);
  at::Tensor h = c.first_step > 0 ? at::full({batch}, c.first_step, cpu)
                                  : initial_steps(eval, t0, std::abs(t1 - t0), y, k[0], rows, direction, tab.order, c);
  h.clamp_max_(std::abs(t1 - t0));
  at::Tensor err_prev = at::ones({batch}, cpu), after_rejection = at::zeros({batch}, cpu.dtype(at::kBool));
  at::Tensor attempts = at::zeros({batch}, cpu.dtype(at::kLong));

  while (t.numel() > 0) {
    if (attempts.max().item<int64_t>() >= c.max_steps)
      throw std::runtime_error("ODE solve exceeded max_steps (" + std::to_string(c.max_steps) + ") at t = " +
                               std::to_string(t.masked_select(attempts >= c.max_steps).min().item<double>()) +
                               "; loosen the tolerances or raise the limit");
    // Land exactly on t1 (PI: also avoid a sliver of a last step).
    const at::Tensor remaining = (t1 - t).abs();
    const at::Tensor last = ctl.pi ? h > 0.99 * remaining : h >= remaining;
    h = at::where(last, remaining, h);
    const at::Tensor step = direction * h, step_dev = per_row(step);
    for (size_t i = 1; i < tab.c.size(); ++i) k[i] = eval(t + tab.c[i] * step, y + step_dev * combine(tab.a[i], i), rows);
    const at::Tensor y1 = y + step_dev * combine(tab.b, tab.b.size());
    const at::Tensor scale = at::maximum(y.abs(), y1.abs()) * c.rtol + c.atol;
    const at::Tensor err = rms_rows(step_dev * combine(tab.err, tab.err.size()) / scale);
    if (!err.isfinite().all().item<bool>())
      throw std::runtime_error("ODE solve produced NaN or Inf at t = " +
                               std::to_string(t.masked_select(err.isfinite().logical_not()).min().item<double>()));
    // A step is accepted at err <= 1 under PI control and at err < 1 under integral control, as
    // scipy does; it then grows (never right after a rejection under integral control), otherwise
    // shrinks.
    const at::Tensor accept = ctl.pi ? err <= 1.0 : err < 1.0;
    const int64_t accepted = accept.sum().item<int64_t>();
    s.accepted += accepted;
    s.rejected += t.numel() - accepted;
    attempts += 1;
    at::Tensor grow = at::where(err == 0, at::full_like(err, ctl.fac_max),
                                ctl.safety * err.pow(-ctl.alpha) * err_prev.pow(ctl.beta));
    grow = ctl.pi ? grow.clamp(ctl.fac_min, ctl.fac_max)
                  : at::where(after_rejection, grow.clamp_max(1.0), grow).clamp_max(ctl.fac_max);
    const at::Tensor shrink = (ctl.safety * err.pow(-1.0 / tab.order)).clamp_min(ctl.fac_min);
    h = h * at::where(accept, grow, shrink);
    err_prev = at::where(accept, err.clamp_min(1e-4), err_prev);
    after_rejection = accept.logical_not();
    t = at::where(accept, at::where(last, at::full_like(t, t1), t + step), t);
    const at::Tensor accept_dev = accept.to(y.device()).unsqueeze(1);
    y = at::where(accept_dev, y1, y);
    k[0] = at::where(accept_dev, k.back(), k[0]);  // first same as last
    if (on_step && accepted > 0) on_step(t.item<double>(), y);
    const at::Tensor underflow = h < 1e-14 * t.abs().clamp_min(1.0);
    if (underflow.any().item<bool>())
      throw std::runtime_error("ODE step size underflow at t = " +
                               std::to_string(t.masked_select(underflow).min().item<double>()));

    const at::Tensor done = accept.logical_and(last);
    if (done.any().item<bool>()) {
      const at::Tensor done_dev = done.nonzero().squeeze(1).to(y.device());
      out.index_copy_(0, rows.index_select(0, done_dev), y.index_select(0, done_dev));
      const at::Tensor keep_at = done.logical_not().nonzero().squeeze(1), keep_dev = keep_at.to(y.device());
      rows = rows.index_select(0, keep_dev);
      y = y.index_select(0, keep_dev);
      k[0] = k[0].index_select(0, keep_dev);
      for (at::Tensor* v : {&t, &h, &err_prev, &after_rejection, &attempts}) *v = v->index_select(0, keep_at);
    }
  }
  return out;
}

}  // namespace

std::string to_string(SolverKind kind) { return enum_to_string(kind, kSolverNames); }
SolverKind solver_kind_from_string(const std::string& name) { return enum_from_string(name, kSolverNames, "solver"); }
std::string to_string(StepControl control) { return enum_to_string(control, kControlNames); }
StepControl step_control_from_string(const std::string& name) {
  return enum_from_string(name, kControlNames, "step control");
}
bool is_adaptive(SolverKind kind) {
  return kind == SolverKind::Bosh3 || kind == SolverKind::Dopri5 || kind == SolverKind::Tsit5;
}

void SolverConfig::validate() const {
  if (!(rtol > 0) || !(atol > 0)) throw InvalidArgument("solver tolerances must be positive (got rtol " +
                                                        std::to_string(rtol) + ", atol " + std::to_string(atol) + ")");
  if (steps < 1) throw InvalidArgument("solver steps must be at least 1");
  if (max_steps < 1) throw InvalidArgument("solver max_steps must be at least 1");
  if (first_step < 0) throw InvalidArgument("solver first_step must not be negative");
}

at::Tensor odeint(const ODEFunction& f, const at::Tensor& y0, double t0, double t1, const SolverConfig& c,
                  SolveStats* stats, const std::function<void(double, const at::Tensor&)>& on_step) {
  c.validate();
  SolveStats local;
  SolveStats& s = stats ? *stats : local;
  s = SolveStats{};
  if (t0 == t1) return y0.clone();
  const int64_t rows = y0.dim() > 0 ? y0.size(0) : 1;

  if (is_adaptive(c.kind)) {
    // The whole state is one row of the adaptive core: one step size, one error norm.
    const FlatRows whole = [&](const at::Tensor& t, const at::Tensor& y, const at::Tensor&) {
      return f(t.item<double>(), y.view(y0.sizes())).reshape({1, -1});
    };
    const auto on_whole_step = [&](double t, const at::Tensor& y) { on_step(t, y.view(y0.sizes())); };
    const at::Tensor y = adaptive_solve(whole, y0.reshape({1, -1}), t0, t1, c, s,
                                        on_step ? on_whole_step : std::function<void(double, const at::Tensor&)>{});
    s.row_evals = s.function_evals * rows;
    return y.view(y0.sizes());
  }

  const Tableau& tab = tableau(c.kind);
  std::vector<at::Tensor> k(tab.c.size());
  at::Tensor y = y0.clone();
  const double h = (t1 - t0) / static_cast<double>(c.steps);
  for (int64_t i = 0; i < c.steps; ++i) {
    const double t = t0 + i * h;
    k[0] = f(t, y);
    ++s.function_evals;
    y = rk_step(tab, f, t, y, h, k, s.function_evals);
    ++s.accepted;
    if (on_step) on_step(i + 1 == c.steps ? t1 : t + h, y);
  }
  s.row_evals = s.function_evals * rows;
  return y;
}

at::Tensor odeint_rowwise(const RowwiseODEFunction& f, const at::Tensor& y0, double t0, double t1,
                          const SolverConfig& c, SolveStats* stats) {
  c.validate();
  if (y0.dim() < 1 || y0.size(0) < 1) throw InvalidArgument("odeint_rowwise needs rows: y0 of shape [B, ...], B >= 1");
  SolveStats local;
  SolveStats& s = stats ? *stats : local;
  s = SolveStats{};
  const int64_t batch = y0.size(0);
  if (!is_adaptive(c.kind) || t0 == t1) {
    // Every row takes the same steps anyway.
    const at::Tensor all_rows = at::arange(batch, y0.options().dtype(at::kLong));
    const ODEFunction same_t = [&](double t, const at::Tensor& y) {
      return f(at::full({batch}, t, y.options()), y, all_rows);
    };
    return odeint(same_t, y0, t0, t1, c, &s);
  }
  std::vector<int64_t> shape = y0.sizes().vec();
  const FlatRows flat = [&](const at::Tensor& t, const at::Tensor& y, const at::Tensor& rows) {
    shape[0] = y.size(0);
    return f(t.to(y.options()), y.view(shape), rows).reshape({y.size(0), -1});
  };
  return adaptive_solve(flat, y0.reshape({batch, -1}), t0, t1, c, s, {}).view(y0.sizes());
}

}  // namespace sbgm
