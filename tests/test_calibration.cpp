// Calibration checks (SBC, HPD coverage, TARP) against what they must say: an exact posterior
// is calibrated, a too narrow or shifted one is flagged, and the KS p-value is scipy's
// asymptotic one.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "sbgm/data/gaussian_mixture.hpp"
#include "sbgm/eval/calibration.hpp"
#include "sbgm/run/diagnose.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/sample/edm_heun.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

TEST(Calibration, KolmogorovSmirnovMatchesScipy) {
  // u_i = (i + 1/2) / 400 + 0.05, clipped: D = 0.05125; scipy's kstwobign.sf at Stephens'
  // corrected lambda is 0.2378185.
  const at::Tensor u = ((at::arange(400, at::kDouble) + 0.5) / 400 + 0.05).clamp(0, 1);
  const UniformityTest t = ks_uniform(u);
  EXPECT_NEAR(t.statistic, 0.05125, 1e-12);
  EXPECT_NEAR(t.p_value, 0.2378185, 1e-6);
  EXPECT_GT(ks_uniform((at::arange(400, at::kDouble) + 0.5) / 400).p_value, 0.999);
  EXPECT_LT(ks_uniform(at::rand({400}, at::kDouble) * 0.5).p_value, 1e-10);
}

TEST(Calibration, RanksAndCoverageFollowTheirDefinitions) {
  const at::Tensor samples = at::tensor({0.1, 0.5, 0.9, 0.3}, at::kDouble).reshape({1, 4, 1});
  EXPECT_EQ(sbc_ranks(samples, at::full({1, 1}, 0.4, at::kDouble)).item<int64_t>(), 2);
  const at::Tensor u = at::tensor({0.1, 0.3, 0.6, 0.95}, at::kDouble);
  EXPECT_EQ(expected_coverage(u, {0.5, 0.99}), (std::vector<double>{0.5, 1.0}));
  EXPECT_TRUE(at::allclose(central_fractions(u), at::tensor({0.8, 0.4, 0.2, 0.9}, at::kDouble)));
  // One of four samples above the truth's density, one tied (counted half).
  const at::Tensor h = hpd_fractions(at::tensor({1.0, 2.0, 3.0, 0.5}, at::kDouble).reshape({1, 4}), at::full({1}, 2.0, at::kDouble));
  EXPECT_DOUBLE_EQ(h.item<double>(), 1.5 / 4);
  EXPECT_THROW(sbc_ranks(samples, at::zeros({2, 1}, at::kDouble)), InvalidArgument);
}

namespace {

// theta ~ N(0, I_2), x = theta + N(0, I_2): the posterior is N(x / 2, I / 2). Samples from a
// posterior N(x / 2 + shift, scale^2 I / 2), L per simulation, and every check's verdict.
std::vector<CalibrationCheck> checks_of(double scale, double shift, uint64_t seed) {
  at::manual_seed(seed);
  constexpr int64_t S = 400, L = 200;
  const at::Tensor theta = at::randn({S, 2}, at::kDouble), x = theta + at::randn({S, 2}, at::kDouble);
  const at::Tensor mean = (x / 2 + shift).unsqueeze(1);
  const at::Tensor z = at::randn({S, L, 2}, at::kDouble);
  const at::Tensor samples = mean + scale * std::sqrt(0.5) * z;
  const at::Tensor u = rank_fractions(sbc_ranks(samples, theta), L);
  std::vector<CalibrationCheck> checks;
  for (int64_t d = 0; d < 2; ++d) checks.push_back(calibration_check("sbc", u.select(1, d), central_fractions(u.select(1, d))));
  // The density of the claimed posterior: a Gaussian, so log p is minus half the squared distance.
  const auto log_p = [&](const at::Tensor& t) { return -(t - mean).pow(2).sum(-1) / (scale * scale); };
  const at::Tensor h = hpd_fractions(log_p(samples), log_p(theta.unsqueeze(1)).squeeze(1));
  checks.push_back(calibration_check("hpd", h, h));
  // The references from a stream of their own: drawn from the stream theta came from they would
  // depend on the truths, which TARP must not.
  const at::Tensor f = tarp_fractions(samples, theta, make_generator(c10::kCPU, seed + 1000));
  checks.push_back(calibration_check("tarp", f, f));
  return checks;
}

}  // namespace

