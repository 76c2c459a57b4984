#pragma once
// Few-step samplers of the probability-flow ODE: exponential integrators in the half log-SNR
// lambda = log(m / sigma), written for the model's denoised estimate x0_hat(x, t) = (x + sigma^2
// score) / m (the data-prediction form of DPM-Solver++ and UniPC). With x0_hat held fixed the ODE
// is solved exactly,
//   x_t = (sigma_t / sigma_s) x_s + m_t (1 - e^-h) x0_hat,   h = lambda_t - lambda_s,
// which is DDIM; the multistep methods add a polynomial in lambda through the previous steps'
// estimates, so each step costs one network evaluation whatever the order:
// - ddim: the step above (order 1); with eta > 0 part of the noise is drawn afresh each step,
//   eta = 1 being the ancestral (DDPM) posterior q(x_t | x_s, x0_hat) (Song, Meng & Ermon 2021);
// - dpmpp2m, dpmpp3m: DPM-Solver++ 2M and 3M (Lu et al. 2022), orders 2 and 3;
// - ddim and dpmpp2m with lambda < 1: the same integrator for the plug-in reverse SDEs of Huang
//   et al. (2021), dx = [f - (1 - lambda/2) g^2 s] dt + sqrt(1 - lambda) g dw, whose linear part
//   and noise it integrates exactly (with kappa = 2 - lambda):
//     x_t = (sigma_t / sigma_s) e^(-(1 - lambda) h) x_s + m_t (1 - e^(-kappa h)) x0_hat
//           + sigma_t sqrt(1 - e^(-2 (1 - lambda) h)) z;
//   lambda = 0 is SDE-DPM-Solver++ (the reverse SDE), lambda = 1 the ODE;
// - unipc: UniPC (Zhao et al. 2023), the UniP predictor of order p (UniP-2 is DPM-Solver++ 2M)
//   followed by the UniC corrector, which reuses the evaluation at the new point that the next
//   step needs anyway and raises the order to p + 1. The last step is not corrected. With lambda
//   < 1 the same on the plug-in reverse SDE (SA-Solver's stochastic predictor-corrector, Xue et
//   al. 2023, with UniPC's weights): the drift integral is the flow's with h scaled by kappa, so
//   the weights carry over with kappa h, and predictor and corrector add the same noise.
//   An ODE range [low, high] of noise-to-signal ratios sigma / m takes the steps that
//   start inside it off the plug-in SDE onto the ODE (lambda = 1): the noise stays where it
//   helps, above the range (where it corrects the mixture of modes) and below it (where it
//   sharpens them), and the middle levels, where the modes separate and the SDE's doubled drift
//   (kappa = 2 at lambda = 0) doubles the step's error in x0_hat, are solved by the flow
//   (docs/samplers.md, "An ODE range"). The weights are per step, so the switch costs the
//   multistep methods nothing.
// Everything is in terms of m(t) and sigma(t) alone, so one code serves VP, SubVP, cosine, VE
// and the linear path of flow matching (whose velocity gives x0_hat = x - t v). With fewer than
// 15 steps the last steps fall back to lower orders, as DPM-Solver++ and UniPC do: at the
// smallest noise levels the estimates' differences are mostly network error.

#include <optional>
#include <utility>
#include <vector>

#include "sbgm/sample/sampler.hpp"
#include "sbgm/sample/step_schedule.hpp"

namespace sbgm {

enum class MultistepMethod { DDIM, DPMSolverPP2M, DPMSolverPP3M, UniPC };

// The adaptive step schedule (StepSchedule::Adaptive), found from the model before each run. A
// pilot solve of the probability flow (DPM-Solver++ 2M, pilot_steps steps uniform in lambda) from
// the first pilot_rows of the run's prior draws measures how the model's denoised estimate bends
// along the path; the steps are then placed so that each carries the same share of a second-order
// step's local error, m(t) h^3 |d^2 x0_hat / d lambda^2| (equidistribution: a density of steps in
// lambda proportional to (m RMS d^2 x0_hat / d lambda^2)^(1/3)), and at least floor times the
// mean density everywhere, so that no stretch of noise levels is skipped. Where x0_hat is
// nearly constant (the highest noise levels) steps are few; where the data's structure forms,
// many. The pilot costs pilot_rows * pilot_steps evaluations a run, on top of the steps.
struct AdaptiveSchedule {
  int64_t pilot_rows = 256;
  int64_t pilot_steps = 100;
  double floor = 0.1;

