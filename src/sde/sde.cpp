#include "sbgm/sde/sde.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

// Elementary functions for both doubles and tensors, so that every schedule formula is written
// once and serves the scalar (sampler) and per-sample (training) coefficient forms alike.
namespace fn {
inline double exp(double v) { return std::exp(v); }
inline double expm1(double v) { return std::expm1(v); }
inline double sqrt(double v) { return std::sqrt(v); }
inline double tan(double v) { return std::tan(v); }
inline double cos(double v) { return std::cos(v); }
inline double sin(double v) { return std::sin(v); }
inline double zero_like(double) { return 0.0; }
inline double one_like(double) { return 1.0; }
inline at::Tensor exp(const at::Tensor& v) { return at::exp(v); }
inline at::Tensor expm1(const at::Tensor& v) { return at::expm1(v); }
inline at::Tensor sqrt(const at::Tensor& v) { return at::sqrt(v); }
inline at::Tensor tan(const at::Tensor& v) { return at::tan(v); }
inline at::Tensor cos(const at::Tensor& v) { return at::cos(v); }
inline at::Tensor sin(const at::Tensor& v) { return at::sin(v); }
inline at::Tensor zero_like(const at::Tensor& v) { return at::zeros_like(v); }
inline at::Tensor one_like(const at::Tensor& v) { return at::ones_like(v); }
}  // namespace fn

namespace {
constexpr EnumNames<SDEKind, 5> kSDENames{{{SDEKind::VP, "vp"},
                                           {SDEKind::SubVP, "subvp"},
                                           {SDEKind::VE, "ve"},
                                           {SDEKind::CosineVP, "cosine"},
                                           {SDEKind::Linear, "linear"}}};
}  // namespace

std::string to_string(SDEKind kind) { return enum_to_string(kind, kSDENames); }
SDEKind sde_kind_from_string(const std::string& name) { return enum_from_string(name, kSDENames, "SDE"); }

void SDEConfig::validate() const {
  auto positive_finite = [](double v) { return std::isfinite(v) && v > 0; };
  if (!positive_finite(T)) throw InvalidArgument("{sde.T} must be positive");
  if (!(t_eps > 0 && t_eps < T)) throw InvalidArgument("{sde.t_eps} must lie in (0, T)");
  switch (kind) {
    case SDEKind::VP:
    case SDEKind::SubVP:
      if (!positive_finite(beta_min)) throw InvalidArgument("{sde.beta_min} must be positive");
      if (!(std::isfinite(beta_max) && beta_max > beta_min))
        throw InvalidArgument("{sde.beta_max} must be greater than {sde.beta_min}");
      break;
    case SDEKind::VE:
      if (!positive_finite(sigma_min)) throw InvalidArgument("{sde.sigma_min} must be positive");
      if (!(std::isfinite(sigma_max) && sigma_max > sigma_min))
        throw InvalidArgument("{sde.sigma_max} must be greater than {sde.sigma_min}");
      break;
    case SDEKind::CosineVP:
      if (!(std::isfinite(cosine_s) && cosine_s > 0)) throw InvalidArgument("{sde.cosine_s} must be positive");
      if (!positive_finite(cosine_max_beta)) throw InvalidArgument("{sde.cosine_max_beta} must be positive");
      break;
    case SDEKind::Linear:
      if (T > 1) throw InvalidArgument("{sde.T} must be at most 1 on the linear path (x_t = (1 - t) x_0 + t z)");
      break;
  }
}

