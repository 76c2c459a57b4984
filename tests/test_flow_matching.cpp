// Flow matching against its formulas: the loss is the conditional velocity's residual on the
// interpolation x_t = m x0 + sigma z; the exact velocity of a Gaussian mixture is the
// probability-flow drift of its score (and stays finite at the linear path's t = 1); a network
// that predicts the velocity gives back the score; and the ODE driven by the exact velocity
// carries N(0, I) onto the mixture. Minibatch OT pairs at least total cost.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "sbgm/nets/score_net.hpp"
#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/sample/probability_flow.hpp"
#include "sbgm/score/mixture_score.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/dsm_loss.hpp"
#include "sbgm/train/optimal_transport.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {
const auto kDouble = at::TensorOptions().dtype(at::kDouble);

std::shared_ptr<const SDE> sde_of(SDEKind kind) {
  SDEConfig c;
  c.kind = kind;
  c.t_eps = 1e-3;
  return make_sde(c);
}

GaussianMixture two_d_mixture() {
  return GaussianMixture(at::tensor({0.3, 0.7}, kDouble), at::tensor({-1.0, 0.5, 1.5, -0.5}, kDouble).reshape({2, 2}),
                         at::tensor({0.3, 0.1, 0.1, 0.2, 0.5, -0.2, -0.2, 0.4}, kDouble).reshape({2, 2, 2}));
}

// A fixed "network": out = a(t) x + b, with a(t) = 1 + t, so the loss can be written by hand.
class AffineNet final : public ScoreNet {
 public:
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor&) override {
    return x * (1 + t).view({-1, 1}) + 0.25;
  }
};

// A "network" that predicts the exact velocity of a mixture (what flow matching converges to).
class MixtureVelocityNet final : public ScoreNet {
 public:
  MixtureVelocityNet(GaussianMixture mixture, std::shared_ptr<const SDE> sde)
      : mixture_(std::move(mixture)), sde_(std::move(sde)) {}
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override {
    const at::Tensor tt = t.reshape({-1});
    return mixture_.diffused_velocity(x, sde_->mean_coeff(tt, tt), sde_->marginal_std(tt, tt), sde_->mean_coeff_rate(tt, tt),
                                      sde_->marginal_std_rate(tt, tt), y);
  }

 private:
  GaussianMixture mixture_;
  std::shared_ptr<const SDE> sde_;
};

}  // namespace

// On the linear path the loss is mean_b || v(x_t) - (z - x0) ||^2 with x_t = (1 - t) x0 + t z; on
// VP the target is m' x0 + sigma' z.
TEST(FlowMatchingLoss, IsTheConditionalVelocityResidual) {
  at::Generator gen = make_generator(at::kCPU, 3);
  const at::Tensor x0 = at::normal(0.0, 1.0, {7, 2}, gen, kDouble), z = at::normal(0.0, 1.0, {7, 2}, gen, kDouble);
  const at::Tensor t = at::rand({7}, gen, kDouble);
  AffineNet net;
  const at::Tensor tc = t.view({-1, 1});
  const at::Tensor xt = (1 - tc) * x0 + tc * z;
  const at::Tensor out = xt * (1 + tc) + 0.25;
  const double want_linear = (out - (z - x0)).pow(2).sum(1).mean().item<double>();
  const auto linear = sde_of(SDEKind::Linear);
  EXPECT_NEAR(dsm_loss(net, Parameterization::Velocity, *linear, LossWeighting::Sigma2, x0, {}, t, z).item<double>(),
              want_linear, 1e-12);

  const auto vp = sde_of(SDEKind::VP);
  const at::Tensor m = vp->mean_coeff(t, x0), s = vp->marginal_std(t, x0);
  const at::Tensor xt_vp = m * x0 + s * z;
  const at::Tensor target = vp->mean_coeff_rate(t, x0) * x0 + vp->marginal_std_rate(t, x0) * z;
  const double want_vp = (xt_vp * (1 + tc) + 0.25 - target).pow(2).sum(1).mean().item<double>();
  EXPECT_NEAR(dsm_loss(net, Parameterization::Velocity, *vp, LossWeighting::Sigma2, x0, {}, t, z).item<double>(), want_vp,
              1e-12);
  // The likelihood weighting belongs to score matching, minibatch OT to unconditional flow matching.
  EXPECT_THROW(check_loss_config(DSMConfig{LossWeighting::Likelihood}, Parameterization::Velocity, false), InvalidArgument);
  DSMConfig ot;
  ot.ot_coupling = true;
  EXPECT_NO_THROW(check_loss_config(ot, Parameterization::Velocity, false));
  EXPECT_THROW(check_loss_config(ot, Parameterization::Velocity, true), InvalidArgument);
  EXPECT_THROW(check_loss_config(ot, Parameterization::Noise, false), InvalidArgument);
}

