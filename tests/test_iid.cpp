// Posteriors given several independent observations (score/iid_score.hpp, run/iid_posterior.hpp)
// against the linear-Gaussian model, where p(theta | x_1..x_n) is Gaussian in closed form: the
// gauss composition is the exact diffused score at every time, the factorized one only as t -> 0,
// and samples drawn through the composition have the exact posterior's moments.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "sbgm/run/iid_posterior.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/sample/edm_heun.hpp"
#include "sbgm/score/iid_score.hpp"
#include "sbgm/score/mixture_score.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;

namespace {

// theta ~ N(m0, S0) in 3-D, x = H theta + N(0, R) in 2-D.
struct LinearGaussian {
  at::Tensor m0 = at::tensor({0.5, -1.0, 0.0}, at::kDouble);
  at::Tensor S0 = at::tensor({1.0, 0.3, 0.0, 0.3, 0.8, -0.2, 0.0, -0.2, 0.5}, at::kDouble).reshape({3, 3});
  at::Tensor H = at::tensor({1.0, 0.5, 0.0, 0.0, -1.0, 2.0}, at::kDouble).reshape({2, 3});
  at::Tensor R = at::tensor({0.2, 0.05, 0.05, 0.3}, at::kDouble).reshape({2, 2});

  GaussianMixture prior() const { return GaussianMixture(at::ones({1}, at::kDouble), m0.unsqueeze(0), S0.unsqueeze(0)); }
  GaussianMixture posterior() const { return linear_gaussian_posterior(m0, S0, H, R); }
  // n observations of one theta.
  at::Tensor observations(int64_t n, uint64_t seed) const {
    at::manual_seed(seed);
    const at::Tensor theta = m0 + at::matmul(at::linalg_cholesky(S0), at::randn({3}, at::kDouble));
    return at::matmul(theta, H.t()) + at::matmul(at::randn({n, 2}, at::kDouble), at::linalg_cholesky(R).t());
  }
  // The exact posterior given all rows of xs, as a one-component mixture.
  GaussianMixture posterior_given(const at::Tensor& xs) const {
    const at::Tensor Rinv = at::linalg_inv(R), S0inv = at::linalg_inv(S0);
    at::Tensor cov = at::linalg_inv(S0inv + static_cast<double>(xs.size(0)) * at::matmul(H.t(), at::matmul(Rinv, H)));
    cov = 0.5 * (cov + cov.t());
    const at::Tensor mean = at::matmul(cov, at::matmul(S0inv, m0) + at::matmul(H.t(), at::matmul(Rinv, xs.sum(0))));
    return GaussianMixture(at::ones({1}, at::kDouble), mean.unsqueeze(0), cov.unsqueeze(0));
  }
};

}  // namespace

TEST(IID, GaussCompositionIsTheExactDiffusedScore) {
  const LinearGaussian lg;
  const std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
  const GaussianMixture posterior = lg.posterior();
  for (int64_t n : {1, 5, 20}) {
    const at::Tensor xs = lg.observations(n, 3);
    const at::Tensor covs = posterior.covs().expand({n, 3, 3});  // every single-x posterior has the same covariance
    IIDScore gauss(std::make_shared<GaussianMixtureScore>(posterior, sde), std::make_shared<GaussianMixtureScore>(lg.prior(), sde),
                   sde, xs, IIDMethod::Gauss, covs, lg.S0);
    IIDScore factorized(std::make_shared<GaussianMixtureScore>(posterior, sde),
                        std::make_shared<GaussianMixtureScore>(lg.prior(), sde), sde, xs, IIDMethod::Factorized);
    GaussianMixtureScore exact(lg.posterior_given(xs), sde);
    at::manual_seed(4);
    const at::Tensor x = at::randn({64, 3}, at::kDouble);
    for (double t : {1e-3, 0.1, 0.5, 1.0}) {
      const at::Tensor tt = at::full({64}, t, at::kDouble);
      const at::Tensor want = exact.score(x, tt, {});
      EXPECT_TRUE(at::allclose(gauss.score(x, tt, {}), want, 1e-8, 1e-8)) << "n " << n << " t " << t;
      const double off = (factorized.score(x, tt, {}) - want).abs().max().item<double>() / want.abs().max().item<double>();
      if (n > 1 && t >= 0.1 && t <= 0.5) EXPECT_GT(off, 1e-2) << "n " << n << " t " << t;  // the factorized sum is not exact after diffusion
      if (t == 1e-3) EXPECT_LT(off, 0.05) << "n " << n;                         // but it is as t -> 0
    }
  }
}

