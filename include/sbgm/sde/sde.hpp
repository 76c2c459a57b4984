#pragma once
// The forward diffusion: a linear-drift SDE dx = f(t) x dt + g(t) dw whose transition kernel
// from the data is Gaussian, p(x_t | x_0) = N(m(t) x_0, sigma(t)^2 I).
//
// Time runs forward from data (t_eps) to noise (T). Every coefficient exists in two forms:
// a scalar one for samplers (one t for the whole batch) and a per-sample one for training
// (t of shape [B]); per-sample coefficients come back shaped [B, 1, ..., 1] so they broadcast
// against x of any trailing shape.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace sbgm {

// Linear is not a diffusion but the straight path of flow matching (rectified flow), x_t =
// (1 - t) x_0 + t z: m = 1 - t, sigma = t. Its f = -1/(1 - t) and g^2 = 2t/(1 - t) exist inside
// [0, 1) and make the same marginals, but are infinite at t = T = 1, where the prior is exactly
// N(0, I): only the probability-flow ODE, driven by a model's velocity (ScoreModel::velocity),
// starts there.
enum class SDEKind { VP, SubVP, VE, CosineVP, Linear };
std::string to_string(SDEKind kind);
SDEKind sde_kind_from_string(const std::string& name);  // throws on unknown names

struct SDEConfig {
  SDEKind kind = SDEKind::VP;
  double beta_min = 0.1;   // VP, SubVP: beta(t) = beta_min + t (beta_max - beta_min)
  double beta_max = 20.0;
  double sigma_min = 0.01;  // VE: sigma(t) = sigma_min (sigma_max / sigma_min)^t
  double sigma_max = 50.0;
  double cosine_s = 0.008;       // CosineVP: offset s of Nichol & Dhariwal
  double cosine_max_beta = 1000.0;  // CosineVP: beta at t = T (the schedule ends where beta reaches it; m(T) ~ 0.003)
  double T = 1.0;  // Linear: at most 1
  double t_eps = 1e-5;

  void validate() const;  // throws std::invalid_argument naming the bad value
};

class SDE {
 public:
  explicit SDE(double T, double t_eps) : T_(T), t_eps_(t_eps) {}
  virtual ~SDE() = default;

  virtual SDEKind kind() const = 0;
  double T() const { return T_; }
  double t_eps() const { return t_eps_; }

  // Scalar coefficients at one time t.
  virtual double drift_coeff(double t) const = 0;   // f(t), with f(x, t) = f(t) x
  virtual double diffusion_sq(double t) const = 0;  // g(t)^2
  virtual double mean_coeff(double t) const = 0;    // m(t)
  virtual double marginal_std(double t) const = 0;  // sigma(t)
  virtual double prior_std() const = 0;             // p_T is approximated by N(0, prior_std^2 I)
  // Whether f and g are finite on all of [t_eps, T], so that the reverse SDE can be integrated
  // from T (every kind but Linear).
  virtual bool has_reverse_sde() const { return true; }
  // dm/dt and dsigma/dt: x_t = m x_0 + sigma z moves with velocity dm/dt x_0 + dsigma/dt z, the
  // target of flow matching. By default f m and (g^2 / 2 + f sigma^2) / sigma; Linear's are -1, 1.
  virtual double mean_coeff_rate(double t) const;
  virtual double marginal_std_rate(double t) const;

  // Per-sample coefficients: t has shape [B]; results have shape [B, 1, ..., 1] (rank of like).
  virtual at::Tensor drift_coeff(const at::Tensor& t, const at::Tensor& like) const = 0;
  virtual at::Tensor diffusion_sq(const at::Tensor& t, const at::Tensor& like) const = 0;
  virtual at::Tensor mean_coeff(const at::Tensor& t, const at::Tensor& like) const = 0;
  virtual at::Tensor marginal_std(const at::Tensor& t, const at::Tensor& like) const = 0;
  virtual at::Tensor mean_coeff_rate(const at::Tensor& t, const at::Tensor& like) const;
  virtual at::Tensor marginal_std_rate(const at::Tensor& t, const at::Tensor& like) const;

  // f(x, t).
  at::Tensor drift(const at::Tensor& x, double t) const;
  // Drift of the reverse-time SDE, f - g^2 score (integrated from T down to t_eps).
  at::Tensor reverse_drift(const at::Tensor& x, const at::Tensor& score, double t) const;
  // Drift of the probability-flow ODE, f - g^2 score / 2.
  at::Tensor probability_flow_drift(const at::Tensor& x, const at::Tensor& score, double t) const;
  at::Tensor probability_flow_drift(const at::Tensor& x, const at::Tensor& score, const at::Tensor& t) const;  // t: [B]

  // sigma(t) / m(t): the noise level of x_t / m(t) = x_0 + (sigma/m) z (EDM's sigma). Increasing in t.
  double noise_to_signal(double t) const { return marginal_std(t) / mean_coeff(t); }
  // The time in [0, T] at which noise_to_signal reaches r (r beyond noise_to_signal(T) gives T):
  // by bisection, or in closed form where a path overrides it (training draws one per sample).
  virtual double time_of_noise_to_signal(double r) const;

  // x_t = m(t) x0 + sigma(t) z for per-sample t.
  at::Tensor perturb(const at::Tensor& x0, const at::Tensor& t, const at::Tensor& z) const;

  at::Tensor prior_sample(at::IntArrayRef shape, at::Generator gen, const at::TensorOptions& opts) const;
  // log N(x; 0, prior_std^2 I) summed over every dimension but the first: shape [B].
  at::Tensor prior_log_prob(const at::Tensor& x) const;

 private:
  double T_;
  double t_eps_;
};

std::unique_ptr<SDE> make_sde(const SDEConfig& config);

// Times spaced uniformly in the half log-SNR lambda = -log(sigma / m): for u in [0, 1] ([B], any
// float dtype) t(u) runs from T (u = 0) to t_eps (u = 1), and |dt/du| = (lambda(t_eps) -
// lambda(T)) 2 sigma^2 / g^2 at t(u). Drawn with u ~ U[0, 1), t has density proportional to
// g^2 / sigma^2 and |dt/du| is the inverse of that density, the weight that keeps an integral over
// [t_eps, T] unbiased. Used by the step schedules, the variational bound and training. The
// linear path's lambda(T) is -inf: InvalidArgument there.
struct LogSNRTimes {
  at::Tensor t, dt_du;  // [B], u's dtype and device
};
LogSNRTimes log_snr_times(const SDE& sde, const at::Tensor& u);

}  // namespace sbgm