// The velocity is the probability-flow drift f x - g^2 s / 2 wherever f and g^2 are finite, for
// plain and conditional mixtures; at the linear path's t = 1 it is x - E[x0].
TEST(MixtureVelocity, IsTheProbabilityFlowDriftOfTheScore) {
  const GaussianMixture plain = two_d_mixture();
  const GaussianMixture posterior =
      linear_gaussian_posterior(at::zeros({2}, kDouble), at::eye(2, kDouble), at::tensor({1.0, 0.5, -0.3, 2.0}, kDouble).reshape({2, 2}),
                                at::eye(2, kDouble) * 0.2);
  at::Generator gen = make_generator(at::kCPU, 5);
  const at::Tensor x = at::normal(0.0, 1.5, {30, 2}, gen, kDouble), y = at::normal(0.0, 1.0, {30, 2}, gen, kDouble);
  for (const SDEKind kind : {SDEKind::VP, SDEKind::VE, SDEKind::CosineVP, SDEKind::Linear}) {
    const auto sde = sde_of(kind);
    for (const auto& [mixture, cond] : {std::pair{plain, at::Tensor()}, std::pair{posterior, y}}) {
      GaussianMixtureScore exact(mixture, sde);
      for (double t : {0.01, 0.3, 0.7, 0.95}) {
        const at::Tensor tt = at::full({30}, t, kDouble);
        const at::Tensor drift = sde->probability_flow_drift(x, exact.score(x, tt, cond), tt);
        EXPECT_TRUE(at::allclose(exact.velocity(x, tt, cond, *sde), drift, 1e-9, 1e-9)) << to_string(kind) << " t " << t;
      }
    }
  }
  const auto linear = sde_of(SDEKind::Linear);
  GaussianMixtureScore exact(plain, linear);
  const at::Tensor mean = (plain.weights().unsqueeze(1) * plain.means()).sum(0);
  EXPECT_TRUE(at::allclose(exact.velocity(x, at::ones({30}, kDouble), {}, *linear), x - mean, 1e-12, 1e-12));
}

// A network predicting the exact velocity gives the exact score (and its divergence) through
// NetworkScore, and its output unchanged as the velocity.
TEST(VelocityNetwork, GivesTheScoreAndItsDivergence) {
  for (const SDEKind kind : {SDEKind::Linear, SDEKind::VP}) {
    const auto sde = sde_of(kind);
    auto net = std::make_shared<MixtureVelocityNet>(two_d_mixture(), sde);
    NetworkScore model(net, sde, Parameterization::Velocity);
    GaussianMixtureScore exact(two_d_mixture(), sde);
    const at::Tensor x = at::normal(0.0, 1.5, {25, 2}, make_generator(at::kCPU, 8), kDouble);
    for (double t : {0.02, 0.4, 0.9}) {
      const at::Tensor tt = at::full({25}, t, kDouble);
      EXPECT_TRUE(at::allclose(model.score(x, tt, {}), exact.score(x, tt, {}), 1e-9, 1e-9)) << to_string(kind) << " " << t;
      EXPECT_TRUE(at::equal(model.velocity(x, tt, {}, *sde), exact.velocity(x, tt, {}, *sde)));
      const ScoreModel::WithDivergence s = model.score_and_divergence(x, tt, {});
      const ValueWithDivergence want = autograd_divergence([&](const at::Tensor& xg) { return exact.score(xg, tt, {}); }, x);
      EXPECT_TRUE(at::allclose(s.score, want.value, 1e-9, 1e-9));
      EXPECT_TRUE(at::allclose(s.divergence, want.divergence, 1e-8, 1e-8)) << to_string(kind) << " " << t;
      const ScoreModel::VelocityWithDivergence v = model.velocity_and_divergence(x, tt, {}, *sde);
      const ScoreModel::VelocityWithDivergence v_exact = exact.velocity_and_divergence(x, tt, {}, *sde);
      EXPECT_TRUE(at::allclose(v.velocity, v_exact.velocity, 1e-12, 1e-12));
      EXPECT_TRUE(at::allclose(v.divergence, v_exact.divergence, 1e-10, 1e-10));
    }
  }
}

