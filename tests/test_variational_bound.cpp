// The variational bound of the plug-in reverse SDE (likelihood/variational_bound.hpp) with exact
// mixture scores: tight (equal to the exact log-density within its Monte-Carlo error) for the
// true score on every SDE, below the data's log-density on average for a wrong score, with
// standard errors that describe its spread, and the log-SNR proposal's variance below uniform t's.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "error_of.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/likelihood/variational_bound.hpp"
#include "sbgm/score/mixture_score.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

GaussianMixture two_components() {
  return GaussianMixture(at::tensor({0.3, 0.7}, kDouble), at::tensor({-1.5, 0.5, 1.0, -0.5}, kDouble).reshape({2, 2}),
                         at::tensor({0.30, 0.12, 0.12, 0.10, 0.05, -0.03, -0.03, 0.40}, kDouble).reshape({2, 2, 2}));
}

// The exact score times a factor: a model that is wrong at every noise level.
class ScaledScore final : public ScoreModel {
 public:
  ScaledScore(ScoreModel& inner, double factor) : inner_(inner), factor_(factor) {}
  at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override {
    return inner_.score(x, t, y) * factor_;
  }

 private:
  ScoreModel& inner_;
  double factor_;
};

std::shared_ptr<const SDE> sde_of(SDEKind kind) {
  SDEConfig c;
  c.kind = kind;
  c.sigma_max = 50;
  c.t_eps = 1e-4;
  return make_sde(c);
}

LikelihoodConfig bound_config(int64_t draws, TimeProposal time = TimeProposal::LogSNR,
                              LikelihoodMethod method = LikelihoodMethod::ELBO) {
  LikelihoodConfig c;
  c.method = method;
  c.draws = draws;
  c.time = time;
  return c;
}

class BoundEverySDE : public ::testing::TestWithParam<SDEKind> {};

}  // namespace

// With the true score the bound is tight, in both forms: each row's estimate is the exact
// log p_{t_eps}(x) within a few standard errors (the prior's mismatch, m(T) mu against 0, is below
// 1e-3 nats here), and the mean over 200 rows within 4 standard errors of the mean.
TEST_P(BoundEverySDE, TightForTheTrueScore) {
  auto sde = sde_of(GetParam());
  GaussianMixtureScore score(two_components(), sde);
  const at::Tensor x = two_components().sample(200, make_generator(at::kCPU, 1)).to(at::kDouble);
  const at::Tensor exact = score.log_prob(x, sde->t_eps());
  for (LikelihoodMethod method : {LikelihoodMethod::ELBO, LikelihoodMethod::ELBODenoising}) {
    const std::string what = to_string(method) + " on " + to_string(GetParam());
    const LikelihoodResult r = log_likelihood(score, *sde, x, at::Tensor(), bound_config(400, TimeProposal::LogSNR, method),
                                              make_generator(at::kCPU, 2));
    ASSERT_EQ(r.log_prob.sizes(), exact.sizes());
    EXPECT_TRUE((r.std_error > 0).all().item<bool>()) << what;
    const at::Tensor z = (r.log_prob - exact) / r.std_error;
    EXPECT_LT(z.abs().max().item<double>(), 4.5) << what;
    const double mean_se = (r.std_error.pow(2).sum().sqrt() / x.size(0)).item<double>();
    EXPECT_LT(std::abs((r.log_prob - exact).mean().item<double>()), 4 * mean_se + 2e-3) << what;
    EXPECT_EQ(r.stats.function_evals, 400);
  }
}

INSTANTIATE_TEST_SUITE_P(All, BoundEverySDE, ::testing::Values(SDEKind::VP, SDEKind::SubVP, SDEKind::VE, SDEKind::CosineVP),
                         [](const auto& info) { return to_string(info.param); });

