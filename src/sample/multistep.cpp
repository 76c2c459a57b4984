#include "sbgm/sample/multistep.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

// Below this many steps the last steps fall back to lower orders (DPM-Solver++'s threshold); the
// very last is first order at any count.
constexpr int64_t kLowerOrderFinalBelow = 15;

int64_t highest_order(const MultistepConfig& c) {
  switch (c.method) {
    case MultistepMethod::DDIM: return 1;
    case MultistepMethod::DPMSolverPP2M: return 2;
    case MultistepMethod::DPMSolverPP3M: return 3;
    case MultistepMethod::UniPC: return c.order;
  }
  return 1;
}

double half_log_snr(const SDE& sde, double t) { return -std::log(sde.noise_to_signal(t)); }

// The lambda of the step that starts at s: 1 (the ODE) inside config's ODE range, config's outside.
double step_lambda(const MultistepConfig& c, const SDE& sde, double s) {
  const double ratio = sde.noise_to_signal(s);
  return c.ode_range && ratio >= c.ode_range->first && ratio <= c.ode_range->second ? 1.0 : c.lambda;
}

// A visited point: its lambda and the model's denoised estimate there.
struct Estimate {
  double lambda;
  at::Tensor x0;
};

// One step from s to t of the exponential integrator whose x0_hat is a polynomial in lambda:
// x_t = ratio x_s + m_t [(1 - e^(-kappa h)) c0 + sum_k w_k c_k]. Held as the pieces that every
// method shares. On the probability flow kappa = 1 and ratio = sigma_t / sigma_s.
struct Step {
  double h, ratio, m_t;  // lambda_t - lambda_s, the weight of x_s, m(t)
  double kappa = 1;      // the plug-in reverse SDE's 2 - lambda
  double phi1() const { return -std::expm1(-kappa * h); }  // the weight of a constant x0_hat
};

// The step of the plug-in reverse SDE of this lambda (header) that the probability flow's step
// st becomes: its drift integral m_t kappa int e^(-kappa (lambda_t - l)) x0_hat(l) dl is the
// flow's with h scaled by kappa (substitute v = kappa l), so every method's weights carry over
// with kappa h in place of h and the nodes where they were; x_s decays by e^(-(1 - lambda) h)
// more, and the step adds noise (add_plug_in_noise).
Step plug_in_step(Step st, double lambda) {
  st.ratio *= std::exp(-(1 - lambda) * st.h);
  st.kappa = 2 - lambda;
  return st;
}

// The plug-in reverse SDE's noise over a step of h in lambda ending at sigma_t, times z.
void add_plug_in_noise(at::Tensor& x, const at::Tensor& z, double sigma_t, double lambda, double h) {
  const double spread = sigma_t * std::sqrt(-std::expm1(-2 * (1 - lambda) * h));
  if (z.defined() && spread > 0) x.add_(z, spread);
}

// UniPC's weights rho for the differences D_k = (x0_k - x0_0) / r_k at the nodes r_k = (lambda_k -
// lambda_0) / h (Zhao et al. 2023, B(h) = e^-h - 1, "bh2"): the solution of R rho = b with
// R_ik = r_k^(i-1) and b_i = i! psi_{i+1}(-h) / B(h), psi being the exponential integrator's
// phi-functions times h. p = nodes.size().
std::vector<double> unipc_weights(const std::vector<double>& nodes, double h) {
  const int64_t p = static_cast<int64_t>(nodes.size());
  const double hh = -h, b_h = std::expm1(hh);
  std::vector<double> b(p);
  double psi = std::expm1(hh) / hh - 1, factorial = 1;
  for (int64_t i = 0; i < p; ++i) {
    b[i] = psi * factorial / b_h;
    factorial *= double(i + 2);
    psi = psi / hh - 1 / factorial;
  }
  at::Tensor r = at::empty({p, p}, at::kDouble), rhs = at::tensor(b, at::kDouble);
  for (int64_t i = 0; i < p; ++i)
    for (int64_t k = 0; k < p; ++k) r[i][k] = std::pow(nodes[k], double(i));
  const at::Tensor rho = at::linalg_solve(r, rhs).contiguous();
  return std::vector<double>(rho.data_ptr<double>(), rho.data_ptr<double>() + p);
}

