// Conditional models: conditional mixtures (the analytic reference), sampling and likelihoods
// given a condition, classifier-free guidance, training a conditional network, and inverse
// problems (inpainting, denoising) with an unconditional model.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <filesystem>

#include "sbgm/io/npy.hpp"
#include "scratch_dir.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/nets/condition.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/run/inpaint.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/training_run.hpp"
#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/sample/probability_flow.hpp"
#include "sbgm/score/mixture_score.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

// theta ~ N(m0, S0) in R^3, x = H theta + N(0, R) in R^2.
struct LinearGaussianModel {
  at::Tensor m0 = at::tensor({0.5, -1.0, 0.0}, kDouble);
  at::Tensor S0 = at::tensor({1.0, 0.3, 0.0, 0.3, 0.8, -0.2, 0.0, -0.2, 0.5}, kDouble).reshape({3, 3});
  at::Tensor H = at::tensor({1.0, 0.5, 0.0, 0.0, -1.0, 2.0}, kDouble).reshape({2, 3});
  at::Tensor R = at::tensor({0.2, 0.05, 0.05, 0.3}, kDouble).reshape({2, 2});

  // The posterior by conditioning the joint Gaussian of (theta, x) (the Schur complement: a
  // different route from linear_gaussian_posterior's information form).
  std::pair<at::Tensor, at::Tensor> posterior(const at::Tensor& x) const {
    const at::Tensor gain = at::matmul(at::matmul(S0, H.t()), at::linalg_inv(at::matmul(at::matmul(H, S0), H.t()) + R));
    return {m0 + at::matmul(gain, x - at::matmul(H, m0)), S0 - at::matmul(at::matmul(gain, H), S0)};
  }
};

// sigma_max far above the posterior means: the ODE carries the prior's mismatch with p_T into the
// samples, a mean error of about |mean| sqrt(var / sigma_max^2) (0.1 for the means here at 10).
std::shared_ptr<const SDE> sde_of(SDEKind kind) {
  SDEConfig c;
  c.kind = kind;
  c.sigma_max = 100.0;
  c.t_eps = 1e-4;
  return make_sde(c);
}

// Sample mean and covariance of rows [n, d] against a Gaussian's, entry by entry within five
// Monte-Carlo standard errors plus an allowance for the sampler's discretisation.
void expect_gaussian_moments(const at::Tensor& x, const at::Tensor& mean, const at::Tensor& cov, double bias,
                             const std::string& what) {
  const int64_t n = x.size(0), d = x.size(1);
  const at::Tensor m = x.mean(0), c = x - m;
  const at::Tensor sample_cov = c.t().matmul(c) / (n - 1);
  for (int64_t i = 0; i < d; ++i) {
    const double v = cov[i][i].item<double>();
    EXPECT_NEAR(m[i].item<double>(), mean[i].item<double>(), 5 * std::sqrt(v / n) + bias) << what << " mean " << i;
    for (int64_t j = 0; j < d; ++j) {
      const double cij = cov[i][j].item<double>();
      const double se = std::sqrt((v * cov[j][j].item<double>() + cij * cij) / n);
      EXPECT_NEAR(sample_cov[i][j].item<double>(), cij, 5 * se + bias) << what << " cov " << i << "," << j;
    }
  }
}

}  // namespace

TEST(ConditionInput, PresentAbsentAndDroppedRows) {
  const at::Tensor y = at::tensor({1.0, 2.0, 3.0, 4.0}, kDouble).reshape({2, 2});
  EXPECT_FALSE(ConditionInput{}.present(y).defined());
  EXPECT_TRUE(at::equal(ConditionInput{2, false}.present(y), y));
  const ConditionInput droppable{2, true};
  EXPECT_EQ(droppable.net_dim(), 3);
  EXPECT_TRUE(at::equal(droppable.present(y), at::tensor({1.0, 2.0, 1.0, 3.0, 4.0, 1.0}, kDouble).reshape({2, 3})));
  EXPECT_TRUE(at::equal(droppable.absent(2, kDouble), at::zeros({2, 3}, kDouble)));
  EXPECT_TRUE(at::equal(droppable.dropped(y, at::tensor({0.0, 1.0}, kDouble)),
                        at::tensor({0.0, 0.0, 0.0, 3.0, 4.0, 1.0}, kDouble).reshape({2, 3})));
  EXPECT_THROW(ConditionInput({3, false}).present(y), InvalidArgument);
  EXPECT_THROW(ConditionInput({2, false}).present(at::Tensor()), InvalidArgument);
  EXPECT_THROW(ConditionInput({2, false}).absent(2, kDouble), InvalidArgument);
}

