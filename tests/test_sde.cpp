// SDE coefficients against closed forms, against the moment ODEs they must satisfy, and against
// simulated forward trajectories.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <utility>

#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {

SDEConfig config_for(SDEKind kind) {
  SDEConfig c;
  c.kind = kind;
  c.sigma_max = 5.0;
  return c;
}

class EverySDE : public ::testing::TestWithParam<SDEKind> {};

}  // namespace

TEST(SDEFormulas, VPMatchesClosedForm) {
  SDEConfig c;
  c.beta_min = 0.1;
  c.beta_max = 20;
  auto sde = make_sde(c);
  for (double t : {1e-3, 0.1, 0.5, 1.0}) {
    const double B = 0.1 * t + 0.5 * t * t * 19.9;
    EXPECT_NEAR(sde->mean_coeff(t), std::exp(-B / 2), 1e-12);
    EXPECT_NEAR(sde->marginal_std(t), std::sqrt(1 - std::exp(-B)), 1e-12);
    EXPECT_NEAR(sde->diffusion_sq(t), 0.1 + t * 19.9, 1e-12);
    EXPECT_NEAR(sde->drift_coeff(t), -0.5 * (0.1 + t * 19.9), 1e-12);
  }
}

TEST(SDEFormulas, SubVPStdIsOneMinusExpMinusB) {
  SDEConfig c;
  c.kind = SDEKind::SubVP;
  auto sde = make_sde(c);
  for (double t : {1e-3, 0.1, 0.5, 1.0}) {
    const double B = 0.1 * t + 0.5 * t * t * 19.9;
    EXPECT_NEAR(sde->marginal_std(t), 1 - std::exp(-B), 1e-12);
    EXPECT_NEAR(sde->diffusion_sq(t), (0.1 + t * 19.9) * (1 - std::exp(-2 * B)), 1e-12);
  }
}

TEST(SDEFormulas, VEMatchesClosedForm) {
  SDEConfig c;
  c.kind = SDEKind::VE;
  c.sigma_min = 0.01;
  c.sigma_max = 50;
  auto sde = make_sde(c);
  for (double t : {1e-3, 0.1, 0.5, 1.0}) {
    const double s = 0.01 * std::pow(5000.0, t);
    EXPECT_NEAR(sde->marginal_std(t), std::sqrt(s * s - 1e-4), 1e-10);
    EXPECT_NEAR(sde->diffusion_sq(t), s * s * 2 * std::log(5000.0), 1e-9);
    EXPECT_EQ(sde->mean_coeff(t), 1.0);
    EXPECT_EQ(sde->drift_coeff(t), 0.0);
  }
  EXPECT_EQ(sde->prior_std(), 50.0);
}

// For a linear SDE the kernel's moments obey m' = f m and (sigma^2)' = 2 f sigma^2 + g^2.
TEST_P(EverySDE, MomentsSolveTheirODEs) {
  auto sde = make_sde(config_for(GetParam()));
  const double h = 1e-6;
  for (double t : {0.05, 0.2, 0.5, 0.8, 0.95}) {
    const double dm = (sde->mean_coeff(t + h) - sde->mean_coeff(t - h)) / (2 * h);
    const double s2 = [&](double u) { return sde->marginal_std(u) * sde->marginal_std(u); }(t);
    const double ds2 = (std::pow(sde->marginal_std(t + h), 2) - std::pow(sde->marginal_std(t - h), 2)) / (2 * h);
    EXPECT_NEAR(dm, sde->drift_coeff(t) * sde->mean_coeff(t), 1e-6 * (1 + std::abs(dm))) << "t=" << t;
    EXPECT_NEAR(ds2, 2 * sde->drift_coeff(t) * s2 + sde->diffusion_sq(t), 1e-5 * (1 + std::abs(ds2))) << "t=" << t;
  }
  // The kernel starts at the data.
  EXPECT_NEAR(sde->mean_coeff(0.0), 1.0, 1e-12);
  EXPECT_NEAR(sde->marginal_std(0.0), 0.0, 1e-12);
}

