// Probability-flow sampling and log-likelihoods with exact Gaussian-mixture scores.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "error_of.hpp"
#include "sbgm/data/gaussian_mixture.hpp"
#include "sbgm/data/toy.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/run/likelihood_request.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/sample/probability_flow.hpp"
#include "sbgm/score/mixture_score.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {
const auto kDouble = at::TensorOptions().dtype(at::kDouble);
class LikelihoodEverySDE : public ::testing::TestWithParam<SDEKind> {};

std::shared_ptr<const SDE> sde_of(SDEKind kind) {
  SDEConfig c;
  c.kind = kind;
  c.sigma_max = 50.0;
  c.t_eps = 1e-3;
  return make_sde(c);
}

GaussianMixture two_d_mixture() {
  return GaussianMixture(at::tensor({0.3, 0.7}, kDouble), at::tensor({-1.0, 0.5, 1.5, -0.5}, kDouble).reshape({2, 2}),
                         at::tensor({0.3, 0.1, 0.1, 0.2, 0.5, -0.2, -0.2, 0.4}, kDouble).reshape({2, 2, 2}));
}
}  // namespace

// The flow maps p_{t_eps} onto p_T exactly, so with the exact score
// log p_{t_eps}(x) = log p_T(x_T) + Delta; checked here with the exact p_T, to solver tolerance.
TEST_P(LikelihoodEverySDE, ExactDivergenceMatchesDiffusedMixture) {
  auto sde = sde_of(GetParam());
  GaussianMixtureScore score(two_d_mixture(), sde);
  const at::Tensor x = two_d_mixture().sample(20, make_generator(at::kCPU, 4)).to(at::kDouble);
  for (bool per_row : {false, true}) {
    LikelihoodConfig c;
    c.solver.rtol = c.solver.atol = 1e-8;
    c.solver.per_row = per_row;
    const LikelihoodResult r = log_likelihood(score, *sde, x, at::Tensor(), c, make_generator(at::kCPU, 0));
    const at::Tensor with_prior = r.log_prob - sde->prior_log_prob(r.x_T).to(at::kDouble);  // Delta
    const at::Tensor exact_chain = score.log_prob(r.x_T, sde->T()).to(at::kDouble) + with_prior;
    const at::Tensor truth = score.log_prob(x, sde->t_eps()).to(at::kDouble);
    EXPECT_LT((exact_chain - truth).abs().max().item<double>(), 1e-4) << "per row " << per_row;
    // With the SDE's prior in place of p_T the error is the prior mismatch, small for these SDEs.
    EXPECT_LT((r.log_prob - truth).abs().max().item<double>(), 0.05);
    EXPECT_TRUE(at::equal(r.std_error, at::zeros_like(r.std_error)));
  }
}

// A different t in every row (per-row ODE solves) gives each row the score of the mixture
// diffused to its own t, conditional mixtures included.
TEST(GaussianMixtureScore, PerRowTimesGiveEachRowItsOwnDiffusedScore) {
  auto sde = sde_of(SDEKind::VP);
  const at::Tensor t = at::tensor({0.01, 0.3, 0.3, 0.9, 0.55}, kDouble);
  const at::Tensor x = at::randn({5, 2}, make_generator(at::kCPU, 2), kDouble);
  GaussianMixtureScore score(two_d_mixture(), sde);
  const at::Tensor together = score.score(x, t, at::Tensor());
  const GaussianMixture post = linear_gaussian_posterior(at::zeros({2}, kDouble), at::eye(2, kDouble),
                                                         at::tensor({1.0, 0.5}, kDouble).reshape({1, 2}),
                                                         at::full({1, 1}, 0.3, kDouble));
  GaussianMixtureScore conditional(post, sde);
  const at::Tensor y = at::randn({5, 1}, make_generator(at::kCPU, 3), kDouble);
  const at::Tensor conditional_together = conditional.score(x, t, y);
  for (int64_t i = 0; i < 5; ++i) {
    const at::Tensor ti = t.narrow(0, i, 1), xi = x.narrow(0, i, 1);
    EXPECT_TRUE(at::allclose(together.narrow(0, i, 1), score.score(xi, ti, at::Tensor()), 1e-10, 1e-12)) << i;
    EXPECT_TRUE(at::allclose(conditional_together.narrow(0, i, 1), conditional.score(xi, ti, y.narrow(0, i, 1)),
                             1e-10, 1e-12)) << i;
  }
}