namespace {

// Reshapes per-sample t [B] to [B, 1, ..., 1] with the rank of `like`.
at::Tensor batch_shaped(const at::Tensor& t, const at::Tensor& like) {
  std::vector<int64_t> shape(std::max<int64_t>(like.dim(), 1), 1);
  shape[0] = t.numel();
  return t.reshape(shape).to(like.scalar_type());
}

// Implements SDE's virtual interface from a Derived that writes each coefficient once as a
// template over double and at::Tensor.
template <class Derived>
class LinearSDE : public SDE {
 public:
  using SDE::SDE;
  double drift_coeff(double t) const override { return self().f(t); }
  double diffusion_sq(double t) const override { return self().g2(t); }
  double mean_coeff(double t) const override { return self().m(t); }
  double marginal_std(double t) const override { return self().s(t); }
  at::Tensor drift_coeff(const at::Tensor& t, const at::Tensor& like) const override {
    return self().f(batch_shaped(t, like));
  }
  at::Tensor diffusion_sq(const at::Tensor& t, const at::Tensor& like) const override {
    return self().g2(batch_shaped(t, like));
  }
  at::Tensor mean_coeff(const at::Tensor& t, const at::Tensor& like) const override {
    return self().m(batch_shaped(t, like));
  }
  at::Tensor marginal_std(const at::Tensor& t, const at::Tensor& like) const override {
    return self().s(batch_shaped(t, like));
  }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

// Variance preserving: f = -beta/2, g^2 = beta, m = exp(-B/2), sigma^2 = 1 - exp(-B),
// with B(t) = int_0^t beta.
class VPSDE final : public LinearSDE<VPSDE> {
 public:
  VPSDE(const SDEConfig& c) : LinearSDE(c.T, c.t_eps), b0_(c.beta_min), b1_(c.beta_max) {}
  SDEKind kind() const override { return SDEKind::VP; }
  double prior_std() const override { return 1.0; }
  template <class T> T beta(const T& t) const { return b0_ + (b1_ - b0_) * t; }
  template <class T> T B(const T& t) const { return b0_ * t + (0.5 * (b1_ - b0_)) * t * t; }
  template <class T> T f(const T& t) const { return -0.5 * beta(t); }
  template <class T> T g2(const T& t) const { return beta(t); }
  template <class T> T m(const T& t) const { return fn::exp(-0.5 * B(t)); }
  template <class T> T s(const T& t) const { return fn::sqrt(-fn::expm1(-B(t))); }

 private:
  double b0_, b1_;
};

// Sub-variance preserving: VP's drift, g^2 = beta (1 - exp(-2B)), sigma = 1 - exp(-B).
// (The JAX sbgm takes sigma = sqrt(1 - exp(-B)) here, which is VP's; that is not this SDE.)
class SubVPSDE final : public LinearSDE<SubVPSDE> {
 public:
  SubVPSDE(const SDEConfig& c) : LinearSDE(c.T, c.t_eps), vp_(c) {}
  SDEKind kind() const override { return SDEKind::SubVP; }
  double prior_std() const override { return 1.0; }
  template <class T> T f(const T& t) const { return vp_.f(t); }
  template <class T> T g2(const T& t) const { return vp_.beta(t) * -fn::expm1(-2.0 * vp_.B(t)); }
  template <class T> T m(const T& t) const { return vp_.m(t); }
  template <class T> T s(const T& t) const { return -fn::expm1(-vp_.B(t)); }

 private:
  VPSDE vp_;
};

// Variance exploding: f = 0, g^2 = d sigma_ve^2/dt with sigma_ve(t) = sigma_min (sigma_max/sigma_min)^t.
// Started from the data at t = 0 the kernel's variance is sigma_ve(t)^2 - sigma_min^2 (exact for
// this SDE, and what the forward simulation gives); score_sde's sigma_ve(t) treats the data as
// blurred by sigma_min already.
class VESDE final : public LinearSDE<VESDE> {
 public:
  VESDE(const SDEConfig& c)
      : LinearSDE(c.T, c.t_eps), smin_(c.sigma_min), smax_(c.sigma_max), log_ratio_(std::log(c.sigma_max / c.sigma_min)) {}
  SDEKind kind() const override { return SDEKind::VE; }
  double prior_std() const override { return smax_; }
  template <class T> T sigma_ve_sq(const T& t) const { return (smin_ * smin_) * fn::exp((2.0 * log_ratio_) * t); }
  template <class T> T f(const T& t) const { return fn::zero_like(t); }
  template <class T> T g2(const T& t) const { return (2.0 * log_ratio_) * sigma_ve_sq(t); }
  template <class T> T m(const T& t) const { return fn::one_like(t); }
  template <class T> T s(const T& t) const {
    return smin_ * fn::sqrt(fn::expm1((2.0 * log_ratio_) * t));
  }
  double time_of_noise_to_signal(double r) const override {
    if (!(r > 0)) return 0.0;
    return std::min(T(), std::log1p((r / smin_) * (r / smin_)) / (2.0 * log_ratio_));
  }

