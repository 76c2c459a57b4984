// Euler-Maruyama with exact scores reproduces the data distribution.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "sbgm/data/toy.hpp"
#include "sbgm/sample/ancestral.hpp"
#include "sbgm/sample/edm_heun.hpp"
#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/sample/predictor_corrector.hpp"
#include "sbgm/sample/probability_flow.hpp"
#include "sbgm/score/mixture_score.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {
class SamplerEverySDE : public ::testing::TestWithParam<SDEKind> {};
const auto kDouble = at::TensorOptions().dtype(at::kDouble);
}  // namespace

// Gaussian data N(mu, Sigma) with the exact score of its diffused marginals: the samples' mean
// and covariance match within Monte-Carlo error (plus the O(h) discretisation error).
TEST_P(SamplerEverySDE, ExactScoreReproducesGaussianMoments) {
  SDEConfig c;
  c.kind = GetParam();
  c.sigma_max = 10.0;
  c.t_eps = 1e-4;
  std::shared_ptr<const SDE> sde = make_sde(c);
  const at::Tensor mu = at::tensor({1.0, -2.0}, kDouble).reshape({1, 2});
  const at::Tensor cov = at::tensor({0.5, 0.3, 0.3, 0.8}, kDouble).reshape({1, 2, 2});
  GaussianMixtureScore score(GaussianMixture(at::ones({1}, kDouble), mu, cov), sde);
  EulerMaruyama sampler({1000, true});
  DrawConfig draw;
  draw.n = 20000;
  const at::Tensor x = draw_samples(sampler, score, *sde, {2}, draw, at::Tensor(), make_generator(at::kCPU, 3), kDouble);
  const at::Tensor mean = x.mean(0);
  const at::Tensor centered = x - mean;
  const at::Tensor sample_cov = centered.t().matmul(centered) / (draw.n - 1);
  const double se = std::sqrt(0.8 / draw.n);
  EXPECT_NEAR(mean[0].item<double>(), 1.0, 5 * se + 0.02);
  EXPECT_NEAR(mean[1].item<double>(), -2.0, 5 * se + 0.02);
  EXPECT_NEAR(sample_cov[0][0].item<double>(), 0.5, 0.04);
  EXPECT_NEAR(sample_cov[0][1].item<double>(), 0.3, 0.04);
  EXPECT_NEAR(sample_cov[1][1].item<double>(), 0.8, 0.05);
}

INSTANTIATE_TEST_SUITE_P(All, SamplerEverySDE, ::testing::Values(SDEKind::VP, SDEKind::SubVP, SDEKind::VE, SDEKind::CosineVP),
                         [](const auto& info) { return to_string(info.param); });

// The ring of 8 Gaussians: every mode gets its 1/8 share.
TEST(EulerMaruyama, ExactScoreCoversEveryModeOfRing8) {
  std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
  const GaussianMixture ring = *toy_dataset_mixture("ring8");
  GaussianMixtureScore score(ring, sde);
  EulerMaruyama sampler({500, true});
  DrawConfig draw;
  draw.n = 8000;
  draw.chunk_size = 3000;  // exercises chunking
  const at::Tensor x = draw_samples(sampler, score, *sde, {2}, draw, at::Tensor(), make_generator(at::kCPU, 5), kDouble);
  const at::Tensor modes = ring.responsibilities(x).argmax(1);
  const at::Tensor counts = at::bincount(modes, {}, 8).to(at::kDouble) / draw.n;
  for (int k = 0; k < 8; ++k) EXPECT_NEAR(counts[k].item<double>(), 0.125, 0.02) << "mode " << k;
  // Mean log-density under the truth is that of true samples.
  const double model_lp = ring.log_prob(x).mean().item<double>();
  const double true_lp = ring.log_prob(ring.sample(draw.n, make_generator(at::kCPU, 9)).to(at::kDouble)).mean().item<double>();
  EXPECT_NEAR(model_lp, true_lp, 0.1);
}

TEST(EulerMaruyama, SameSeedSameSamples) {
  std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
  GaussianMixtureScore score(*toy_dataset_mixture("bimodal1d"), sde);
  EulerMaruyama sampler({50, true});
  DrawConfig draw;
  draw.n = 100;
  auto run = [&](uint64_t seed) {
    return draw_samples(sampler, score, *sde, {1}, draw, at::Tensor(), make_generator(at::kCPU, seed), kDouble);
  };
  EXPECT_TRUE(at::equal(run(11), run(11)));
  EXPECT_FALSE(at::equal(run(11), run(12)));
}