// The ODE from N(0, I) at t = 1 down the straight path, driven by the exact velocity, lands on the
// mixture: its mean and covariance within Monte-Carlo error; the SDE samplers refuse the path.
TEST(FlowODE, ExactVelocityReproducesTheMixturesMoments) {
  const auto sde = sde_of(SDEKind::Linear);
  const GaussianMixture mixture = two_d_mixture();
  GaussianMixtureScore exact(mixture, sde);
  const int64_t n = 4000;
  at::Generator gen = make_generator(at::kCPU, 11);
  SolverConfig solver;
  solver.rtol = solver.atol = 1e-6;
  ProbabilityFlowSampler sampler(solver);
  const at::Tensor x = sampler.run(exact, *sde, sde->prior_sample({n, 2}, gen, kDouble), {}, gen, {});
  const at::Tensor truth = mixture.sample(200000, make_generator(at::kCPU, 12)).to(at::kDouble);
  const at::Tensor mean = x.mean(0), want_mean = truth.mean(0);
  const at::Tensor sd = truth.std(0);
  for (int64_t k = 0; k < 2; ++k)
    EXPECT_NEAR(mean[k].item<double>(), want_mean[k].item<double>(), 4 * sd[k].item<double>() / std::sqrt(n)) << k;
  const at::Tensor cov = at::cov(x.t()), want_cov = at::cov(truth.t());
  EXPECT_TRUE(at::allclose(cov, want_cov, 0.08, 0.03)) << cov << want_cov;
  EXPECT_LT(sampler.last_stats().function_evals, 400);

  for (const SamplerKind kind :
       {SamplerKind::EulerMaruyama, SamplerKind::PredictorCorrector, SamplerKind::Ancestral, SamplerKind::EDMHeun}) {
    SamplerOptions o;
    o.kind = kind;
    o.steps = 10;
    EXPECT_THROW(make_sampler(o)->run(exact, *sde, at::zeros({3, 2}, kDouble), {}, gen, {}), InvalidArgument)
        << to_string(kind);
    EXPECT_THROW(check_sampler_fits(kind, *sde), InvalidArgument);
  }
  EXPECT_NO_THROW(check_sampler_fits(SamplerKind::ProbabilityFlow, *sde));
}

// The assignment is a permutation of least total cost: against every permutation for n <= 7, on
// random costs and on integer costs with ties; bad matrices are refused.
TEST(MinibatchOT, AssignmentIsAPermutationOfLeastCost) {
  at::Generator gen = make_generator(at::kCPU, 21);
  for (int64_t n = 1; n <= 7; ++n) {
    for (int trial = 0; trial < 6; ++trial) {
      at::Tensor cost = at::rand({n, n}, gen, kDouble);
      if (trial % 2 == 1) cost = at::floor(cost * 4);  // ties
      const std::vector<int64_t> column = min_cost_assignment(cost);
      std::vector<int64_t> sorted = column, perm(n);
      std::sort(sorted.begin(), sorted.end());
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_EQ(sorted[i], i);
        perm[i] = i;
      }
      const auto total = [&](const std::vector<int64_t>& p) {
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += cost[i][p[i]].item<double>();
        return sum;
      };
      double best = total(perm);
      while (std::next_permutation(perm.begin(), perm.end())) best = std::min(best, total(perm));
      EXPECT_NEAR(total(column), best, 1e-12) << "n " << n << " trial " << trial;
    }
  }
  EXPECT_THROW(min_cost_assignment(at::zeros({2, 3}, kDouble)), InvalidArgument);
  EXPECT_THROW(min_cost_assignment(at::full({2, 2}, NAN, kDouble)), InvalidArgument);
}

// Noise that is a shuffled, slightly moved copy of the data is paired back row for row; on random
// batches the pairing never costs more than the independent one.
TEST(MinibatchOT, PairsTheNoiseWithTheNearestData) {
  at::Generator gen = make_generator(at::kCPU, 22);
  const at::Tensor x0 = at::normal(0.0, 3.0, {64, 3}, gen, kDouble);
  const at::Tensor shuffle = at::randperm(64, gen, at::TensorOptions().dtype(at::kLong));
  const at::Tensor z = (x0 + 0.01 * at::normal(0.0, 1.0, {64, 3}, gen, kDouble)).index_select(0, shuffle);
  EXPECT_TRUE(at::allclose(ot_paired_noise(x0, z), x0, 0, 0.1));
  const at::Tensor a = at::normal(0.0, 1.0, {128, 2, 2}, gen, kDouble), b = at::normal(0.0, 1.0, {128, 2, 2}, gen, kDouble);
  const at::Tensor paired = ot_paired_noise(a, b);
  EXPECT_EQ(paired.sizes(), b.sizes());
  EXPECT_LT((a - paired).pow(2).sum().item<double>(), (a - b).pow(2).sum().item<double>());
  EXPECT_TRUE(at::equal(std::get<0>(paired.reshape({128, -1}).sum(1).sort()), std::get<0>(b.reshape({128, -1}).sum(1).sort())));
}