TEST(IID, SamplesHaveTheExactPosteriorsMoments) {
  const LinearGaussian lg;
  const Model model = mixture_model(lg.posterior(), SDEConfig{});
  IIDConfig config;
  config.prior = std::make_shared<const GaussianMixture>(lg.prior());
  config.covariance_samples = 5000;
  EDMHeunConfig edm;
  edm.steps = 50;
  EDMHeunSampler sampler(edm);
  constexpr int64_t kDraws = 4000;
  for (int64_t n : {1, 5, 20}) {
    const at::Tensor xs = lg.observations(n, 8);
    const GaussianMixture exact = lg.posterior_given(xs);
    const at::Tensor sd = exact.covs()[0].diagonal().sqrt();
    auto check = [&](const at::Tensor& draws, double mean_tolerance, const std::string& what) {
      ASSERT_EQ(draws.sizes(), (std::vector<int64_t>{kDraws, 3}));
      EXPECT_TRUE(((draws.mean(0).to(at::kDouble) - exact.means()[0]).abs() < mean_tolerance * sd).all().item<bool>())
          << what << " n " << n << draws.mean(0) << exact.means()[0];
      const at::Tensor cov = at::cov(draws.to(at::kDouble).t());
      EXPECT_LT((cov - exact.covs()[0]).abs().max().item<double>(), 0.1 * sd.max().item<double>() * sd.max().item<double>())
          << what << " n " << n << cov << exact.covs()[0];
    };
    // With the exact covariances the composition is exact: the means within 4 standard errors.
    const std::shared_ptr<const SDE> sde = model.sde;
    IIDScore exact_weights(std::make_shared<GaussianMixtureScore>(lg.posterior(), sde),
                           std::make_shared<GaussianMixtureScore>(lg.prior(), sde), sde, xs, IIDMethod::Gauss,
                           lg.posterior().covs().expand({n, 3, 3}), lg.S0);
    check(sample_model_with(model, exact_weights, sampler, kDraws, at::Tensor(), 2), 4 / std::sqrt(double(kDraws)), "exact");
    // With covariances estimated from 5000 draws per observation their Monte-Carlo error moves the
    // n = 20 posterior's mean by up to about a tenth of its standard deviation (docs/sbi.md).
    check(sample_model_iid(model, sampler, xs, kDraws, config, 2), 0.15, "estimated");
  }
}

TEST(IID, BadInputs) {
  const LinearGaussian lg;
  const Model model = mixture_model(lg.posterior(), SDEConfig{});
  EDMHeunSampler sampler(EDMHeunConfig{});
  const at::Tensor xs = lg.observations(5, 1);
  IIDConfig config;
  // An analytic model has neither a network nor training parameters: the prior must be given.
  EXPECT_THROW(sample_model_iid(model, sampler, xs, 10, config, 0), InvalidArgument);
  config.prior = std::make_shared<const GaussianMixture>(
      GaussianMixture(at::ones({1}, at::kDouble), at::zeros({1, 2}, at::kDouble), at::eye(2, at::kDouble).unsqueeze(0)));
  EXPECT_THROW(sample_model_iid(model, sampler, xs, 10, config, 0), InvalidArgument);  // a prior of 2 features for 3
  config.prior = std::make_shared<const GaussianMixture>(lg.prior());
  EXPECT_THROW(sample_model_iid(model, sampler, xs.narrow(1, 0, 1), 10, config, 0), InvalidArgument);  // width 1 for 2
  EXPECT_THROW(sample_model_iid(model, sampler, xs, 0, config, 0), InvalidArgument);
  const Model unconditional = mixture_model(lg.prior(), SDEConfig{});
  EXPECT_THROW(sample_model_iid(unconditional, sampler, xs, 10, config, 0), InvalidArgument);
  // A prior far narrower than the posteriors leaves their product no positive precision.
  const GaussianMixture posterior = lg.posterior();
  const std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
  EXPECT_THROW(IIDScore(std::make_shared<GaussianMixtureScore>(posterior, sde), std::make_shared<GaussianMixtureScore>(lg.prior(), sde),
                        sde, xs, IIDMethod::Gauss, posterior.covs().expand({5, 3, 3}), 0.01 * lg.S0),
               InvalidArgument);
  EXPECT_THROW(iid_method_from_string("mean"), InvalidArgument);
}