// sum_k rho_k (x0_k - x0_0) / r_k over the history's older estimates (history[0] is x0_0), plus
// rho_last (new - x0_0) when the corrector brings the estimate at the step's end.
at::Tensor unipc_sum(const std::vector<Estimate>& history, int64_t order, const Step& st, const at::Tensor& at_end) {
  const bool corrector = at_end.defined();
  std::vector<double> nodes;
  for (int64_t k = 1; k < order; ++k) nodes.push_back((history[k].lambda - history[0].lambda) / st.h);
  if (corrector) nodes.push_back(1.0);
  if (nodes.empty()) return at::Tensor();
  // The simplified weights of UniPC for the lowest orders: UniP-2 is then DPM-Solver++ 2M and
  // UniC-1 the trapezoidal rule.
  const std::vector<double> rho = nodes.size() == 1 ? std::vector<double>{0.5} : unipc_weights(nodes, st.kappa * st.h);
  at::Tensor sum = at::zeros_like(history[0].x0);
  for (int64_t k = 1; k < order; ++k) sum.add_(history[k].x0 - history[0].x0, rho[k - 1] / nodes[k - 1]);
  if (corrector) sum.add_(at_end - history[0].x0, rho.back());
  return sum;
}

// UniPC's step from s (history[0]) to t: the predictor (at_end undefined) or the corrector.
at::Tensor unipc_step(const at::Tensor& x_s, const std::vector<Estimate>& history, int64_t order, const Step& st,
                      const at::Tensor& at_end) {
  at::Tensor x = x_s * st.ratio + history[0].x0 * (st.m_t * st.phi1());
  const at::Tensor sum = unipc_sum(history, order, st, at_end);
  // - m_t B(kappa h) sum with B(kappa h) = e^(-kappa h) - 1 = -phi1.
  if (sum.defined()) x.add_(sum, st.m_t * st.phi1());
  return x;
}

// DPM-Solver++'s multistep step of the given order from s (history[0]) to t (order 3 on the
// probability flow only).
at::Tensor dpmpp_step(const at::Tensor& x_s, const std::vector<Estimate>& history, int64_t order, const Step& st) {
  const at::Tensor& e0 = history[0].x0;
  at::Tensor x = x_s * st.ratio + e0 * (st.m_t * st.phi1());
  if (order == 2) {
    // x0_hat linear through the last two estimates, its slope weighted as in DPM-Solver++ 2M.
    const double r = (history[0].lambda - history[1].lambda) / st.h;
    x.add_(e0 - history[1].x0, st.m_t * st.phi1() / (2 * r));
  } else if (order == 3) {
    // x0_hat quadratic through the last three (Newton form p(tau) = e0 + a1 tau + a2 tau (tau +
    // h0), tau = lambda - lambda_s) integrated exactly against e^lambda: the slope term
    // h phi2 (a1 + a2 h0) and the curvature term -2 h^2 phi3 a2, with phi2 = 1 - phi1 / h and
    // phi3 = phi2 / h - 1/2. (The reference code weights the curvature by -h^2 phi3 a2, half of
    // this, which makes the method second order; tests/test_multistep.cpp measures the order.)
    const double h0 = history[0].lambda - history[1].lambda, h1 = history[1].lambda - history[2].lambda;
    const at::Tensor a1 = (e0 - history[1].x0) / h0;
    const at::Tensor a2 = (a1 - (history[1].x0 - history[2].x0) / h1) / (h0 + h1);
    const double phi2 = 1 - st.phi1() / st.h, phi3 = phi2 / st.h - 0.5;
    x.add_(a1 + a2 * h0, st.m_t * st.h * phi2).add_(a2, -2 * st.m_t * st.h * st.h * phi3);
  }
  return x;
}

// A step of the plug-in reverse SDE of this lambda (header), of order 1 or 2 in x0_hat (2: the
// slope through the last two estimates, weighted as DPM-Solver++ 2M weights it, to which it
// reduces at lambda = 1). noise: whether to draw the step's noise (not on the last step).
at::Tensor plug_in_sde_step(const at::Tensor& x_s, const std::vector<Estimate>& history, int64_t order, const Step& st,
                            double sigma_t, double lambda, bool noise, at::Generator gen) {
  at::Tensor x = dpmpp_step(x_s, history, order, plug_in_step(st, lambda));
  if (noise) add_plug_in_noise(x, at::normal(0.0, 1.0, x.sizes(), gen, x.options()), sigma_t, lambda, st.h);
  return x;
}