 private:
  double smin_, smax_, log_ratio_;
};

// Cosine schedule (Nichol & Dhariwal 2021) as a VP SDE: alpha_bar(u) = cos^2(phi(u)) / cos^2(phi(0)),
// phi(u) = (u + s)/(1 + s) pi/2. Its beta = -d log alpha_bar/du = pi tan(phi)/(1 + s) blows up at
// u = 1, so the schedule stops at u_max where beta reaches cosine_max_beta, and t in [0, T] maps
// linearly onto u in [0, u_max]. Every coefficient stays exact for the SDE it defines.
class CosineVPSDE final : public LinearSDE<CosineVPSDE> {
 public:
  CosineVPSDE(const SDEConfig& c) : LinearSDE(c.T, c.t_eps), s_(c.cosine_s) {
    const double phi_max = std::atan(c.cosine_max_beta * (1 + s_) / M_PI);
    u_max_ = phi_max * 2 * (1 + s_) / M_PI - s_;
    if (!(u_max_ > 0)) throw InvalidArgument("{sde.cosine_max_beta} is too small for {sde.cosine_s}");
    scale_ = u_max_ / c.T;
    phi0_ = s_ / (1 + s_) * M_PI / 2;
    cos0_ = std::cos(phi0_);
  }
  SDEKind kind() const override { return SDEKind::CosineVP; }
  double prior_std() const override { return 1.0; }
  template <class T> T phi(const T& t) const { return (scale_ * t + s_) * (M_PI / 2 / (1 + s_)); }
  template <class T> T beta(const T& t) const { return (scale_ * M_PI / (1 + s_)) * fn::tan(phi(t)); }
  template <class T> T f(const T& t) const { return -0.5 * beta(t); }
  template <class T> T g2(const T& t) const { return beta(t); }
  template <class T> T m(const T& t) const { return fn::cos(phi(t)) * (1.0 / cos0_); }
  // 1 - m^2 = (cos^2 phi0 - cos^2 phi) / cos^2 phi0 = sin(phi - phi0) sin(phi + phi0) / cos^2 phi0,
  // which keeps full precision near t = 0 where 1 - m^2 would cancel.
  template <class T> T s(const T& t) const {
    const T p = phi(t);
    return fn::sqrt(fn::sin(p - phi0_) * fn::sin(p + phi0_)) * (1.0 / cos0_);
  }