// With error control per row, a point's log p does not depend on the points solved beside it:
// the whole batch at once gives what one point at a time gives.
TEST(Likelihood, PerRowErrorControlDoesNotDependOnTheBatch) {
  auto sde = sde_of(SDEKind::VP);
  GaussianMixtureScore score(two_d_mixture(), sde);
  const at::Tensor x = two_d_mixture().sample(12, make_generator(at::kCPU, 5)).to(at::kDouble);
  LikelihoodConfig together, alone;
  together.solver.per_row = true;
  alone.chunk_size = 1;
  const LikelihoodResult a = log_likelihood(score, *sde, x, at::Tensor(), together, make_generator(at::kCPU, 0));
  const LikelihoodResult b = log_likelihood(score, *sde, x, at::Tensor(), alone, make_generator(at::kCPU, 0));
  EXPECT_TRUE(at::allclose(a.log_prob, b.log_prob, 1e-10, 1e-10)) << a.log_prob - b.log_prob;
  EXPECT_EQ(a.stats.row_evals, b.stats.row_evals);
  EXPECT_EQ(a.stats.accepted, b.stats.accepted);
  // In one batch the whole batch takes the steps of its hardest point.
  LikelihoodConfig batch;
  const LikelihoodResult c = log_likelihood(score, *sde, x, at::Tensor(), batch, make_generator(at::kCPU, 0));
  EXPECT_EQ(c.stats.row_evals, c.stats.function_evals * x.size(0));
  EXPECT_FALSE(at::allclose(c.log_prob, b.log_prob, 1e-10, 1e-10));
}

INSTANTIATE_TEST_SUITE_P(All, LikelihoodEverySDE, ::testing::Values(SDEKind::VP, SDEKind::SubVP, SDEKind::VE, SDEKind::CosineVP, SDEKind::Linear),
                         [](const auto& info) { return to_string(info.param); });

// Hutchinson's estimate is unbiased: with many probes it agrees with the exact divergence within
// a few of its reported standard errors.
TEST(Likelihood, HutchinsonAgreesWithExactWithinItsStandardError) {
  auto sde = sde_of(SDEKind::VP);
  GaussianMixtureScore score(two_d_mixture(), sde);
  const at::Tensor x = two_d_mixture().sample(10, make_generator(at::kCPU, 8)).to(at::kDouble);
  LikelihoodConfig exact;
  const LikelihoodResult e = log_likelihood(score, *sde, x, at::Tensor(), exact, make_generator(at::kCPU, 0));
  for (auto noise : {ProbeNoise::Rademacher, ProbeNoise::Gaussian}) {
    LikelihoodConfig h;
    h.divergence = DivergenceKind::Hutchinson;
    h.probes = 64;
    h.noise = noise;
    const LikelihoodResult r = log_likelihood(score, *sde, x, at::Tensor(), h, make_generator(at::kCPU, 1));
    EXPECT_TRUE((r.std_error > 0).all().item<bool>());
    const at::Tensor z = (r.log_prob - e.log_prob).abs() / r.std_error;
    EXPECT_LT(z.max().item<double>(), 5.0) << to_string(noise);
    // Per-row steps: each row keeps its own probes as the batch shrinks, so the estimate is
    // the same one, up to the solver's tolerance.
    h.solver.per_row = true;
    const LikelihoodResult p = log_likelihood(score, *sde, x, at::Tensor(), h, make_generator(at::kCPU, 1));
    EXPECT_LT((p.log_prob - r.log_prob).abs().max().item<double>(), 1e-3) << to_string(noise);
    EXPECT_LT((p.std_error - r.std_error).abs().max().item<double>(), 1e-3) << to_string(noise);
  }
}