// UniPC on the plug-in reverse SDE of this lambda < 1 (the stochastic predictor-corrector of
// SA-Solver, Xue et al. 2023, with UniPC's weights): the predictor (at_end undefined) and the
// corrector add the same draw z (undefined on the last step), so the corrector redoes the
// predictor's step, noise and all, with one more node.
at::Tensor plug_in_unipc_step(const at::Tensor& x_s, const std::vector<Estimate>& history, int64_t order, const Step& st,
                              double sigma_t, double lambda, const at::Tensor& z, const at::Tensor& at_end) {
  at::Tensor x = unipc_step(x_s, history, order, plug_in_step(st, lambda), at_end);
  add_plug_in_noise(x, z, sigma_t, lambda, st.h);
  return x;
}

}  // namespace

void MultistepConfig::validate() const {
  if (steps < 1) throw InvalidArgument("sampler steps must be at least 1");
  if (!(rho > 0) || !std::isfinite(rho)) throw InvalidArgument("{rho} (karras schedule) must be positive");
  if (!(eta >= 0 && eta <= 1)) throw InvalidArgument("{eta} (ddim) must lie in [0, 1]");
  if (eta > 0 && method != MultistepMethod::DDIM) throw InvalidArgument("{eta} applies to the ddim sampler only");
  if (order < 1 || order > 3) throw InvalidArgument("{order} (unipc) must be 1, 2 or 3");
  if (!(lambda >= 0 && lambda <= 1)) throw InvalidArgument("{lambda} must lie in [0, 1]");
  if (lambda < 1 && method == MultistepMethod::DPMSolverPP3M)
    throw InvalidArgument("{lambda} below 1 applies to the em, ddim, dpmpp2m and unipc samplers only");
  if (lambda < 1 && eta > 0) throw InvalidArgument("give ddim either {eta} or {lambda}, not both");
  if (ode_range && !(ode_range->first >= 0 && ode_range->second > ode_range->first))
    throw InvalidArgument("{ode_range}: the low noise level must not be negative and the high one must lie above it");
  if (ode_range && lambda == 1) throw InvalidArgument("{ode_range} applies with {lambda} below 1");
  if (!times.empty()) {
    if (static_cast<int64_t>(times.size()) != steps + 1)
      throw InvalidArgument("{times}: " + std::to_string(times.size()) + " given for " + std::to_string(steps) +
                            " steps, which need " + std::to_string(steps + 1));
    for (size_t i = 0; i < times.size(); ++i)
      if (!std::isfinite(times[i]) || (i > 0 && !(times[i] < times[i - 1])))
        throw InvalidArgument("{times} must be finite and decreasing");
  }
  adaptive.validate();
  restart.validate();
  if (restart.times > 0 && (lambda < 1 || eta > 0))
    throw InvalidArgument("{restarts} apply to the deterministic solvers (no {lambda} below 1, no {eta}): their noise is the restarts'");
}

void Restart::validate() const {
  if (times < 0) throw InvalidArgument("{restarts} must not be negative");
  if (steps < 1) throw InvalidArgument("{restart_steps} must be at least 1");
  if (!(low > 0) || !std::isfinite(low)) throw InvalidArgument("{restart_range}: the low noise level must be positive");
  if (!(high > low) || !std::isfinite(high))
    throw InvalidArgument("{restart_range}: the high noise level must be finite and above the low one");
}

void AdaptiveSchedule::validate() const {
  if (pilot_rows < 1) throw InvalidArgument("the adaptive schedule's pilot needs at least 1 row");
  if (pilot_steps < 4) throw InvalidArgument("the adaptive schedule's pilot needs at least 4 steps");
  if (!(floor > 0 && floor <= 1)) throw InvalidArgument("the adaptive schedule's floor must lie in (0, 1]");
}

MultistepSampler::MultistepSampler(MultistepConfig config) : config_(config) { config_.validate(); }