  void validate() const;  // InvalidArgument naming the bad option
};

// Restart sampling (Xu et al. 2023): the deterministic solve stops at the first of its times
// whose noise-to-signal ratio sigma / m is at most `low`, and `times` times over adds the forward
// process's noise from there up to the ratio `high` (x <- (m_high / m_low) x + sqrt(sigma_high^2 -
// (m_high sigma_low / m_low)^2) z, the exact transition, so the marginals stay the model's) and
// solves down to it again in `steps` steps; then it goes on to t_eps. The fresh noise contracts
// the error the solve carried in from above `high`, which a deterministic solver otherwise
// carries to the end; the solves keep the ODE's small discretisation error. Each restart costs
// `steps` evaluations. Works on every path with a Gaussian transition: the diffusions and the
// linear path. (With an exact score it reaches the reverse SDE's quality in a few evaluations; a
// network's error below `high` it meets again in every restart: docs/samplers.md.)
struct Restart {
  int64_t times = 0;  // 0: no restart
  int64_t steps = 4;  // evaluations of each restart's solve
  double low = 0.1;   // sigma / m where the restarts start (the first of the run's times at or below it)
  double high = 1.0;  // sigma / m the noise is raised to

  void validate() const;  // InvalidArgument naming the bad option
};

struct MultistepConfig {
  MultistepMethod method = MultistepMethod::DPMSolverPP2M;
  int64_t steps = 20;  // network evaluations
  StepSchedule schedule = StepSchedule::Auto;
  double rho = 7.0;      // karras schedule
  double eta = 0.0;      // ddim: 0 deterministic, 1 ancestral
  double lambda = 1.0;   // ddim, dpmpp2m, unipc: the plug-in reverse SDE's lambda (1: the ODE)
  // lambda < 1: the steps that start at sigma / m in [low, high] follow the ODE instead; none by default.
  std::optional<std::pair<double, double>> ode_range;
  int64_t order = 2;     // unipc: the predictor's order p (1-3)
  bool lower_order_final = true;
  AdaptiveSchedule adaptive;  // the pilot of schedule = adaptive
  // Given times in place of the schedule's: steps + 1 of them, decreasing from T to t_eps (a
  // schedule made elsewhere, e.g. fitted to a model); empty: the schedule's.
  std::vector<double> times;
  Restart restart;            // the ODE's solvers (lambda 1, eta 0): restarts at low noise levels

  void validate() const;  // InvalidArgument naming the bad option
};

class MultistepSampler final : public Sampler {
 public:
  explicit MultistepSampler(MultistepConfig config);
  int64_t evaluations() const { return config_.steps + config_.restart.times * config_.restart.steps; }
  const MultistepConfig& config() const { return config_; }
  at::Tensor run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y, at::Generator gen,
                 const StepFn& on_step) override;

 private:
  MultistepConfig config_;
};

// The adaptive schedule's steps + 1 decreasing times from T to t_eps for this model, these prior
// draws x_T and conditions y (rows of y beside rows of x_T, or undefined). InvalidArgument on the
// linear path, whose lambda is -inf at t = T.
std::vector<double> adaptive_step_times(ScoreModel& model, const SDE& sde, const at::Tensor& x_T, const at::Tensor& y,
                                        int64_t steps, const AdaptiveSchedule& options = {});

// The model's denoised estimate E[x0 | x_t = x] (data prediction): from the score where the SDE
// has one, from the velocity on the linear path (x0 = (v - sigma'/sigma x) / (m' - sigma' m / sigma)).
// t_buffer: [B], filled with t here.
at::Tensor denoised_estimate(ScoreModel& model, const SDE& sde, const at::Tensor& x, const at::Tensor& y,
                             const at::Tensor& t_buffer, double t);

}  // namespace sbgm