// Draws with their density: the ODE run down from the prior carries log q of each draw, which
// is the forward solve's log p at that draw (the same flow, integrated the other way), the exact
// diffused mixture's once p_T is the exact one, and the draws are the ODE sampler's own.
TEST_P(LikelihoodEverySDE, DrawsCarryTheirOwnLogDensity) {
  auto sde = sde_of(GetParam());
  GaussianMixtureScore score(two_d_mixture(), sde);
  for (bool per_row : {false, true}) {
    LikelihoodConfig c;
    c.solver.rtol = c.solver.atol = 1e-8;
    c.solver.per_row = per_row;
    c.chunk_size = 16;
    const DrawsWithDensity d =
        draw_with_log_likelihood(score, *sde, {2}, 40, at::Tensor(), c, make_generator(at::kCPU, 6), kDouble);
    ASSERT_EQ(d.x.sizes(), (std::vector<int64_t>{40, 2}));
    EXPECT_TRUE(at::equal(d.std_error, at::zeros_like(d.std_error)));
    const LikelihoodResult back = log_likelihood(score, *sde, d.x, at::Tensor(), c, make_generator(at::kCPU, 0));
    EXPECT_LT((d.log_prob - back.log_prob).abs().max().item<double>(), 1e-5) << "per row " << per_row;
    // With the exact p_T at the end the forward solve reaches, the chain is the mixture's density.
    const at::Tensor exact_chain =
        d.log_prob - sde->prior_log_prob(back.x_T).to(at::kDouble) + score.log_prob(back.x_T, sde->T()).to(at::kDouble);
    const at::Tensor truth = score.log_prob(d.x, sde->t_eps()).to(at::kDouble);
    EXPECT_LT((exact_chain - truth).abs().max().item<double>(), 1e-4) << "per row " << per_row;
    // The same prior draws (chunk by chunk, one generator) as the ODE sampler's, taken to the same end.
    ProbabilityFlowSampler sampler(c.solver);
    DrawConfig draw;
    draw.n = 40;
    draw.chunk_size = c.chunk_size;
    const at::Tensor x = draw_samples(sampler, score, *sde, {2}, draw, at::Tensor(), make_generator(at::kCPU, 6), kDouble);
    EXPECT_LT((x - d.x).abs().max().item<double>(), 1e-5) << "per row " << per_row;
  }
}

// With Hutchinson's divergence the draws' log q is estimated within its standard error, and the
// variational bound, which gives no density of draws, is refused.
TEST(Likelihood, DrawsWithHutchinsonsDivergence) {
  auto sde = sde_of(SDEKind::VP);
  GaussianMixtureScore score(two_d_mixture(), sde);
  LikelihoodConfig h;
  h.divergence = DivergenceKind::Hutchinson;
  h.probes = 64;
  const DrawsWithDensity d =
      draw_with_log_likelihood(score, *sde, {2}, 10, at::Tensor(), h, make_generator(at::kCPU, 2), kDouble);
  EXPECT_TRUE((d.std_error > 0).all().item<bool>());
  const LikelihoodResult e = log_likelihood(score, *sde, d.x, at::Tensor(), LikelihoodConfig{}, make_generator(at::kCPU, 0));
  EXPECT_LT(((d.log_prob - e.log_prob).abs() / d.std_error).max().item<double>(), 5.0);
  LikelihoodConfig bound;
  bound.method = LikelihoodMethod::ELBO;
  EXPECT_THROW(draw_with_log_likelihood(score, *sde, {2}, 10, at::Tensor(), bound, make_generator(at::kCPU, 2), kDouble),
               InvalidArgument);
}