at::Tensor denoised_estimate(ScoreModel& model, const SDE& sde, const at::Tensor& x, const at::Tensor& y,
                             const at::Tensor& t_buffer, double t) {
  t_buffer.fill_(t);
  const double m = sde.mean_coeff(t), sigma = sde.marginal_std(t);
  if (sde.has_reverse_sde()) return model.score(x, t_buffer, y).mul_(sigma * sigma).add_(x).div_(m);
  // x = m x0 + sigma z moves with v = m' x0 + sigma' z: eliminate z.
  const double dm = sde.mean_coeff_rate(t), ds = sde.marginal_std_rate(t);
  return model.velocity(x, t_buffer, y, sde).sub_(x, ds / sigma).div_(dm - ds * m / sigma);
}

namespace {

// Called with each denoised estimate the solver makes, and the lambda it was made at.
using EstimateFn = std::function<void(double lambda, const at::Tensor& x0)>;

// The multistep solve of config's method over the given times (T first).
at::Tensor integrate(const MultistepConfig& config, ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y,
                     const std::vector<double>& times, at::Generator gen, const StepFn& on_step,
                     const EstimateFn& on_estimate) {
  const at::Tensor t_buffer = at::empty({x.size(0)}, x.options());
  const int64_t steps = static_cast<int64_t>(times.size()) - 1, top = highest_order(config);
  std::vector<Estimate> history;  // newest first, at most `top`
  at::Tensor x_prev;              // unipc: the state the last predictor started from
  at::Tensor z_prev;              // unipc with lambda < 1: the noise the last predictor drew
  int64_t last_order = 0;
  double last_lambda = 1;
  for (int64_t i = 0; i < steps; ++i) {
    const double s = times[i], t = times[i + 1], lambda = step_lambda(config, sde, s);
    const double lambda_s = half_log_snr(sde, s);
    Step st{half_log_snr(sde, t) - lambda_s, sde.marginal_std(t) / sde.marginal_std(s), sde.mean_coeff(t)};
    const at::Tensor x0 = denoised_estimate(model, sde, x, y, t_buffer, s);
    if (on_estimate) on_estimate(lambda_s, x0);
    if (config.method == MultistepMethod::UniPC && i > 0 && std::isfinite(history[0].lambda)) {
      // UniC: redo the last step with the estimate at its end, which the next step needs anyway
      // (not the linear path's first step, from lambda = -inf, where no polynomial in lambda fits).
      const double t_prev = times[i - 1];
      Step back{lambda_s - history[0].lambda, sde.marginal_std(s) / sde.marginal_std(t_prev), sde.mean_coeff(s)};
      x = last_lambda < 1 ? plug_in_unipc_step(x_prev, history, last_order, back, sde.marginal_std(s), last_lambda,
                                               z_prev, x0)
                          : unipc_step(x_prev, history, last_order, back, x0);
    }
    history.insert(history.begin(), Estimate{lambda_s, x0});
    if (static_cast<int64_t>(history.size()) > top) history.pop_back();
    // The order this step can take: the estimates at hand with a finite lambda (the linear
    // path's first one has lambda = -inf), fewer near the end of a short run.
    int64_t order = 0;
    while (order < static_cast<int64_t>(history.size()) && std::isfinite(history[order].lambda)) ++order;
    order = std::max<int64_t>(1, std::min(order, top));
    if (config.lower_order_final && (steps < kLowerOrderFinalBelow || i + 1 == steps)) order = std::min(order, steps - i);
    switch (config.method) {
      case MultistepMethod::DDIM:
        if (config.eta > 0) {
          // Of sigma_t's noise, the share c is drawn afresh (not on the last step, which ends at
          // the mean) and the rest carried from x_s.
          const double sigma_t = sde.marginal_std(t), sigma_s = sde.marginal_std(s);
          const double c = config.eta * sigma_t * std::sqrt(-std::expm1(-2 * st.h));
          const at::Tensor eps = (x - x0 * sde.mean_coeff(s)) / sigma_s;
          x = x0 * st.m_t + eps * std::sqrt(std::max(sigma_t * sigma_t - c * c, 0.0));
          if (i + 1 < steps) x.add_(at::normal(0.0, 1.0, x.sizes(), gen, x.options()), c);
        } else if (lambda < 1) {
          x = plug_in_sde_step(x, history, 1, st, sde.marginal_std(t), lambda, i + 1 < steps, gen);
        } else {
          x = dpmpp_step(x, history, 1, st);
        }
        break;
      case MultistepMethod::DPMSolverPP2M:
      case MultistepMethod::DPMSolverPP3M:
        x = lambda < 1 ? plug_in_sde_step(x, history, order, st, sde.marginal_std(t), lambda, i + 1 < steps, gen)
                       : dpmpp_step(x, history, order, st);
        break;
      case MultistepMethod::UniPC:
        x_prev = x;
        if (lambda < 1) {
          z_prev = i + 1 < steps ? at::normal(0.0, 1.0, x.sizes(), gen, x.options()) : at::Tensor();
          x = plug_in_unipc_step(x, history, order, st, sde.marginal_std(t), lambda, z_prev, at::Tensor());
        } else {
          x = unipc_step(x, history, order, st, at::Tensor());
        }
        break;
    }
    last_order = order;
    last_lambda = lambda;
    if (on_step) on_step(t, x);
  }
  return x;
}

// steps + 1 times from t_high down to t_low, uniform in lambda (in t on the linear path, whose
// schedule is time).
std::vector<double> restart_times(const SDE& sde, double t_high, double t_low, int64_t steps) {
  const bool in_time = resolve_schedule(StepSchedule::Auto, sde) == StepSchedule::Time;
  const auto coordinate = [&](double t) { return in_time ? t : half_log_snr(sde, t); };
  const double from = coordinate(t_high), to = coordinate(t_low);
  std::vector<double> times(steps + 1);
  for (int64_t i = 0; i <= steps; ++i) {
    const double v = from + (to - from) * double(i) / double(steps);
    times[i] = in_time ? v : sde.time_of_noise_to_signal(std::exp(-v));
  }
  times.front() = t_high;
  times.back() = t_low;
  return times;
}

// integrate over times with config.restart's restarts (Restart, header) at the first of the
// times whose sigma / m is at most restart.low.
at::Tensor integrate_with_restarts(const MultistepConfig& config, ScoreModel& model, const SDE& sde, at::Tensor x,
                                   const at::Tensor& y, const std::vector<double>& times, at::Generator gen,
                                   const StepFn& on_step) {
  const Restart& restart = config.restart;
  size_t j = 1;
  while (j + 1 < times.size() && sde.noise_to_signal(times[j]) > restart.low) ++j;
  const double t_low = times[j], t_high = sde.time_of_noise_to_signal(restart.high);
  if (!(t_high > t_low))
    throw InvalidArgument("{restart_range}: the high noise level is not above the level where the restarts start");
  const double m_low = sde.mean_coeff(t_low), sigma_low = sde.marginal_std(t_low);
  const double m_high = sde.mean_coeff(t_high), sigma_high = sde.marginal_std(t_high);
  const double carried = m_high / m_low;
  const double added = std::sqrt(std::max(sigma_high * sigma_high - std::pow(carried * sigma_low, 2), 0.0));
  const std::vector<double> down = restart_times(sde, t_high, t_low, restart.steps);
  x = integrate(config, model, sde, std::move(x), y, {times.begin(), times.begin() + j + 1}, gen, on_step, {});
  for (int64_t k = 0; k < restart.times; ++k) {
    x = x * carried + at::normal(0.0, 1.0, x.sizes(), gen, x.options()) * added;
    if (on_step) on_step(t_high, x);
    x = integrate(config, model, sde, std::move(x), y, down, gen, on_step, {});
  }
  if (j + 1 == times.size()) return x;
  return integrate(config, model, sde, std::move(x), y, {times.begin() + j, times.end()}, std::move(gen), on_step, {});
}

}  // namespace