// Predictor-corrector with exact scores reproduces Gaussian moments for VP and VE, and its
// Langevin steps pull a too-coarse predictor back towards the target.
TEST(PredictorCorrector, ExactScoreReproducesGaussianMoments) {
  for (auto kind : {SDEKind::VP, SDEKind::VE}) {
    SDEConfig c;
    c.kind = kind;
    c.sigma_max = 10.0;
    c.t_eps = 1e-3;
    std::shared_ptr<const SDE> sde = make_sde(c);
    const at::Tensor mu = at::tensor({1.0, -2.0}, kDouble).reshape({1, 2});
    const at::Tensor cov = at::tensor({0.5, 0.3, 0.3, 0.8}, kDouble).reshape({1, 2, 2});
    GaussianMixtureScore score(GaussianMixture(at::ones({1}, kDouble), mu, cov), sde);
    PredictorCorrector sampler({200, PredictorKind::EulerMaruyama, 1, 0.16, true});
    DrawConfig draw;
    draw.n = 20000;
    const at::Tensor x = draw_samples(sampler, score, *sde, {2}, draw, at::Tensor(), make_generator(at::kCPU, 3), kDouble);
    const at::Tensor centered = x - x.mean(0);
    const at::Tensor sc = centered.t().matmul(centered) / (draw.n - 1);
    EXPECT_NEAR(x.mean(0)[0].item<double>(), 1.0, 0.04) << to_string(kind);
    EXPECT_NEAR(x.mean(0)[1].item<double>(), -2.0, 0.04) << to_string(kind);
    EXPECT_NEAR(sc[0][0].item<double>(), 0.5, 0.05) << to_string(kind);
    EXPECT_NEAR(sc[0][1].item<double>(), 0.3, 0.05) << to_string(kind);
    EXPECT_NEAR(sc[1][1].item<double>(), 0.8, 0.06) << to_string(kind);
  }
}

namespace {
// N(mu, Sigma) as a one-component mixture, its exact diffused score, and draws from a sampler.
struct GaussianCase {
  at::Tensor mu = at::tensor({1.0, -2.0}, kDouble).reshape({1, 2});
  at::Tensor cov = at::tensor({0.5, 0.3, 0.3, 0.8}, kDouble).reshape({1, 2, 2});
  std::shared_ptr<const SDE> sde;
  std::unique_ptr<GaussianMixtureScore> score;

  explicit GaussianCase(SDEKind kind) {
    SDEConfig c;
    c.kind = kind;
    // A deterministic sampler carries the prior's mismatch through: the VE flow shrinks a mean
    // offset only by sqrt(Sigma + sigma_min^2) / sigma_max (0.15 here with sigma_max = 10).
    c.sigma_max = 100.0;
    c.t_eps = 1e-4;
    sde = make_sde(c);
    score = std::make_unique<GaussianMixtureScore>(GaussianMixture(at::ones({1}, kDouble), mu, cov), sde);
  }
  at::Tensor draw(Sampler& sampler, int64_t n, uint64_t seed) {
    DrawConfig draw;
    draw.n = n;
    return draw_samples(sampler, *score, *sde, {2}, draw, at::Tensor(), make_generator(at::kCPU, seed), kDouble);
  }
  void expect_moments(const at::Tensor& x, double tol, const std::string& what) {
    const at::Tensor centered = x - x.mean(0);
    const at::Tensor c = centered.t().matmul(centered) / (x.size(0) - 1);
    EXPECT_NEAR(x.mean(0)[0].item<double>(), 1.0, tol) << what;
    EXPECT_NEAR(x.mean(0)[1].item<double>(), -2.0, tol) << what;
    EXPECT_NEAR(c[0][0].item<double>(), 0.5, tol) << what;
    EXPECT_NEAR(c[0][1].item<double>(), 0.3, tol) << what;
    EXPECT_NEAR(c[1][1].item<double>(), 0.8, 1.2 * tol) << what;
  }
};
}  // namespace

// Ancestral sampling (the DDPM / SMLD posterior step written for any linear SDE) and the
// ancestral-predictor PC reproduce Gaussian moments for every SDE.
TEST_P(SamplerEverySDE, AncestralReproducesGaussianMoments) {
  GaussianCase g(GetParam());
  AncestralSampler ancestral({500, true});
  g.expect_moments(g.draw(ancestral, 20000, 4), 0.04, "ancestral");
  PredictorCorrector pc({200, PredictorKind::Ancestral, 1, 0.16, true});
  g.expect_moments(g.draw(pc, 20000, 5), 0.05, "pc with ancestral predictor");
}