// Deterministic sampling through the probability-flow ODE reproduces Gaussian moments.
TEST(ProbabilityFlowSampler, ExactScoreReproducesGaussianMoments) {
  for (auto kind : {SolverKind::Dopri5, SolverKind::Tsit5, SolverKind::Bosh3, SolverKind::Heun}) {
    auto sde = sde_of(SDEKind::VP);
    const at::Tensor mu = at::tensor({1.0, -2.0}, kDouble).reshape({1, 2});
    const at::Tensor cov = at::tensor({0.5, 0.3, 0.3, 0.8}, kDouble).reshape({1, 2, 2});
    GaussianMixtureScore score(GaussianMixture(at::ones({1}, kDouble), mu, cov), sde);
    SolverConfig sc;
    sc.kind = kind;
    sc.steps = 200;
    sc.per_row = kind == SolverKind::Dopri5;  // the other adaptive ones solve the batch as one
    ProbabilityFlowSampler sampler(sc);
    DrawConfig draw;
    draw.n = 20000;
    int64_t done_reported = -1, total_reported = 0;
    const at::Tensor x =
        draw_samples(sampler, score, *sde, {2}, draw, at::Tensor(), make_generator(at::kCPU, 3), kDouble,
                     [&](int64_t done, int64_t total) {
                       EXPECT_GE(done, done_reported);  // progress never goes back
                       done_reported = done;
                       total_reported = total;
                     });
    EXPECT_EQ(done_reported, total_reported);
    const at::Tensor centered = x - x.mean(0);
    const at::Tensor c = centered.t().matmul(centered) / (draw.n - 1);
    EXPECT_NEAR(x.mean(0)[0].item<double>(), 1.0, 0.03) << to_string(kind);
    EXPECT_NEAR(x.mean(0)[1].item<double>(), -2.0, 0.03);
    EXPECT_NEAR(c[0][0].item<double>(), 0.5, 0.03);
    EXPECT_NEAR(c[0][1].item<double>(), 0.3, 0.03);
    EXPECT_NEAR(c[1][1].item<double>(), 0.8, 0.04);
  }
}

// The MLP's forward-tangent divergence equals autograd's trace of the Jacobian, for every
// activation, data of rank > 1, and the noise parameterisation's 1/sigma.
TEST(ExactDivergence, ForwardTangentsMatchAutograd) {
  at::manual_seed(3);
  const auto sde = std::shared_ptr<const SDE>(make_sde(SDEConfig{}));
  for (Activation a : {Activation::ReLU, Activation::SiLU, Activation::GELU, Activation::Tanh}) {
    NetConfig config;
    config.activation = a;
    config.width = 24;
    config.depth = 3;
    config.time_embedding = TimeEmbeddingKind::Sinusoidal;
    config.embedding_dim = 8;
    const std::vector<int64_t> shape{2, 3};
    auto net = make_score_net(config, shape, /*cond_dim=*/2);
    ASSERT_TRUE(net->supports_divergence());
    net->to(at::kDouble);
    NetworkScore model(net, sde, Parameterization::Score, ConditionInput{2, false});  // the score is the network's output
    const auto opts = at::TensorOptions().dtype(at::kDouble);
    const at::Tensor x = at::randn({5, 2, 3}, opts), t = at::rand({5}, opts) * 0.9 + 0.05, y = at::randn({5, 2}, opts);
    at::Tensor divergence;
    const at::Tensor out = net->forward_with_divergence(x, t, y, divergence);
    const ScoreModel::WithDivergence reference = model.ScoreModel::score_and_divergence(x, t, y);
    EXPECT_TRUE(at::allclose(out, reference.score, 1e-12, 1e-12)) << to_string(a);
    EXPECT_TRUE(at::allclose(divergence, reference.divergence, 1e-10, 1e-10))
        << to_string(a) << divergence << reference.divergence;
    EXPECT_FALSE(divergence.requires_grad());
  }
}

// Many features (through NetworkScore, noise parameterisation): the tangents are propagated in
// several blocks, and the score's divergence is the network's scaled by -1/sigma.
TEST(ExactDivergence, ForwardTangentsInBlocksMatchAutograd) {
  at::manual_seed(4);
  const auto sde = std::shared_ptr<const SDE>(make_sde(SDEConfig{}));
  NetConfig config;
  config.width = 32;
  config.depth = 2;
  auto net = make_score_net(config, {32, 32});
  NetworkScore model(net, sde, Parameterization::Noise);
  const at::Tensor x = at::randn({400, 32, 32}), t = at::rand({400}) * 0.9 + 0.05;
  const at::Tensor fast = model.score_and_divergence(x, t, at::Tensor()).divergence;
  const at::Tensor reference = model.ScoreModel::score_and_divergence(x, t, at::Tensor()).divergence;
  EXPECT_TRUE(at::allclose(fast, reference, 1e-4, 1e-4)) << (fast - reference).abs().max();
}