// A wrong score lowers the bound below the data's log-density on average (the expected bound
// is at most E log p_model <= E log p_data), by far more than its standard error; the ODE
// likelihood of the same wrong model is no bound and need not be below.
TEST(VariationalBound, WrongScoreFallsBelowTheData) {
  auto sde = sde_of(SDEKind::VP);
  GaussianMixtureScore exact(two_components(), sde);
  const at::Tensor x = two_components().sample(300, make_generator(at::kCPU, 3)).to(at::kDouble);
  const double truth = exact.log_prob(x, sde->t_eps()).mean().item<double>();
  for (double factor : {0.8, 1.2}) {
    ScaledScore wrong(exact, factor);
    const LikelihoodResult r = log_likelihood(wrong, *sde, x, at::Tensor(), bound_config(500), make_generator(at::kCPU, 4));
    const double mean_se = (r.std_error.pow(2).sum().sqrt() / x.size(0)).item<double>();
    EXPECT_LT(r.log_prob.mean().item<double>(), truth - 5 * mean_se) << factor;
  }
}

// Hutchinson's divergence gives the same bound within the (larger) standard error. The denoising
// form needs the log-SNR proposal: with uniform t its integrand g^2 |z|^2 / (2 sigma^2) has 5x the
// standard error (VP).
TEST(VariationalBound, HutchinsonAndProposals) {
  auto sde = sde_of(SDEKind::VP);
  GaussianMixtureScore score(two_components(), sde);
  const at::Tensor x = two_components().sample(100, make_generator(at::kCPU, 5)).to(at::kDouble);
  const at::Tensor exact = score.log_prob(x, sde->t_eps());
  LikelihoodConfig hutch = bound_config(400, TimeProposal::LogSNR, LikelihoodMethod::ELBO);
  hutch.divergence = DivergenceKind::Hutchinson;
  const LikelihoodResult h = log_likelihood(score, *sde, x, at::Tensor(), hutch, make_generator(at::kCPU, 6));
  const double h_se = (h.std_error.pow(2).sum().sqrt() / x.size(0)).item<double>();
  EXPECT_LT(std::abs((h.log_prob - exact).mean().item<double>()), 4 * h_se + 2e-3);
  const LikelihoodResult u = log_likelihood(score, *sde, x, at::Tensor(),
                                            bound_config(400, TimeProposal::Uniform, LikelihoodMethod::ELBODenoising),
                                            make_generator(at::kCPU, 6));
  const LikelihoodResult l = log_likelihood(score, *sde, x, at::Tensor(),
                                            bound_config(400, TimeProposal::LogSNR, LikelihoodMethod::ELBODenoising),
                                            make_generator(at::kCPU, 6));
  EXPECT_LT(l.std_error.mean().item<double>(), u.std_error.mean().item<double>() / 3);
  const double u_se = (u.std_error.pow(2).sum().sqrt() / x.size(0)).item<double>();
  EXPECT_LT(std::abs((u.log_prob - exact).mean().item<double>()), 4 * u_se + 2e-3);
}

TEST(VariationalBound, BadInput) {
  SDEConfig lc;
  lc.kind = SDEKind::Linear;
  auto linear = std::shared_ptr<const SDE>(make_sde(lc));
  GaussianMixtureScore score(two_components(), linear);
  const at::Tensor x = at::zeros({3, 2}, kDouble);
  EXPECT_NE(error_of([&] { log_likelihood(score, *linear, x, at::Tensor(), bound_config(10), make_generator(at::kCPU, 0)); })
                .find("use the ODE's log-likelihood"),
            std::string::npos);
  auto vp = sde_of(SDEKind::VP);
  EXPECT_NE(error_of([&] { log_likelihood(score, *vp, x, at::Tensor(), bound_config(0), make_generator(at::kCPU, 0)); })
                .find("draws (the bound's Monte-Carlo draws per row) must be at least 1"),
            std::string::npos);
  EXPECT_NE(error_of([] { time_proposal_from_string("gamma"); }).find("uniform, logsnr"), std::string::npos);
  EXPECT_NE(error_of([] { likelihood_method_from_string("iwae"); }).find("ode, elbo, elbo-dsm"), std::string::npos);
}