// A conditional mixture's score is the gradient of its log-density at every condition, and its
// diffusion moves the means' maps with the means.
TEST(ConditionalMixture, ScoreIsTheGradientOfTheLogDensity) {
  const at::Tensor maps = at::randn({2, 2, 3}, make_generator(at::kCPU, 1), kDouble);
  const GaussianMixture mixture(at::tensor({0.4, 0.6}, kDouble), at::tensor({-1.0, 0.0, 1.0, 0.5}, kDouble).reshape({2, 2}),
                                at::stack({at::eye(2, kDouble) * 0.5, at::eye(2, kDouble) * 0.3}), maps);
  EXPECT_EQ(mixture.cond_dim(), 3);
  const at::Tensor y = at::randn({5, 3}, make_generator(at::kCPU, 2), kDouble);
  for (const auto& [m, s] : {std::pair{1.0, 0.0}, std::pair{0.7, 0.6}}) {
    const GaussianMixture diffused = mixture.diffused(m, s);
    const at::Tensor x = at::randn({5, 2}, make_generator(at::kCPU, 3), kDouble).requires_grad_(true);
    const at::Tensor grad = torch::autograd::grad({diffused.log_prob(x, y).sum()}, {x})[0];
    EXPECT_TRUE(at::allclose(diffused.score(x.detach(), y), grad, 1e-9, 1e-10));
  }
  // One component: N(m (mu + A y), m^2 Sigma + s^2 I) exactly.
  const GaussianMixture one(at::ones({1}, kDouble), at::tensor({0.5, -0.5}, kDouble).reshape({1, 2}), at::eye(2, kDouble).unsqueeze(0) * 0.2,
                            maps.narrow(0, 0, 1));
  const at::Tensor x = at::tensor({0.3, 0.1}, kDouble).reshape({1, 2}), y1 = y.narrow(0, 0, 1);
  const at::Tensor mean = 0.7 * (at::tensor({0.5, -0.5}, kDouble) + at::matmul(maps[0], y1[0]));
  const double var = 0.49 * 0.2 + 0.36;
  const double want = -0.5 * (x[0] - mean).pow(2).sum().item<double>() / var - std::log(2 * M_PI * var);
  EXPECT_NEAR(one.diffused(0.7, 0.6).log_prob(x, y1).item<double>(), want, 1e-12);
  EXPECT_THROW(mixture.score(x, at::Tensor()), InvalidArgument);
  EXPECT_THROW(mixture.score(x, at::zeros({1, 2}, kDouble)), InvalidArgument);
}

// The linear-Gaussian posterior in information form equals the joint Gaussian conditioned.
TEST(ConditionalMixture, LinearGaussianPosteriorIsTheConditionedJoint) {
  const LinearGaussianModel lg;
  const GaussianMixture post = linear_gaussian_posterior(lg.m0, lg.S0, lg.H, lg.R);
  for (const at::Tensor& x : {at::tensor({0.3, -0.7}, kDouble), at::tensor({2.0, 1.0}, kDouble)}) {
    const auto [mean, cov] = lg.posterior(x);
    EXPECT_TRUE(at::allclose(post.means()[0] + at::matmul(post.cond_maps()[0], x), mean, 1e-10, 1e-12));
    EXPECT_TRUE(at::allclose(post.covs()[0], cov, 1e-10, 1e-12));
  }
}