// A ReLU MLP keeps its Jacobian trace between calls and updates it where units switched
// (relu_jacobian_trace.hpp). Along a walk that switches a few units a call, with jumps that
// switch many, a refresh every 64 calls, weights changed through a raw pointer (as the fused
// optimiser does, without a version bump) and a batch that shrinks, every call's divergence is
// autograd's, for every depth (the middle products from four hidden layers up) and D = 1 and 3.
TEST(ExactDivergence, ReluTraceKeptBetweenCallsMatchesAutograd) {
  const auto sde = std::shared_ptr<const SDE>(make_sde(SDEConfig{}));
  for (int64_t depth : {2, 3, 4, 5}) {
    for (int64_t dim : {1, 3}) {
      at::manual_seed(10 * depth + dim);
      NetConfig config;
      config.width = 16;
      config.depth = depth;
      auto net = make_score_net(config, {dim});
      net->to(at::kDouble);
      NetworkScore model(net, sde, Parameterization::Score);
      at::Tensor x = at::randn({9, dim}, kDouble), t = at::rand({9}, kDouble) * 0.9 + 0.05;
      ASSERT_TRUE(net->prefers_own_divergence(x)) << "a ReLU MLP's kept trace is the fast path even at D = " << dim;
      for (int call = 0; call < 150; ++call) {
        if (call % 37 == 36) x = at::randn_like(x) * 2;  // a jump: many units switch at once
        if (call == 60) {
          at::NoGradGuard no_grad;
          net->named_parameters()["layers.0.weight"].data_ptr<double>()[0] += 0.25;  // W_0[0, 0], no version bump
        }
        if (call == 100) {  // a smaller batch, as the per-row solver's
          x = x.narrow(0, 0, 5).clone();
          t = t.narrow(0, 0, 5).clone();
        }
        at::Tensor divergence;
        net->forward_with_divergence(x, t, at::Tensor(), divergence);
        const at::Tensor reference = model.ScoreModel::score_and_divergence(x, t, at::Tensor()).divergence;
        ASSERT_TRUE(at::allclose(divergence, reference, 1e-10, 1e-10))
            << "depth " << depth << ", D " << dim << ", call " << call << ": " << divergence << reference;
        x = x + 0.05 * at::randn_like(x);
        t = (t + 0.01).clamp(0.05, 0.95);
      }
    }
  }
}

// In float32 the kept trace adds one rounding per switch; along 600 calls of a solve-like walk
// it stays as close as a float32 sum can to the trace computed afresh on the same pattern (a
// float64 reference would see a different pattern where a unit is within rounding of its kink).
TEST(ExactDivergence, ReluTraceKeptInFloat32StaysAccurate) {
  NetConfig config;
  config.width = 64;
  config.depth = 3;
  const auto make = [&] {
    at::manual_seed(21);
    return make_score_net(config, {2});
  };
  auto net = make();
  at::Tensor x = at::randn({256, 2}), t = at::full({256}, 0.02);
  double worst = 0;
  for (int call = 0; call < 600; ++call) {
    at::Tensor kept, afresh;
    net->forward_with_divergence(x, t, at::Tensor(), kept);
    make()->forward_with_divergence(x, t, at::Tensor(), afresh);  // a new network starts from scratch
    worst = std::max(worst, ((kept - afresh).abs() / (1 + afresh.abs())).max().item<double>());
    x = x + 0.02 * at::randn_like(x);
    t = t + 0.0015;
  }
  EXPECT_LT(worst, 1e-5);
}

