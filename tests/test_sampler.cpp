// Euler-Maruyama with exact scores reproduces the data distribution.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "sbgm/data/toy.hpp"
#include "sbgm/nets/gaussian_mixture.hpp"
#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/sample/predictor_corrector.hpp"
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
    PredictorCorrector sampler({200, 1, 0.16, true});
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