TEST_P(EverySDE, PerSampleCoefficientsMatchScalarOnes) {
  auto sde = make_sde(config_for(GetParam()));
  const at::Tensor t = at::tensor({0.01, 0.3, 0.77, 1.0}, at::kDouble);
  const at::Tensor like = at::zeros({4, 3, 2, 2}, at::kDouble);
  const at::Tensor m = sde->mean_coeff(t, like), s = sde->marginal_std(t, like), g2 = sde->diffusion_sq(t, like),
                   f = sde->drift_coeff(t, like);
  EXPECT_EQ(m.sizes(), (std::vector<int64_t>{4, 1, 1, 1}));
  for (int64_t i = 0; i < 4; ++i) {
    const double ti = t[i].item<double>();
    EXPECT_NEAR(m[i].item<double>(), sde->mean_coeff(ti), 1e-12);
    EXPECT_NEAR(s[i].item<double>(), sde->marginal_std(ti), 1e-12);
    // Linear's f and g^2 are infinite at t = 1, in both forms.
    for (const auto& [per_sample, scalar] : {std::pair{g2[i].item<double>(), sde->diffusion_sq(ti)},
                                             std::pair{f[i].item<double>(), sde->drift_coeff(ti)}}) {
      if (std::isinf(scalar)) EXPECT_EQ(per_sample, scalar);
      else EXPECT_NEAR(per_sample, scalar, 1e-9);
    }
  }
}

// Simulating dx = f x dt + g dw from x0 = 1.5 with fine Euler-Maruyama steps reproduces the
// closed-form mean and std at t = 0.6.
TEST_P(EverySDE, ForwardSimulationMatchesMarginal) {
  auto sde = make_sde(config_for(GetParam()));
  at::Generator gen = make_generator(at::kCPU, 7);
  const int64_t n = 20000, steps = 1000;
  const double t_end = 0.6, h = t_end / steps;
  at::Tensor x = at::full({n}, 1.5, at::kDouble);
  for (int64_t i = 0; i < steps; ++i) {
    const double t = i * h;
    x = x + sde->drift_coeff(t) * x * h +
        std::sqrt(sde->diffusion_sq(t) * h) * at::normal(0.0, 1.0, {n}, gen, at::TensorOptions().dtype(at::kDouble));
  }
  const double mean = x.mean().item<double>(), std = x.std().item<double>();
  const double m = 1.5 * sde->mean_coeff(t_end), s = sde->marginal_std(t_end);
  EXPECT_NEAR(mean, m, 4 * s / std::sqrt(n) + 5e-3 * std::abs(m));
  EXPECT_NEAR(std, s, 4 * s / std::sqrt(2.0 * n) + 5e-3 * s);
}

TEST_P(EverySDE, PriorLogProbIsIsotropicGaussian) {
  auto sde = make_sde(config_for(GetParam()));
  const at::Tensor x = at::tensor({0.3, -1.2, 2.0, 0.5, 0.1, -0.7}, at::kDouble).reshape({2, 3});
  const double s = sde->prior_std();
  const at::Tensor lp = sde->prior_log_prob(x);
  for (int64_t i = 0; i < 2; ++i) {
    const double sq = x[i].pow(2).sum().item<double>();
    EXPECT_NEAR(lp[i].item<double>(), -0.5 * sq / (s * s) - 1.5 * std::log(2 * M_PI * s * s), 1e-10);
  }
}

TEST_P(EverySDE, ReverseAndFlowDrifts) {
  auto sde = make_sde(config_for(GetParam()));
  const at::Tensor x = at::randn({5, 2}, at::kDouble), s = at::randn({5, 2}, at::kDouble);
  const double t = 0.4, f = sde->drift_coeff(t), g2 = sde->diffusion_sq(t);
  EXPECT_TRUE(at::allclose(sde->reverse_drift(x, s, t), f * x - g2 * s));
  EXPECT_TRUE(at::allclose(sde->probability_flow_drift(x, s, t), f * x - 0.5 * g2 * s));
}