 private:
  double s_, u_max_ = 0, scale_ = 0, phi0_ = 0, cos0_ = 1;
};

// The straight path of flow matching: m = 1 - t, sigma = t, so f = m'/m = -1/(1 - t) and
// g^2 = d sigma^2/dt - 2 f sigma^2 = 2t/(1 - t), both infinite at t = 1 (the header). The prior
// N(0, sigma(T)^2 I) is exact at T = 1 and leaves out the data's (1 - T) x_0 below it.
class StraightPath final : public LinearSDE<StraightPath> {
 public:
  StraightPath(const SDEConfig& c) : LinearSDE(c.T, c.t_eps) {}
  SDEKind kind() const override { return SDEKind::Linear; }
  double prior_std() const override { return T(); }
  bool has_reverse_sde() const override { return false; }
  template <class T> T f(const T& t) const { return -1.0 / (1.0 - t); }
  template <class T> T g2(const T& t) const { return 2.0 * t / (1.0 - t); }
  template <class T> T m(const T& t) const { return 1.0 - t; }
  template <class T> T s(const T& t) const { return t; }
  double mean_coeff_rate(double) const override { return -1.0; }
  double marginal_std_rate(double) const override { return 1.0; }
  at::Tensor mean_coeff_rate(const at::Tensor& t, const at::Tensor& like) const override {
    return at::full_like(batch_shaped(t, like), -1.0);
  }
  at::Tensor marginal_std_rate(const at::Tensor& t, const at::Tensor& like) const override {
    return at::ones_like(batch_shaped(t, like));
  }
};

}  // namespace

double SDE::mean_coeff_rate(double t) const { return drift_coeff(t) * mean_coeff(t); }
double SDE::marginal_std_rate(double t) const {
  const double s = marginal_std(t);
  return (0.5 * diffusion_sq(t) + drift_coeff(t) * s * s) / s;
}
at::Tensor SDE::mean_coeff_rate(const at::Tensor& t, const at::Tensor& like) const {
  return drift_coeff(t, like) * mean_coeff(t, like);
}
at::Tensor SDE::marginal_std_rate(const at::Tensor& t, const at::Tensor& like) const {
  const at::Tensor s = marginal_std(t, like);
  return (0.5 * diffusion_sq(t, like) + drift_coeff(t, like) * s * s) / s;
}

at::Tensor SDE::drift(const at::Tensor& x, double t) const { return x * drift_coeff(t); }

at::Tensor SDE::reverse_drift(const at::Tensor& x, const at::Tensor& score, double t) const {
  return x * drift_coeff(t) - score * diffusion_sq(t);
}

at::Tensor SDE::probability_flow_drift(const at::Tensor& x, const at::Tensor& score, double t) const {
  return x * drift_coeff(t) - score * (0.5 * diffusion_sq(t));
}

at::Tensor SDE::probability_flow_drift(const at::Tensor& x, const at::Tensor& score, const at::Tensor& t) const {
  return x * drift_coeff(t, x) - score * (0.5 * diffusion_sq(t, x));
}

at::Tensor SDE::perturb(const at::Tensor& x0, const at::Tensor& t, const at::Tensor& z) const {
  return mean_coeff(t, x0) * x0 + marginal_std(t, x0) * z;
}

at::Tensor SDE::prior_sample(at::IntArrayRef shape, at::Generator gen, const at::TensorOptions& opts) const {
  return at::normal(0.0, prior_std(), shape, gen, opts);
}

double SDE::time_of_noise_to_signal(double r) const {
  if (!(r > 0)) return 0.0;
  if (r >= noise_to_signal(T_)) return T_;
  // Bisection: every SDE here has a monotone sigma/m, and 100 halvings reach double precision
  // for any T; each costs two scalar coefficient evaluations.
  double lo = 0.0, hi = T_;
  for (int i = 0; i < 100 && hi - lo > 0; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (noise_to_signal(mid) < r ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

at::Tensor SDE::prior_log_prob(const at::Tensor& x) const {
  const double s = prior_std();
  const int64_t d = x.numel() / std::max<int64_t>(x.size(0), 1);
  const double norm = -0.5 * d * std::log(2 * M_PI * s * s);
  return x.reshape({x.size(0), -1}).pow(2).sum(1).mul(-0.5 / (s * s)).add(norm);
}

LogSNRTimes log_snr_times(const SDE& sde, const at::Tensor& u) {
  const double log_top = std::log(sde.noise_to_signal(sde.T())), log_bottom = std::log(sde.noise_to_signal(sde.t_eps()));
  if (!std::isfinite(log_top))
    throw InvalidArgument("the log-SNR is infinite at t = T on the " + to_string(sde.kind()) +
                          " path: times cannot be spaced in it");
  const at::Tensor uc = u.to(at::kDouble).cpu().contiguous();
  at::Tensor t = at::empty_like(uc), dt_du = at::empty_like(uc);
  const double* up = uc.data_ptr<double>();
  double* tp = t.data_ptr<double>();
  double* wp = dt_du.data_ptr<double>();
  for (int64_t i = 0; i < uc.numel(); ++i) {
    tp[i] = sde.time_of_noise_to_signal(std::exp(log_top + up[i] * (log_bottom - log_top)));
    const double sigma = sde.marginal_std(tp[i]);
    wp[i] = (log_top - log_bottom) * 2 * sigma * sigma / sde.diffusion_sq(tp[i]);
  }
  return {t.to(u.options()), dt_du.to(u.options())};
}

std::unique_ptr<SDE> make_sde(const SDEConfig& config) {
  config.validate();
  switch (config.kind) {
    case SDEKind::VP: return std::make_unique<VPSDE>(config);
    case SDEKind::SubVP: return std::make_unique<SubVPSDE>(config);
    case SDEKind::VE: return std::make_unique<VESDE>(config);
    case SDEKind::CosineVP: return std::make_unique<CosineVPSDE>(config);
    case SDEKind::Linear: return std::make_unique<StraightPath>(config);
  }
  throw InvalidArgument("unknown SDE kind");
}

}  // namespace sbgm