at::Tensor MultistepSampler::run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y,
                                 at::Generator gen, const StepFn& on_step) {
  at::NoGradGuard no_grad;  // every SDE serves: the solvers need m(t) and sigma(t) alone
  if (!config_.times.empty() && (config_.times.front() != sde.T() || config_.times.back() != sde.t_eps()))
    throw InvalidArgument("{times} must run from the SDE's T to its t_eps");
  const std::vector<double> times =
      !config_.times.empty() ? config_.times
      : resolve_schedule(config_.schedule, sde) == StepSchedule::Adaptive
          ? adaptive_step_times(model, sde, x, y, config_.steps, config_.adaptive)
          : step_times(sde, config_.schedule, config_.steps, config_.rho);
  if (config_.restart.times > 0)
    return integrate_with_restarts(config_, model, sde, std::move(x), y, times, std::move(gen), on_step);
  return integrate(config_, model, sde, std::move(x), y, times, std::move(gen), on_step, {});
}

std::vector<double> adaptive_step_times(ScoreModel& model, const SDE& sde, const at::Tensor& x_T, const at::Tensor& y,
                                        int64_t steps, const AdaptiveSchedule& options) {
  check_step_schedule(sde, StepSchedule::Adaptive, steps);
  options.validate();
  at::NoGradGuard no_grad;
  MultistepConfig pilot;  // DPM-Solver++ 2M on the probability flow
  pilot.steps = options.pilot_steps;
  const std::vector<double> grid = step_times(sde, StepSchedule::LogSNR, options.pilot_steps);
  const int64_t rows = std::min<int64_t>(x_T.size(0), options.pilot_rows);
  const size_t nodes = grid.size();
  std::vector<double> lambda(nodes);
  for (size_t j = 0; j < nodes; ++j) lambda[j] = half_log_snr(sde, grid[j]);
  // The bend m(t) RMS d^2 x0_hat / d lambda^2 at the pilot's interior nodes, from the last
  // three estimates (the three-point second difference, for any spacing).
  std::vector<double> bend;
  std::vector<at::Tensor> last;
  const EstimateFn measure = [&](double, const at::Tensor& x0) {
    last.push_back(x0);
    if (last.size() < 3) return;
    if (last.size() > 3) last.erase(last.begin());
    const size_t j = bend.size() + 1;  // the middle one of the three
    const double h0 = lambda[j] - lambda[j - 1], h1 = lambda[j + 1] - lambda[j];
    const at::Tensor second = ((last[2] - last[1]) / h1 - (last[1] - last[0]) / h0) * (2 / (h0 + h1));
    bend.push_back(sde.mean_coeff(grid[j]) * second.pow(2).mean().sqrt().item<double>());
  };
  integrate(pilot, model, sde, x_T.narrow(0, 0, rows).clone(), y.defined() ? y.narrow(0, 0, rows) : y, grid,
            at::Generator(), {}, measure);
  // The density of steps at every node of the grid (the ends take their neighbours' values;
  // the last node, t_eps, was not evaluated), floored, and its running integral in lambda.
  std::vector<double> density(nodes);
  for (size_t j = 0; j < nodes; ++j) {
    const size_t k = std::clamp<size_t>(j, 1, bend.size()) - 1;  // bend[k] is at node k + 1
    density[j] = std::cbrt(std::max(bend[k], 0.0));
  }
  const auto running_integral = [&] {
    std::vector<double> c(nodes, 0.0);
    for (size_t j = 1; j < nodes; ++j) c[j] = c[j - 1] + 0.5 * (density[j] + density[j - 1]) * (lambda[j] - lambda[j - 1]);
    return c;
  };
  const double mean = running_integral().back() / (lambda.back() - lambda.front());
  if (!(mean > 0) || !std::isfinite(mean))  // the estimate does not bend (or is not finite): even steps
    return step_times(sde, StepSchedule::LogSNR, steps);
  for (double& d : density) d = std::max(d, options.floor * mean);
  const std::vector<double> cumulative = running_integral();
  // Equal shares of the integral between the steps, by linear interpolation in lambda.
  std::vector<double> times(steps + 1);
  size_t j = 1;
  for (int64_t i = 1; i < steps; ++i) {
    const double level = cumulative.back() * double(i) / double(steps);
    while (cumulative[j] < level) ++j;
    const double w = (level - cumulative[j - 1]) / (cumulative[j] - cumulative[j - 1]);
    times[i] = sde.time_of_noise_to_signal(std::exp(-(lambda[j - 1] + w * (lambda[j] - lambda[j - 1]))));
  }
  times.front() = sde.T();
  times.back() = sde.t_eps();
  return times;
}

}  // namespace sbgm