// The kept trace's updates round differently from a fresh start, and an adaptive solve turns
// differences of 1e-7 into other step sizes: without a fresh start per solve the same points got
// log p differing by 3e-3 nats from one call to the next. Each chunk's solve now starts afresh, so
// a likelihood depends on its own points only, whatever was solved before it, bit for bit; the
// same holds for the bound's exact divergence.
TEST(ExactDivergence, ALikelihoodDoesNotDependOnTheSolvesBeforeIt) {
  const auto sde = std::shared_ptr<const SDE>(make_sde(SDEConfig{}));
  at::manual_seed(5);
  NetConfig config;
  config.width = 64;
  config.depth = 3;
  NetworkScore model(make_score_net(config, {2}), sde, Parameterization::Noise);
  const at::Tensor x = at::randn({50, 2}), other = at::randn({50, 2}) * 3;
  for (const LikelihoodMethod method : {LikelihoodMethod::ODE, LikelihoodMethod::ELBO}) {
    LikelihoodConfig lc;
    lc.method = method;
    lc.draws = 20;
    auto log_p = [&](const at::Tensor& points) {
      return log_likelihood(model, *sde, points, at::Tensor(), lc, make_generator(at::kCPU, 1)).log_prob;
    };
    const at::Tensor first = log_p(x);
    EXPECT_TRUE(at::equal(log_p(x), first)) << to_string(method) << ": the same call again";
    log_p(other);
    EXPECT_TRUE(at::equal(log_p(x), first)) << to_string(method) << ": after other points";
  }
}

// The density map's grid: over the data's extent with a tenth of its span (and 1e-3) added on
// each side, or over the range given; points[i G + j] = (x_j, y_i).
TEST(DensityGrid, SpansTheDataOrTheRangeRowByRow) {
  auto mixture = [](int64_t d) {
    const auto f64 = at::TensorOptions().dtype(at::kDouble);
    return mixture_model(GaussianMixture(at::ones({1}, f64), at::zeros({1, d}, f64), at::eye(d, f64).unsqueeze(0)), SDEConfig{});
  };
  const Model model = mixture(2);
  const at::Tensor data = at::tensor({0.0, 0.0, 2.0, 4.0}, at::kDouble).reshape({2, 2});
  const DensityGrid grid = density_grid(model, 3, std::nullopt, data);
  EXPECT_NEAR(grid.x_range[0], -0.201, 1e-12);
  EXPECT_NEAR(grid.x_range[1], 2.201, 1e-12);
  EXPECT_NEAR(grid.y_range[0], -0.401, 1e-12);
  EXPECT_NEAR(grid.y_range[1], 4.401, 1e-12);
  ASSERT_EQ(grid.points.sizes(), at::IntArrayRef({9, 2}));
  EXPECT_NEAR(grid.points[1][0].item<double>(), 1.0, 1e-12);   // (x_1, y_0)
  EXPECT_NEAR(grid.points[1][1].item<double>(), -0.401, 1e-12);
  EXPECT_NEAR(grid.points[3][0].item<double>(), -0.201, 1e-12);  // (x_0, y_1)
  EXPECT_NEAR(grid.points[3][1].item<double>(), 2.0, 1e-12);
  const DensityGrid given = density_grid(model, 2, std::array<double, 4>{-1, 1, 0, 3});
  EXPECT_TRUE(at::equal(given.points, at::tensor({-1.0, 0.0, 1.0, 0.0, -1.0, 3.0, 1.0, 3.0}, at::kDouble).reshape({4, 2})));

  EXPECT_EQ(error_of([&] { density_grid(mixture(3), 5, std::array<double, 4>{0, 1, 0, 1}); }),
            "grid needs a model of 2-D points");
  EXPECT_EQ(error_of([&] { density_grid(model, 1, std::array<double, 4>{0, 1, 0, 1}); }), "grid must be at least 2");
  EXPECT_EQ(error_of([&] { density_grid(model, 5, std::nullopt); }),
            "grid needs range XMIN,XMAX,YMIN,YMAX or data to set its extent");
  EXPECT_EQ(error_of([&] { density_grid(model, 5, std::array<double, 4>{0, 1, 1, 0}); }),
            "range needs XMIN < XMAX and YMIN < YMAX");
}