// Sampling with the exact conditional score reproduces the Gaussian posterior's mean and
// covariance for every observation, through the reverse SDE and through the probability-flow ODE.
class ConditionalSamplingEverySDE : public ::testing::TestWithParam<SDEKind> {};

TEST_P(ConditionalSamplingEverySDE, ExactScoreReproducesTheGaussianPosterior) {
  const LinearGaussianModel lg;
  std::shared_ptr<const SDE> sde = sde_of(GetParam());
  GaussianMixtureScore score(linear_gaussian_posterior(lg.m0, lg.S0, lg.H, lg.R), sde);
  const at::Tensor observations = at::tensor({0.3, -0.7, 2.0, 1.0}, kDouble).reshape({2, 2});
  constexpr int64_t kPerObservation = 6000;
  const at::Tensor y = observations.repeat_interleave(kPerObservation, 0);
  DrawConfig draw;
  draw.n = y.size(0);
  EulerMaruyama em({1000, true});
  ProbabilityFlowSampler ode(SolverConfig{});
  for (Sampler* sampler : {static_cast<Sampler*>(&em), static_cast<Sampler*>(&ode)}) {
    const at::Tensor x = draw_samples(*sampler, score, *sde, {3}, draw, y, make_generator(at::kCPU, 4), kDouble);
    for (int64_t i = 0; i < observations.size(0); ++i) {
      const auto [mean, cov] = lg.posterior(observations[i]);
      expect_gaussian_moments(x.narrow(0, i * kPerObservation, kPerObservation), mean, cov, 0.02,
                              to_string(GetParam()) + (sampler == &em ? " em" : " ode") + " observation " + std::to_string(i));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, ConditionalSamplingEverySDE, ::testing::Values(SDEKind::VP, SDEKind::SubVP, SDEKind::VE),
                         [](const auto& info) { return to_string(info.param); });

// log p(theta | x) through the probability-flow ODE equals the posterior's density: exactly
// (to the solver's tolerance) when the chain starts from the diffused posterior at T, and up to
// the prior mismatch with the SDE's prior.
TEST(ConditionalLikelihood, MatchesTheGaussianPosteriorDensity) {
  const LinearGaussianModel lg;
  const GaussianMixture post = linear_gaussian_posterior(lg.m0, lg.S0, lg.H, lg.R);
  const Model model = mixture_model(post, SDEConfig{});
  GaussianMixtureScore score(post, model.sde);
  const at::Tensor obs = at::randn({6, 2}, make_generator(at::kCPU, 5), kDouble);
  const at::Tensor theta = post.sample(6, make_generator(at::kCPU, 6), obs).to(at::kDouble);
  const at::Tensor truth = post.log_prob(theta, obs);
  LikelihoodConfig lc;
  lc.solver.rtol = lc.solver.atol = 1e-8;
  for (bool per_row : {false, true}) {  // per row: each row's condition follows it
    lc.solver.per_row = per_row;
    const LikelihoodResult r = model_log_likelihood(model, theta, lc, 0, {}, obs);
    const at::Tensor flow = r.log_prob - model.sde->prior_log_prob(r.x_T).to(at::kDouble);
    EXPECT_LT((score.log_prob(r.x_T, model.sde->T(), obs) + flow - truth).abs().max().item<double>(), 1e-4);
    EXPECT_LT((r.log_prob - truth).abs().max().item<double>(), 0.05);
    // One row of conditions stands for every row.
    const LikelihoodResult one = model_log_likelihood(model, theta, lc, 0, {}, obs.narrow(0, 0, 1));
    const at::Tensor first = obs.narrow(0, 0, 1).expand({6, 2});
    const at::Tensor one_flow = one.log_prob - model.sde->prior_log_prob(one.x_T).to(at::kDouble);
    EXPECT_LT(
        (score.log_prob(one.x_T, model.sde->T(), first) + one_flow - post.log_prob(theta, first)).abs().max().item<double>(),
        1e-4);
  }
  lc.solver.per_row = false;
  EXPECT_THROW(model_log_likelihood(model, theta, lc, 0), InvalidArgument);
  EXPECT_THROW(model_log_likelihood(model, theta, lc, 0, {}, obs.narrow(0, 0, 4)), InvalidArgument);
  EXPECT_THROW(model_log_likelihood(model, theta, lc, 0, {}, at::zeros({6, 3}, kDouble)), InvalidArgument);
}

// Guided scores and divergences are (1 + w) times the conditional ones minus w times the
// unconditional ones, whichever way the divergence is computed (autograd below 8 features,
// forward tangents from 8).
TEST(ClassifierFreeGuidance, CombinesConditionalAndUnconditionalScores) {
  for (const int64_t d : {int64_t{2}, int64_t{8}}) {
    NetConfig config;
    config.width = 16;
    config.depth = 2;
    config.activation = Activation::SiLU;
    const ConditionInput condition{3, true};
    auto net = make_score_net(config, {d}, condition.net_dim());
    net->to(at::kDouble);
    std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
    const double w = 1.5;
    NetworkScore guided(net, sde, config.output, condition, w);
    NetworkScore plain(net, sde, config.output, condition, 0);
    NetworkScore unconditional(net, sde, config.output, condition, -1);
    const at::Tensor x = at::randn({4, d}, make_generator(at::kCPU, 7), kDouble);
    const at::Tensor t = at::full({4}, 0.3, kDouble), y = at::randn({4, 3}, make_generator(at::kCPU, 8), kDouble);
    const auto g = guided.score_and_divergence(x, t, y), c = plain.score_and_divergence(x, t, y),
               u = unconditional.score_and_divergence(x, t, y);
    EXPECT_TRUE(at::allclose(g.score, (1 + w) * c.score - w * u.score, 1e-10, 1e-10));
    EXPECT_TRUE(at::allclose(g.divergence, (1 + w) * c.divergence - w * u.divergence, 1e-8, 1e-8));
    EXPECT_TRUE(at::allclose(guided.score(x, t, y), g.score, 1e-10, 1e-10));
    // The unconditional score ignores y.
    EXPECT_TRUE(at::allclose(unconditional.score(x, t, y), unconditional.score(x, t, at::zeros_like(y)), 1e-12, 1e-12));
    EXPECT_THROW(NetworkScore(net, sde, config.output, ConditionInput{3, false}, w), InvalidArgument);
  }
}

// A conditional network trained with condition dropout learns both p(x | y) and p(x): for
// x = y + 0.3 n with y ~ U(-2, 2), samples given y = +-1.5 have mean +-1.5 and std 0.3, and the
// unconditional model (w = -1) has the marginal's mean 0 and std sqrt(4/3 + 0.09).
TEST(ConditionalTraining, LearnsTheConditionalAndTheMarginal) {
  const fs::path dir = scratch_dir("conditional");
  fs::create_directories(dir);
  at::Generator gen = make_generator(at::kCPU, 11);
  const at::Tensor y = at::rand({4000, 1}, gen, kDouble) * 4 - 2;
  const at::Tensor x = y + 0.3 * at::randn({4000, 1}, gen, kDouble);
  write_npy((dir / "x.npy").string(), x);
  write_npy((dir / "y.npy").string(), y);
  RunConfig c;
  c.data.file = (dir / "x.npy").string();
  c.data.cond = (dir / "y.npy").string();
  c.model.width = 64;
  c.model.depth = 3;
  c.train.steps = 3000;
  c.train.batch_size = 256;
  c.train.lr = 3e-3;
  c.train.cond_dropout = 0.2;
  c.train.checkpoint_every = 0;
  c.sample.n = 100;
  c.sample.steps = 50;
  c.threads = 2;
  train_run(c, (dir / "run").string(), false);
  Model model = load_model((dir / "run").string());
  EXPECT_EQ(model.cond_dim, 1);
  EulerMaruyama em({200, true});
  const at::Tensor given = sample_model_given(model, em, at::tensor({-1.5, 1.5}, kDouble).reshape({2, 1}), 2000, 1);
  ASSERT_EQ(given.sizes(), (std::vector<int64_t>{2, 2000, 1}));
  for (int64_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(given[i].mean().item<double>(), i == 0 ? -1.5 : 1.5, 0.12) << i;
    EXPECT_NEAR(given[i].std().item<double>(), 0.3, 0.08) << i;
  }
  const at::Tensor marginal = sample_model_given(model, em, at::zeros({1, 1}, kDouble), 4000, 2, {}, ScoreOptions{-1});
  EXPECT_NEAR(marginal.mean().item<double>(), 0.0, 0.15);
  EXPECT_NEAR(marginal.std().item<double>(), std::sqrt(4.0 / 3 + 0.09), 0.15);
  EXPECT_THROW(sample_model(model, em, 10, 0), InvalidArgument);
  fs::remove_all(dir);
}

namespace {

// x ~ N(mu, S) in R^3 as an analytic model.
struct GaussianPrior {
  at::Tensor mu = at::tensor({0.3, -0.2, 0.1}, kDouble);
  at::Tensor S = at::tensor({1.0, 0.8, 0.3, 0.8, 1.0, 0.5, 0.3, 0.5, 1.0}, kDouble).reshape({3, 3});
  Model model(const at::Tensor& cov) const {
    SDEConfig c;
    c.t_eps = 1e-4;
    return mixture_model(GaussianMixture(at::ones({1}, kDouble), mu.unsqueeze(0), cov.unsqueeze(0)), c);
  }
};

InpaintConfig inpaint_config(InverseMethod method, double noise_std, int64_t n) {
  InpaintConfig c;
  c.method = method;
  c.noise_std = noise_std;
  c.n = n;
  c.sampler.steps = 500;
  return c;
}

}  // namespace

// Inpainting a correlated Gaussian by moment projection reproduces the conditional Gaussian of
// the unobserved feature given the observed two, for a mask per row; observed features are the
// observation itself.
TEST(Inpainting, MomentProjectionIsExactForGaussianData) {
  const GaussianPrior g;
  const Model model = g.model(g.S);
  const at::Tensor observed = at::tensor({1.0, NAN, -0.5, NAN, 0.7, 0.2}, kDouble).reshape({2, 3});
  const at::Tensor mask = at::tensor({1.0, 0.0, 1.0, 0.0, 1.0, 1.0}, kDouble).reshape({2, 3});
  constexpr int64_t kN = 4000;
  const at::Tensor x = model_inpaint(model, observed, mask, inpaint_config(InverseMethod::Moments, 0, kN), 3);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{2, kN, 3}));
  for (int64_t row = 0; row < 2; ++row) {
    const at::Tensor k = mask[row].nonzero().squeeze(1), u = (1 - mask[row]).nonzero().squeeze(1);
    const at::Tensor gain = at::matmul(g.S.index({u}).index_select(1, k), at::linalg_inv(g.S.index({k}).index_select(1, k)));
    const at::Tensor mean = g.mu.index({u}) + at::matmul(gain, observed[row].index({k}) - g.mu.index({k}));
    const at::Tensor cov = g.S.index({u}).index_select(1, u) - at::matmul(gain, g.S.index({k}).index_select(1, u));
    expect_gaussian_moments(x[row].index_select(1, u), mean, cov, 0.02, "row " + std::to_string(row));
    EXPECT_TRUE(at::equal(x[row].index_select(1, k), observed[row].index({k}).expand({kN, -1})));
  }
}