TEST(Calibration, AnExactPosteriorIsCalibratedAndAWrongOneIsFlagged) {
  for (const auto& c : checks_of(1.0, 0.0, 1)) {
    EXPECT_EQ(verdict(c), "calibrated") << c.name << " p " << c.test.p_value;
    EXPECT_LT(std::abs(c.mean_gap), 0.05) << c.name;
  }
  for (const auto& c : checks_of(0.6, 0.0, 2)) {
    if (c.name == "tarp") {
      EXPECT_LT(c.test.p_value, 0.01);
      continue;
    }
    EXPECT_EQ(verdict(c), "overconfident") << c.name << " p " << c.test.p_value << " gap " << c.mean_gap;
  }
  for (const auto& c : checks_of(1.6, 0.0, 3))
    if (c.name != "tarp") EXPECT_EQ(verdict(c), "underconfident") << c.name;
  // A shift of 0.57 posterior standard deviations: SBC and HPD see it clearly (TARP, with its
  // random references, less so: p = 0.03 here, and it is not asked to).
  for (const auto& c : checks_of(1.0, 0.4, 4))
    if (c.name != "tarp") EXPECT_LT(c.test.p_value, 1e-3) << c.name;
}

TEST(Calibration, DiagnoseModelOnAnExactConditionalMixture) {
  // The same linear-Gaussian posterior as a conditional mixture (mean A x with A = I / 2), sampled
  // with EDM's sampler from its exact diffused score; then a copy with half the variance.
  at::manual_seed(5);
  constexpr int64_t S = 200;
  const at::Tensor theta = at::randn({S, 2}, at::kDouble), x = theta + at::randn({S, 2}, at::kDouble);
  const auto model_with = [](double var) {
    return mixture_model(GaussianMixture(at::ones({1}, at::kDouble), at::zeros({1, 2}, at::kDouble),
                                         (var * at::eye(2, at::kDouble)).unsqueeze(0),
                                         (0.5 * at::eye(2, at::kDouble)).unsqueeze(0)),
                         SDEConfig{});
  };
  EDMHeunConfig edm;
  edm.steps = 30;
  EDMHeunSampler sampler(edm);
  DiagnoseConfig config;
  config.samples = 200;
  config.hpd_samples = 50;
  const CalibrationReport exact = diagnose_model(model_with(0.5), sampler, theta, x, config, 7);
  ASSERT_EQ(exact.checks.size(), 4u);  // sbc theta_0, sbc theta_1, hpd, tarp
  EXPECT_EQ(exact.ranks.sizes(), (std::vector<int64_t>{S, 2}));
  for (const auto& c : exact.checks) EXPECT_EQ(verdict(c), "calibrated") << c.name << " p " << c.test.p_value;
  const CalibrationReport narrow = diagnose_model(model_with(0.125), sampler, theta, x, config, 7);
  for (const auto& c : narrow.checks)
    if (c.name != "tarp") EXPECT_EQ(verdict(c), "overconfident") << c.name;

  EXPECT_THROW(diagnose_model(model_with(0.5), sampler, theta, x.narrow(0, 0, S - 1), config, 7), InvalidArgument);
  EXPECT_THROW(diagnose_model(model_with(0.5), sampler, theta.narrow(1, 0, 1), x, config, 7), InvalidArgument);
  const Model unconditional = mixture_model(
      GaussianMixture(at::ones({1}, at::kDouble), at::zeros({1, 2}, at::kDouble), at::eye(2, at::kDouble).unsqueeze(0)),
      SDEConfig{});
  EXPECT_THROW(diagnose_model(unconditional, sampler, theta, x, config, 7), InvalidArgument);
  config.hpd_samples = config.samples + 1;
  EXPECT_THROW(diagnose_model(model_with(0.5), sampler, theta, x, config, 7), InvalidArgument);
}