// EDM's noise level sigma/m is increasing in t and its inverse recovers t; for VP it has the
// closed form sigma/m = sqrt(e^B - 1).
TEST_P(EverySDE, NoiseToSignalInverts) {
  auto sde = make_sde(config_for(GetParam()));
  double previous = 0;
  for (double t : {1e-5, 1e-3, 0.05, 0.3, 0.7, 0.999}) {
    const double r = sde->noise_to_signal(t);
    EXPECT_GT(r, previous);
    previous = r;
    EXPECT_NEAR(sde->time_of_noise_to_signal(r), t, 1e-12 + 1e-9 * t) << t;
  }
  EXPECT_EQ(sde->time_of_noise_to_signal(0.0), 0.0);
  EXPECT_EQ(sde->time_of_noise_to_signal(1e300), sde->T());
  if (GetParam() == SDEKind::VP) {
    const double B = 0.1 * 0.3 + 0.5 * 19.9 * 0.09;
    EXPECT_NEAR(sde->noise_to_signal(0.3), std::sqrt(std::expm1(B)), 1e-12);
  }
}

// dm/dt and dsigma/dt, the velocity of x_t = m x0 + sigma z (flow matching's target), against
// central differences, in both forms.
TEST_P(EverySDE, RatesAreTheCoefficientsDerivatives) {
  auto sde = make_sde(config_for(GetParam()));
  const double h = 1e-6;
  for (double t : {0.05, 0.2, 0.5, 0.8, 0.95}) {
    const double dm = (sde->mean_coeff(t + h) - sde->mean_coeff(t - h)) / (2 * h);
    const double ds = (sde->marginal_std(t + h) - sde->marginal_std(t - h)) / (2 * h);
    EXPECT_NEAR(sde->mean_coeff_rate(t), dm, 1e-6 * (1 + std::abs(dm))) << "t=" << t;
    EXPECT_NEAR(sde->marginal_std_rate(t), ds, 1e-6 * (1 + std::abs(ds))) << "t=" << t;
    const at::Tensor tt = at::full({2}, t, at::kDouble), like = at::zeros({2, 3}, at::kDouble);
    EXPECT_NEAR(sde->mean_coeff_rate(tt, like)[1].item<double>(), sde->mean_coeff_rate(t), 1e-12);
    EXPECT_NEAR(sde->marginal_std_rate(tt, like)[1].item<double>(), sde->marginal_std_rate(t), 1e-12);
  }
  EXPECT_EQ(sde->has_reverse_sde(), GetParam() != SDEKind::Linear);
}

// The straight path: x_t = (1 - t) x0 + t z, velocity z - x0 at every t, the prior N(0, I) exact
// at T = 1 where f and g^2 are infinite; T above 1 is refused.
TEST(SDEFormulas, LinearPathIsStraight) {
  SDEConfig c;
  c.kind = SDEKind::Linear;
  auto sde = make_sde(c);
  for (double t : {0.0, 0.25, 0.5, 1.0}) {
    EXPECT_DOUBLE_EQ(sde->mean_coeff(t), 1 - t);
    EXPECT_DOUBLE_EQ(sde->marginal_std(t), t);
    EXPECT_EQ(sde->mean_coeff_rate(t), -1.0);
    EXPECT_EQ(sde->marginal_std_rate(t), 1.0);
  }
  EXPECT_NEAR(sde->drift_coeff(0.5), -2.0, 1e-15);
  EXPECT_NEAR(sde->diffusion_sq(0.5), 2.0, 1e-15);
  EXPECT_TRUE(std::isinf(sde->drift_coeff(1.0)));
  EXPECT_EQ(sde->prior_std(), 1.0);
  EXPECT_EQ(to_string(SDEKind::Linear), "linear");
  c.T = 1.5;
  EXPECT_THROW(make_sde(c), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(All, EverySDE, ::testing::Values(SDEKind::VP, SDEKind::SubVP, SDEKind::VE, SDEKind::CosineVP, SDEKind::Linear),
                         [](const auto& info) { return to_string(info.param); });

TEST(SDEConfigValidation, RejectsImpossibleValues) {
  SDEConfig c;
  c.beta_min = 5;
  c.beta_max = 1;
  EXPECT_THROW(make_sde(c), InvalidArgument);
  c = SDEConfig{};
  c.t_eps = 0;
  EXPECT_THROW(make_sde(c), InvalidArgument);
  c = SDEConfig{};
  c.kind = SDEKind::VE;
  c.sigma_max = 0.001;
  EXPECT_THROW(make_sde(c), InvalidArgument);
  EXPECT_THROW(sde_kind_from_string("vpp"), InvalidArgument);
}