// Denoising y = x + sigma_y n (every feature observed) reproduces the Gaussian posterior
// N(mu + S (S + sigma_y^2 I)^-1 (y - mu), S - S (S + sigma_y^2 I)^-1 S), by moment projection and
// by starting the reverse process at the observation's noise level.
TEST(Inpainting, DenoisingGaussianDataIsExact) {
  const GaussianPrior g;
  const Model model = g.model(g.S);
  const double sy = 0.5;
  const at::Tensor y = at::tensor({1.0, -0.5, 0.4}, kDouble);
  constexpr int64_t kN = 6000;
  const at::Tensor gain = at::matmul(g.S, at::linalg_inv(g.S + sy * sy * at::eye(3, kDouble)));
  for (const InverseMethod method : {InverseMethod::Moments, InverseMethod::NoiseLevel}) {
    const at::Tensor x = model_inpaint(model, y.unsqueeze(0), at::ones({3}, kDouble), inpaint_config(method, sy, kN), 4);
    expect_gaussian_moments(x[0], g.mu + at::matmul(gain, y - g.mu), g.S - at::matmul(gain, g.S), 0.02, to_string(method));
  }
}

// Replacement (Song et al. 2021) is exact when observed and unobserved features are independent
// (the unobserved score then ignores the observed ones); the observed features are y exactly.
TEST(Inpainting, ReplacementIsExactForIndependentFeatures) {
  const GaussianPrior g;
  at::Tensor cov = g.S.clone();
  cov[0][1] = cov[1][0] = cov[1][2] = cov[2][1] = 0.0;  // feature 1 independent of features 0 and 2
  const Model model = g.model(cov);
  const at::Tensor observed = at::tensor({1.0, 0.0, -0.5}, kDouble).reshape({1, 3});
  constexpr int64_t kN = 6000;
  const at::Tensor x = model_inpaint(model, observed, at::tensor({1.0, 0.0, 1.0}, kDouble),
                                     inpaint_config(InverseMethod::Replace, 0, kN), 5);
  expect_gaussian_moments(x[0].narrow(1, 1, 1), g.mu.narrow(0, 1, 1), cov.narrow(0, 1, 1).narrow(1, 1, 1), 0.02, "free");
  EXPECT_TRUE(at::equal(x[0].select(1, 0), at::full({kN}, 1.0, kDouble)));
  EXPECT_TRUE(at::equal(x[0].select(1, 2), at::full({kN}, -0.5, kDouble)));
}