// EDM's Heun sampler is a second-order solver of the probability-flow ODE: against the flow map
// computed by dopri5 at tight tolerance from the same prior draws, doubling the levels divides
// the error by about 4. With 64 levels (127 evaluations) it reproduces the moments. (EDM's 18
// levels are too coarse for this narrow Gaussian: an independent NumPy run of the same
// algorithm gives variance 0.563 for 0.5, as this code does; docs/samplers.md has the numbers.)
TEST_P(SamplerEverySDE, EDMHeunIsSecondOrderAndReproducesMoments) {
  GaussianCase g(GetParam());
  const at::Tensor x_T = g.sde->prior_sample({200, 2}, make_generator(at::kCPU, 7), kDouble);
  SolverConfig tight;
  tight.rtol = tight.atol = 1e-10;
  ProbabilityFlowSampler exact(tight);
  const at::Tensor want = exact.run(*g.score, *g.sde, x_T.clone(), at::Tensor(), make_generator(at::kCPU, 0), {});
  std::vector<double> errors;
  for (int64_t levels : {16, 32, 64}) {
    EDMHeunSampler edm({levels});
    EXPECT_EQ(edm.evaluations(), 2 * levels - 1);
    const at::Tensor got = edm.run(*g.score, *g.sde, x_T.clone(), at::Tensor(), make_generator(at::kCPU, 0), {});
    errors.push_back((got - want).abs().max().item<double>());
  }
  for (size_t i = 1; i < errors.size(); ++i) {
    const double order = std::log2(errors[i - 1] / errors[i]);
    EXPECT_GT(order, 1.6) << to_string(GetParam()) << " errors " << errors[i - 1] << " -> " << errors[i];
  }
  EDMHeunSampler edm64({64});
  g.expect_moments(g.draw(edm64, 20000, 8), 0.04, "edm 64 levels");
}

TEST(EDMHeunSampler, ScheduleAndChurn) {
  auto sde = make_sde(SDEConfig{});
  EDMHeunSampler edm({10, 7.0});
  const std::vector<double> s = edm.noise_levels(*sde);
  ASSERT_EQ(s.size(), 11u);
  EXPECT_NEAR(s.front(), sde->noise_to_signal(sde->T()), 1e-9 * s.front());
  EXPECT_NEAR(s[9], sde->noise_to_signal(sde->t_eps()), 1e-12);
  EXPECT_EQ(s.back(), 0.0);
  for (size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i], s[i - 1]);
  // The stochastic variant still samples the Gaussian.
  GaussianCase g(SDEKind::VP);
  EDMHeunConfig churned;
  churned.steps = 64;
  churned.churn = 20;
  EDMHeunSampler stochastic(churned);
  g.expect_moments(g.draw(stochastic, 20000, 9), 0.05, "edm with churn");
  EXPECT_THROW(EDMHeunSampler({10, -1.0}), std::exception);
}

// record_trajectories: the prior draw at T, then one state per step down to t_eps, and the
// path's end is the sampler's result for the same draw and noise.
TEST(Trajectories, RecordEveryStepOfTheReverseProcess) {
  auto sde = std::shared_ptr<const SDE>(make_sde(SDEConfig{}));
  GaussianMixtureScore score(GaussianMixture(at::ones({1}, at::kDouble), at::zeros({1, 2}, at::kDouble),
                                             at::eye(2, at::kDouble).unsqueeze(0) * 0.3),
                             sde);
  EulerMaruyama sampler({20, true});
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  const Trajectories paths = record_trajectories(sampler, score, *sde, {2}, 4, at::Tensor(), make_generator(at::kCPU, 9), opts);
  ASSERT_EQ(paths.times.size(), 21u);
  ASSERT_EQ(paths.states.sizes(), (std::vector<int64_t>{21, 4, 2}));
  EXPECT_DOUBLE_EQ(paths.times.front(), sde->T());
  EXPECT_DOUBLE_EQ(paths.times.back(), sde->t_eps());
  for (size_t i = 1; i < paths.times.size(); ++i) EXPECT_LT(paths.times[i], paths.times[i - 1]);
  at::Generator gen = make_generator(at::kCPU, 9);
  const at::Tensor x = sde->prior_sample({4, 2}, gen, opts);
  EXPECT_TRUE(at::equal(paths.states[0], x));
  const at::Tensor end = sampler.run(score, *sde, x.clone(), at::Tensor(), gen, {});
  EXPECT_TRUE(at::allclose(paths.states[20], end, 1e-12, 1e-12));
}