// Denoising at the observation's noise level is exact for data that is not Gaussian too: a
// bimodal mixture, whose posterior given y = x + s n is
// the mixture of the components' Gaussian posteriors, reweighted by how well each explains y.
TEST(Inpainting, NoiseLevelDenoisesABimodalMixtureExactly) {
  const at::Tensor means = at::tensor({-1.5, 1.5}, kDouble), var = at::full({2}, 0.09, kDouble);
  const double y = 0.4, sy = 0.8;
  const at::Tensor total = var + sy * sy;
  const at::Tensor log_w = -0.5 * (y - means).pow(2) / total - 0.5 * at::log(total);
  const at::Tensor w = at::softmax(log_w, 0);
  const at::Tensor m = means + var / total * (y - means), c = var * (sy * sy) / total;
  const double mean = (w * m).sum().item<double>();
  const double variance = (w * (c + m * m)).sum().item<double>() - mean * mean;
  for (const SDEKind kind : {SDEKind::VP, SDEKind::VE}) {
    SDEConfig sde;
    sde.kind = kind;
    sde.t_eps = 1e-4;
    const Model model = mixture_model(
        GaussianMixture(at::full({2}, 0.5, kDouble), means.unsqueeze(1), var.reshape({2, 1, 1})), sde);
    constexpr int64_t kN = 8000;
    InpaintConfig config = inpaint_config(InverseMethod::NoiseLevel, sy, kN);
    config.sampler.steps = 1000;
    const at::Tensor x = model_inpaint(model, at::full({1, 1}, y, kDouble), at::ones({1}, kDouble), config, 7)[0];
    const double sd = std::sqrt(variance);
    EXPECT_NEAR(x.mean().item<double>(), mean, 5 * sd / std::sqrt(kN) + 0.01) << to_string(kind);
    EXPECT_NEAR(x.var().item<double>(), variance, 0.03 * variance + 0.01) << to_string(kind);
    // The posterior is bimodal: the share of samples on the right matches the right component's weight.
    EXPECT_NEAR((x > 0).to(kDouble).mean().item<double>(), w[1].item<double>(), 0.03) << to_string(kind);
  }
}

TEST(Inpainting, NoiseLevelRefusesWhatItCannotDo) {
  const GaussianPrior g;
  const Model model = g.model(g.S);
  const at::Tensor observed = at::zeros({1, 3}, kDouble), all = at::ones({3}, kDouble);
  const InpaintConfig ok = inpaint_config(InverseMethod::NoiseLevel, 0.3, 1);
  EXPECT_NO_THROW(model_inpaint(model, observed, all, ok, 0));
  EXPECT_THROW(model_inpaint(model, observed, at::tensor({1.0, 0.0, 1.0}, kDouble), ok, 0), InvalidArgument);
  EXPECT_THROW(model_inpaint(model, observed, all, inpaint_config(InverseMethod::NoiseLevel, 0, 1), 0), InvalidArgument);
  EXPECT_THROW(model_inpaint(model, observed, all, inpaint_config(InverseMethod::NoiseLevel, 1e-6, 1), 0), InvalidArgument);
  InpaintConfig ode = ok;
  ode.sampler.kind = SamplerKind::ProbabilityFlow;
  EXPECT_THROW(model_inpaint(model, observed, all, ode, 0), InvalidArgument);
}

TEST(Inpainting, DefaultMethodFitsTheDataSize) {
  const at::Tensor all = at::ones({1, 28, 28}, kDouble), some = at::zeros({1, 28, 28}, kDouble);
  EXPECT_EQ(default_inverse_method(3, at::ones({3}, kDouble), 0.5), InverseMethod::Moments);
  EXPECT_EQ(default_inverse_method(kMomentsMaxFeatures, at::ones({3}, kDouble), 0), InverseMethod::Moments);
  EXPECT_EQ(default_inverse_method(784, some, 0), InverseMethod::Replace);
  EXPECT_EQ(default_inverse_method(784, all, 0.1), InverseMethod::NoiseLevel);
  EXPECT_EQ(default_inverse_method(784, some, 0.1), InverseMethod::Moments);
}

TEST(Inpainting, RejectsBadObservations) {
  const GaussianPrior g;
  const Model model = g.model(g.S);
  const at::Tensor observed = at::zeros({2, 3}, kDouble), mask = at::tensor({1.0, 0.0, 1.0}, kDouble);
  const InpaintConfig moments = inpaint_config(InverseMethod::Moments, 0, 1);
  EXPECT_THROW(model_inpaint(model, observed, at::ones({2}, kDouble), moments, 0), InvalidArgument);
  EXPECT_THROW(model_inpaint(model, observed, at::full({3}, 0.5, kDouble), moments, 0), InvalidArgument);
  EXPECT_THROW(model_inpaint(model, at::zeros({2, 4}, kDouble), mask, moments, 0), InvalidArgument);
  at::Tensor nan = observed.clone();
  nan[1][0] = NAN;
  EXPECT_THROW(model_inpaint(model, nan, mask, moments, 0), InvalidArgument);
  nan[1][0] = 0.0;
  nan[1][1] = NAN;  // unobserved: fine
  EXPECT_NO_THROW(model_inpaint(model, nan, mask, moments, 0));
  EXPECT_THROW(model_inpaint(model, observed, mask, inpaint_config(InverseMethod::Replace, 0.1, 1), 0), InvalidArgument);
  EXPECT_THROW(model_inpaint(model, observed, mask, inpaint_config(InverseMethod::Moments, -1, 1), 0), InvalidArgument);
  InpaintConfig replace_ode = inpaint_config(InverseMethod::Replace, 0, 1);
  replace_ode.sampler.kind = SamplerKind::ProbabilityFlow;  // replacement is its own Euler-Maruyama loop
  EXPECT_THROW(model_inpaint(model, observed, mask, replace_ode, 0), InvalidArgument);
}
