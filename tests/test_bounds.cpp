// Box bounds and their bijection onto unbounded space (data/bounds.hpp): round trips, the
// log-Jacobian against autograd and against a density known in closed form, and a bounded model
// whose samples and log-densities are checked against an exact mixture.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <functional>
#include <limits>
#include <tuple>

#include "error_of.hpp"
#include "sbgm/data/bounds.hpp"
#include "sbgm/data/gaussian_mixture.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/run/inpaint.hpp"
#include "sbgm/run/likelihood_request.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/sample/edm_heun.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

// A conditional Gaussian of independent features, mean (0.5 + y, -1) and sds 0.6 and 0.8, and
// its exact model kept within [-1, 1]^2 by rejection.
constexpr double kTruncatedMean[2] = {0.5, -1.0}, kTruncatedSd[2] = {0.6, 0.8};
GaussianMixture truncated_gaussian() {
  const double(&mu)[2] = kTruncatedMean, (&sd)[2] = kTruncatedSd;
  return GaussianMixture(at::ones({1}, at::kDouble), at::tensor({mu[0], mu[1]}, at::kDouble).reshape({1, 2}),
                         at::diag(at::tensor({sd[0] * sd[0], sd[1] * sd[1]}, at::kDouble)).reshape({1, 2, 2}),
                         at::tensor({1.0, 0.0}, at::kDouble).reshape({1, 2, 1}));
}
Model truncated_gaussian_model() {
  Model model = mixture_model(truncated_gaussian(), SDEConfig{});
  model.set_box(use_box(Bounds::from_lists({-1}, {1}, 2), KeepWithin::Reject));
  return model;
}

// One feature of each kind: [-1, 2], [0.5, inf), (-inf, 3], unbounded.
Bounds four_kinds() { return Bounds::from_lists({-1, 0.5, -kInf, -kInf}, {2, kInf, 3, kInf}, 4); }

// Points strictly inside the four features' bounds.
at::Tensor points_inside(int64_t n) {
  at::manual_seed(1);
  const at::Tensor r = at::rand({n, 4}, at::kDouble);
  return at::stack({-1 + 3 * r.select(1, 0), 0.5 + at::exp(4 * r.select(1, 1) - 2), 3 - at::exp(4 * r.select(1, 2) - 2),
                    8 * r.select(1, 3) - 4},
                   1);
}
}  // namespace

TEST(Bounds, RoundTripsAndStaysInside) {
  const Bounds b = four_kinds();
  const at::Tensor x = points_inside(500);
  EXPECT_TRUE(b.inside(x).all().item<bool>());
  const at::Tensor u = b.to_unbounded(x);
  EXPECT_TRUE(at::allclose(b.to_bounded(u), x, 1e-10, 1e-12));
  // Each map is increasing, and the unbounded feature is untouched.
  const at::Tensor order = x.select(1, 0).argsort();
  EXPECT_TRUE((u.select(1, 0).index_select(0, order).diff() > 0).all().item<bool>());
  EXPECT_TRUE(at::equal(u.select(1, 3), x.select(1, 3)));
  // Any u, however far out, comes back within the bounds; points on a bound map to finite u.
  const at::Tensor far = at::tensor({-200.0, -200.0, -200.0, -200.0, 200.0, 200.0, 200.0, 200.0}, at::kDouble).reshape({2, 4});
  EXPECT_TRUE(b.inside(b.to_bounded(far)).all().item<bool>());
  // ...and finite: the exp of an open side stops at the type's largest value (float32 overflows at 89).
  EXPECT_TRUE(at::isfinite(b.to_bounded(far.to(at::kFloat))).all().item<bool>());
  EXPECT_TRUE(at::isfinite(b.to_bounded(far * 5)).all().item<bool>());
  const at::Tensor on_bounds = at::tensor({-1.0, 0.5, 3.0, 0.0, 2.0, 0.5, 3.0, 0.0}, at::kDouble).reshape({2, 4});
  EXPECT_TRUE(at::isfinite(b.to_unbounded(on_bounds)).all().item<bool>());
  // float32 rows keep their dtype; no bounds is the identity.
  EXPECT_EQ(b.to_unbounded(x.to(at::kFloat)).scalar_type(), at::kFloat);
  EXPECT_TRUE(Bounds{}.none());
  EXPECT_TRUE(at::equal(Bounds{}.to_unbounded(x), x));
}

TEST(Bounds, LogJacobianMatchesAutogradAndAClosedFormDensity) {
  const Bounds b = four_kinds();
  const at::Tensor x = points_inside(64).requires_grad_(true);
  const at::Tensor u = b.to_unbounded(x);
  // The Jacobian is diagonal: du_i/dx_i per feature, from autograd.
  const at::Tensor du = torch::autograd::grad({u.sum()}, {x})[0];
  EXPECT_TRUE(at::allclose(b.log_abs_det_jacobian(x.detach()), at::log(du.abs()).sum(1), 1e-9, 1e-9));

  // Uniform x on [lo, hi] has logit(x) logistic: log p_u(u(x)) + log |du/dx| = -log(hi - lo) everywhere.
  const Bounds box = Bounds::from_lists({-1}, {3}, 2);
  at::manual_seed(2);
  const at::Tensor v = -1 + 4 * at::rand({100, 2}, at::kDouble);
  const at::Tensor w = box.to_unbounded(v);
  const at::Tensor logistic = (-w - 2 * at::log1p(at::exp(-w))).sum(1);
  EXPECT_TRUE(at::allclose(logistic + box.log_abs_det_jacobian(v), at::full({100}, -2 * std::log(4.0), at::kDouble), 1e-9, 1e-9));
}

TEST(Bounds, ListsAreCheckedAndBroadcast) {
  const Bounds one = Bounds::from_lists({-1}, {1}, 3);
  EXPECT_TRUE(at::equal(one.lower, at::full({3}, -1.0, at::kDouble)));
  const Bounds lower_only = Bounds::from_lists({0}, {}, 2);
  EXPECT_TRUE(at::isinf(lower_only.upper).all().item<bool>());
  EXPECT_TRUE(Bounds::from_lists({}, {}, 2).none());
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] { Bounds::from_lists({-1, -1}, {1}, 3); }).find("data.lower: 2 values for samples of 3 features"), std::string::npos);
  EXPECT_NE(message([] { Bounds::from_lists({-1, 2}, {1, 2}, 2); }).find("feature 1 has bounds [2, 2]"), std::string::npos);
  EXPECT_NE(message([] { Bounds::from_lists({std::nan("")}, {1}, 2); }).find("NaN"), std::string::npos);
  EXPECT_EQ(one.first_outside(at::zeros({4, 3}, at::kDouble)), "");
  at::Tensor x = at::zeros({4, 3}, at::kDouble);
  x[2][1] = 1.5;
  EXPECT_EQ(one.first_outside(x), "row 2: feature 1 = 1.5 is above its upper bound 1");
  EXPECT_EQ(one.inside(x).sum().item<int64_t>(), 3);
  EXPECT_THROW(one.to_unbounded(at::zeros({4, 2}, at::kDouble)), InvalidArgument);
}

TEST(Bounds, ABoxIsMappedOrRejectedNeverBoth) {
  const Bounds box = Bounds::from_lists({-1}, {1}, 2);
  const BoxUse reject = use_box(box, KeepWithin::Reject);
  EXPECT_TRUE(reject.mapped.none());
  EXPECT_TRUE(at::equal(reject.rejected.upper, box.upper));
  // Auto is how a checkpoint written before data.keep_within reads: its bounds were all mapped.
  for (const KeepWithin keep : {KeepWithin::Map, KeepWithin::Auto}) {
    const BoxUse map = use_box(box, keep);
    EXPECT_TRUE(at::equal(map.mapped.lower, box.lower));
    EXPECT_TRUE(map.rejected.none());
  }
  EXPECT_TRUE(use_box(Bounds{}, KeepWithin::Reject).rejected.none());
}

TEST(Bounds, ABoundedModelSamplesInsideWithExactLogDensities) {
  // A Gaussian in unbounded space (the exact diffused mixture) behind the logit map of [-1, 1]^2:
  // its samples stay inside, their logits have the Gaussian's moments, and log p(x) is the
  // Gaussian's log-density at logit x plus the map's log-Jacobian (-inf outside).
  const at::Tensor mean = at::tensor({0.5, -1.0}, at::kDouble).reshape({1, 2});
  const at::Tensor cov = at::tensor({1.0, 0.3, 0.3, 0.5}, at::kDouble).reshape({1, 2, 2});
  const GaussianMixture gaussian(at::ones({1}, at::kDouble), mean, cov);
  Model model = mixture_model(gaussian, SDEConfig{});
  model.bounds = Bounds::from_lists({-1}, {1}, 2);

  EDMHeunConfig edm;
  edm.steps = 40;
  EDMHeunSampler sampler(edm);
  const at::Tensor x = sample_model(model, sampler, 4000, 3);
  EXPECT_TRUE(model.bounds.inside(x).all().item<bool>());
  const at::Tensor u = model.bounds.to_unbounded(x);
  EXPECT_TRUE(at::allclose(u.mean(0), mean[0], 0, 0.06)) << u.mean(0);
  EXPECT_TRUE(at::allclose(at::cov(u.t()), cov[0], 0, 0.08)) << at::cov(u.t());

  const at::Tensor points = at::tensor({0.2, -0.4, 0.6, -0.8, 0.0, 0.0, 1.5, 0.0}, at::kDouble).reshape({4, 2});
  LikelihoodConfig tight;
  tight.solver.rtol = tight.solver.atol = 1e-8;
  const at::Tensor log_p = model_log_likelihood(model, points, tight, 0).log_prob;
  const at::Tensor inner = points.narrow(0, 0, 3);
  const at::Tensor u_inner = model.bounds.to_unbounded(inner);
  // Exactly the unbounded model's log-density at the logits plus the map's log-Jacobian (nats)...
  Model unbounded = model;
  unbounded.bounds = Bounds{};
  const at::Tensor in_u = model_log_likelihood(unbounded, model.bounds.to_unbounded(points), tight, 0).log_prob;  // the same batch
  EXPECT_TRUE(at::allclose(log_p.narrow(0, 0, 3), in_u.narrow(0, 0, 3) + model.bounds.log_abs_det_jacobian(inner), 0, 1e-9));
  // ...which is the Gaussian's to within the ODE's hundredths (p_T is taken as N(0, I), off by m(T) mu).
  const at::Tensor expected = gaussian.log_prob(u_inner) + model.bounds.log_abs_det_jacobian(inner);
  EXPECT_TRUE(at::allclose(log_p.narrow(0, 0, 3), expected, 0, 0.03)) << log_p << expected;
  EXPECT_TRUE(std::isinf(log_p[3].item<double>()) && log_p[3].item<double>() < 0);
  // Inpainting observes the data linearly, which the logit map is not: refused.
  try {
    model_inpaint(model, points.narrow(0, 0, 1), at::ones({2}, at::kBool), InpaintConfig{}, 0);
    ADD_FAILURE() << "a bounded model was inpainted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("bounded data"), std::string::npos) << e.what();
  }
}

// A model kept within its box by rejection (data.keep_within = reject): the exact model of a
// conditional Gaussian whose mean moves with y, truncated to [-1, 1]^2. Its samples are the
// truncated Gaussian's (moments in closed form), its log-densities the Gaussian's less log Z(y),
// the mass inside, estimated per distinct condition with the error bar it reports.
TEST(Bounds, AModelKeptWithinItsSupportByRejection) {
  const double(&mu)[2] = kTruncatedMean, (&sd)[2] = kTruncatedSd;
  const GaussianMixture gaussian = truncated_gaussian();
  Model model = truncated_gaussian_model();
  ASSERT_TRUE(model.bounds.none());

  const auto phi = [](double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI); };
  const auto Phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  const double ys[2] = {0.0, 0.8};
  EDMHeunConfig edm;
  edm.steps = 40;
  EDMHeunSampler sampler(edm);
  const int64_t n = 4000;
  const at::Tensor cond = at::tensor({ys[0], ys[1]}, at::kDouble).reshape({2, 1});
  SupportStats stats;
  const at::Tensor x = sample_model_given(model, sampler, cond, n, 5, {}, {}, &stats);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{2, n, 2}));
  EXPECT_TRUE(model.inside(x.reshape({2 * n, 2})).all().item<bool>());
  double z[2];
  for (int c = 0; c < 2; ++c) {
    z[c] = 1;
    for (int d = 0; d < 2; ++d) {
      const double m = mu[d] + (d == 0 ? ys[c] : 0.0), a = (-1 - m) / sd[d], b = (1 - m) / sd[d];
      const double mass = Phi(b) - Phi(a), mean = m + sd[d] * (phi(a) - phi(b)) / mass;
      z[c] *= mass;
      EXPECT_NEAR(x[c].select(1, d).mean().item<double>(), mean, 0.04) << "condition " << c << ", feature " << d;
    }
  }
  // What the report says: the share of first draws outside is 1 - Z on average over the two
  // conditions (binomial sd 0.006 here), the lower Z is the lowest share inside, nothing clamped.
  EXPECT_EQ(stats.rows, 2 * n);
  EXPECT_EQ(stats.conditions, 2);
  EXPECT_NEAR(double(stats.outside) / double(stats.rows), 1 - (z[0] + z[1]) / 2, 0.025);
  EXPECT_NEAR(stats.lowest_share, std::min(z[0], z[1]), 0.03);
  EXPECT_GE(stats.redraws, stats.outside);
  EXPECT_EQ(stats.clamped, 0);
  EXPECT_NE(stats.summary().find("drawn again"), std::string::npos) << stats.summary();
  EXPECT_EQ(stats.summary().find("moved onto"), std::string::npos) << stats.summary();
  SupportStats unbounded;  // a model without a support reports nothing
  sample_model_given(mixture_model(gaussian, SDEConfig{}), sampler, cond, 10, 5, {}, {}, &unbounded);
  EXPECT_EQ(unbounded.rows, 0);
  EXPECT_TRUE(unbounded.summary().empty());

  // log p at points inside for each condition, and one outside.
  const at::Tensor points = at::tensor({0.2, -0.4, 0.9, -0.8, 0.0, 0.5, 1.5, 0.0}, at::kDouble).reshape({4, 2});
  const at::Tensor point_cond = at::tensor({ys[0], ys[1], ys[1], ys[0]}, at::kDouble).reshape({4, 1});
  LikelihoodConfig tight;
  tight.solver.rtol = tight.solver.atol = 1e-7;
  const LikelihoodResult r = model_log_likelihood(model, points, tight, 0, {}, point_cond);
  const GaussianMixture shifted[2] = {
      GaussianMixture(gaussian.weights(), gaussian.means(), gaussian.covs()),
      GaussianMixture(gaussian.weights(), gaussian.means() + at::tensor({ys[1], 0.0}, at::kDouble), gaussian.covs())};
  const int which[3] = {0, 1, 1};
  for (int i = 0; i < 3; ++i) {
    const double exact = shifted[which[i]].log_prob(points.narrow(0, i, 1))[0].item<double>() - std::log(z[which[i]]);
    const double expected_error = std::sqrt((1 - z[which[i]]) / (z[which[i]] * kSupportDraws));
    const double error = r.std_error[i].item<double>();
    EXPECT_NEAR(error, expected_error, 0.2 * expected_error) << "row " << i;
    // p_T is taken as N(0, I): the ODE's log-density is the Gaussian's to within hundredths.
    EXPECT_NEAR(r.log_prob[i].item<double>(), exact, 4 * expected_error + 0.03) << "row " << i;
  }
  EXPECT_TRUE(std::isinf(r.log_prob[3].item<double>()) && r.log_prob[3].item<double>() < 0);
  // The rows of one condition share one Z: the unnormalised log-densities differ by log Z only.
  const LikelihoodResult q = model_log_likelihood_unnormalised(model, points, tight, 0, {}, point_cond);
  EXPECT_NEAR((q.log_prob[1] - r.log_prob[1]).item<double>(), (q.log_prob[2] - r.log_prob[2]).item<double>(), 1e-9);

  // A condition whose mass lies almost all outside (Z ~ 1e-20): its samples are moved onto the
  // box without a hundred rounds of draws, and its log-density comes with the error bar of a
  // share that no draw found.
  const at::Tensor far = at::tensor({6.0}, at::kDouble).reshape({1, 1});
  SupportStats lost_stats;
  const at::Tensor moved = sample_model_given(model, sampler, far, 500, 5, {}, {}, &lost_stats).reshape({500, 2});
  EXPECT_TRUE(model.inside(moved).all().item<bool>());
  EXPECT_EQ(lost_stats.clamped, 500);
  EXPECT_LT(lost_stats.lowest_share, 0.01);
  EXPECT_NE(lost_stats.summary().find("moved onto the box"), std::string::npos) << lost_stats.summary();
  EXPECT_NEAR(moved.select(1, 0).min().item<double>(), 1.0, 1e-12);  // all on the face x_0 = 1
  const LikelihoodResult lost = model_log_likelihood(model, points.narrow(0, 0, 1), tight, 0, {}, far);
  EXPECT_TRUE(std::isfinite(lost.log_prob[0].item<double>()));
  EXPECT_GT(lost.std_error[0].item<double>(), 1.0);
}

// Draws with their log-density from the same truncated conditional Gaussian: each draw's log p is
// the Gaussian's less log Z(y), Z from the first draws where a condition has kSupportDraws of
// them and from draws of its own where it has fewer, the error bar as reported. A bounded model's
// draws carry the map's log-Jacobian as its log-likelihood does, and a draw moved onto the box
// has no density (NaN).
TEST(Bounds, DrawsWithTheirLogDensityUnderASupport) {
  const double(&mu)[2] = kTruncatedMean, (&sd)[2] = kTruncatedSd;
  const GaussianMixture gaussian = truncated_gaussian();
  Model model = truncated_gaussian_model();
  const auto Phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  const auto mass_inside = [&](double y) {
    double z = 1;
    for (int d = 0; d < 2; ++d) {
      const double m = mu[d] + (d == 0 ? y : 0.0);
      z *= Phi((1 - m) / sd[d]) - Phi((-1 - m) / sd[d]);
    }
    return z;
  };
  const auto score = model.score_model();
  LikelihoodConfig config;
  config.solver.rtol = config.solver.atol = 1e-6;
  // Condition 0.0 with 1,500 draws (Z from them), 0.8 with 20 (Z from draws of its own).
  const at::Tensor y = at::cat({at::zeros({1500, 1}, at::kDouble), at::full({20, 1}, 0.8, at::kDouble)});
  SupportStats stats;
  const ModelDraws d = sample_model_with_density(model, *score, config, y.size(0), y, 4, {}, &stats);
  EXPECT_TRUE(model.inside(d.x).all().item<bool>());
  EXPECT_GT(stats.outside, 0);
  for (const auto& [begin, rows, cond, m] : {std::tuple{0, 1500, 0.0, 1500.0}, std::tuple{1500, 20, 0.8, double(kSupportDraws)}}) {
    const double z = mass_inside(cond);
    const GaussianMixture shifted(gaussian.weights(), gaussian.means() + at::tensor({cond, 0.0}, at::kDouble), gaussian.covs());
    const at::Tensor x = d.x.narrow(0, begin, rows);
    const at::Tensor exact = shifted.log_prob(x).to(at::kDouble) - std::log(z);
    const double expected_error = std::sqrt((1 - z) / (z * m));
    const at::Tensor error = d.std_error.narrow(0, begin, rows);
    EXPECT_NEAR(error.min().item<double>(), expected_error, 0.2 * expected_error) << "condition " << cond;
    EXPECT_NEAR(error.max().item<double>(), error.min().item<double>(), 1e-12) << "one Z per condition";
    // p_T is taken as N(0, I): the ODE's density is the Gaussian's to within hundredths, off by a
    // common log Z error.
    const at::Tensor diff = d.log_prob.narrow(0, begin, rows) - exact;
    EXPECT_NEAR(diff.mean().item<double>(), 0.0, 4 * expected_error + 0.03) << "condition " << cond;
    EXPECT_LT((diff - diff.mean()).abs().max().item<double>(), 0.03) << "condition " << cond;
  }
  // The normalised log-likelihood of the same points, for the first condition, agrees.
  const LikelihoodResult back = model_log_likelihood(model, d.x.narrow(0, 0, 5), config, 0, {}, y.narrow(0, 0, 5));
  EXPECT_LT((back.log_prob - d.log_prob.narrow(0, 0, 5)).abs().max().item<double>(),
            4 * std::hypot(back.std_error[0].item<double>(), d.std_error[0].item<double>()) + 1e-3);

  // A condition whose draws almost all fall outside: moved onto the box, no density.
  const ModelDraws lost = sample_model_with_density(model, *score, config, 200, at::full({200, 1}, 6.0, at::kDouble), 4);
  EXPECT_TRUE(at::isnan(lost.log_prob).all().item<bool>());
  EXPECT_TRUE(model.inside(lost.x).all().item<bool>());

  // A box mapped onto unbounded space: the draws' log p is the Gaussian's at their logits plus
  // the map's log-Jacobian.
  const GaussianMixture plain(gaussian.weights(), gaussian.means(), gaussian.covs());
  Model mapped = mixture_model(plain, SDEConfig{});
  mapped.bounds = Bounds::from_lists({-1}, {1}, 2);
  const ModelDraws b = sample_model_with_density(mapped, *mapped.score_model(), config, 50, at::Tensor(), 2);
  const at::Tensor expected = plain.log_prob(mapped.bounds.to_unbounded(b.x)) + mapped.bounds.log_abs_det_jacobian(b.x);
  EXPECT_LT((b.log_prob - expected).abs().max().item<double>(), 0.03);
}

// More draws for the box's share Z (support_draws) shrink its error, which every row of a condition
// shares, as 1 / sqrt(m): the error reported is Z's binomial one and the log-density stays within
// it of the exact truncated Gaussian's. Both for log p of given points and for draws whose
// condition has fewer rows than the draws asked for.
TEST(Bounds, MoreSupportDrawsShrinkTheSharedErrorOfZ) {
  const double(&mu)[2] = kTruncatedMean, (&sd)[2] = kTruncatedSd;
  const GaussianMixture gaussian = truncated_gaussian();
  Model model = truncated_gaussian_model();
  const auto Phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  const double cond = 0.8;
  double z = 1;
  for (int d = 0; d < 2; ++d) {
    const double m = mu[d] + (d == 0 ? cond : 0.0);
    z *= Phi((1 - m) / sd[d]) - Phi((-1 - m) / sd[d]);
  }
  const GaussianMixture shifted(gaussian.weights(), gaussian.means() + at::tensor({cond, 0.0}, at::kDouble), gaussian.covs());
  const at::Tensor points = at::tensor({0.2, -0.4, 0.9, -0.8}, at::kDouble).reshape({2, 2});
  const at::Tensor y = at::full({2, 1}, cond, at::kDouble);
  LikelihoodConfig config;
  config.solver.rtol = config.solver.atol = 1e-6;
  const at::Tensor exact = shifted.log_prob(points).to(at::kDouble) - std::log(z);
  for (const int64_t m : {int64_t{100}, int64_t{20000}}) {
    const LikelihoodResult r = model_log_likelihood(model, points, config, 0, {}, y, {}, 1, m);
    const double expected_error = std::sqrt((1 - z) / (z * static_cast<double>(m)));
    EXPECT_NEAR(r.std_error[0].item<double>(), expected_error, 0.2 * expected_error) << m << " draws";
    EXPECT_LT((r.log_prob - exact).abs().max().item<double>(), 4 * expected_error + 0.03) << m << " draws";
    // Both rows share that error: their mean keeps it whole (the divergence is exact).
    EXPECT_NEAR(mean_standard_error(r), r.std_error[0].item<double>(), 1e-12) << m << " draws";
  }
  // Own errors average away over the rows, a shared one does not: two groups of two rows, own
  // errors 0.3 and shared ones 0.1 (group 0) and 0.2 (group 1).
  LikelihoodResult mixed;
  mixed.shared_error = at::tensor({0.1, 0.1, 0.2, 0.2}, at::kDouble);
  mixed.shared_group = at::tensor({0, 0, 1, 1}, at::kLong);
  mixed.std_error = at::hypot(at::full({4}, 0.3, at::kDouble), mixed.shared_error);
  EXPECT_NEAR(mean_standard_error(mixed), std::sqrt(4 * 0.09 + 0.2 * 0.2 + 0.4 * 0.4) / 4, 1e-12);
  mixed.shared_error = at::Tensor();
  EXPECT_NEAR(mean_standard_error(mixed), std::sqrt(mixed.std_error.square().sum().item<double>()) / 4, 1e-12);
  // 50 draws of the condition and 5,000 for Z: Z from 5,000 draws of its own.
  const auto score = model.score_model();
  const ModelDraws d = sample_model_with_density(model, *score, config, 50, at::full({50, 1}, cond, at::kDouble), 3, {},
                                                 nullptr, Communicator(), 5000);
  const double expected_error = std::sqrt((1 - z) / (z * 5000.0));
  EXPECT_NEAR(d.std_error.min().item<double>(), expected_error, 0.2 * expected_error);
  EXPECT_NEAR((d.log_prob - (shifted.log_prob(d.x).to(at::kDouble) - std::log(z))).mean().item<double>(), 0.0,
              4 * expected_error + 0.03);
  for (const int64_t bad : {int64_t{0}, kMostSupportDraws + 1})
    EXPECT_EQ(error_of([&] { model_log_likelihood(model, points, config, 0, {}, y, {}, 1, bad); }),
              "support_draws must be in [1, 10000000], got " + std::to_string(bad));
}

TEST(Bounds, ClampMovesEachFeatureOntoItsBox) {
  const Bounds b = four_kinds();
  const at::Tensor x = at::tensor({-3.0, 0.0, 5.0, 9.0, 0.5, 1.0, -2.0, -9.0}, at::kDouble).reshape({2, 4});
  const at::Tensor expected = at::tensor({-1.0, 0.5, 3.0, 9.0, 0.5, 1.0, -2.0, -9.0}, at::kDouble).reshape({2, 4});
  EXPECT_TRUE(at::equal(b.clamp(x), expected)) << b.clamp(x);
  EXPECT_TRUE(at::equal(Bounds{}.clamp(x), x));
  // Bounds float32 cannot hold (a found box's): what lands on them in float32 stays inside, by
  // clamping and by the logit map's saturated ends alike (rounding to nearest would step outside).
  const Bounds odd = Bounds::from_lists({-1.0008548319339752}, {1.0005154240131378}, 1);
  const at::Tensor far = at::tensor({-40.0f, 40.0f}).reshape({2, 1});
  for (const at::Tensor& y : {odd.clamp(far), odd.to_bounded(far)}) {
    ASSERT_EQ(y.scalar_type(), at::kFloat);
    EXPECT_TRUE(odd.inside(y).all().item<bool>()) << y;
    EXPECT_NEAR(y[0].item<double>(), -1.0008548319339752, 1e-6);
    EXPECT_NEAR(y[1].item<double>(), 1.0005154240131378, 1e-6);
  }
}

// Bounds::find: the sides where a feature's density stays up to its extreme (a uniform's, an
// exponential's zero) are bounded just beyond the extreme; tails (a Gaussian's, a Student's, a
// log-normal's) are not; nor is anything with too few rows, or a constant.
TEST(Bounds, FindsTheEdgesTheRowsShowAndNoTails) {
  at::manual_seed(3);
  const int64_t n = 4000;
  const at::Tensor uniform = at::rand({n}, at::kDouble) * 2 - 1;
  const at::Tensor exponential = -at::log(at::rand({n}, at::kDouble));
  const at::Tensor gaussian = at::randn({n}, at::kDouble);
  const at::Tensor student = at::randn({n}, at::kDouble) / at::sqrt((at::randn({n, 3}, at::kDouble).pow(2)).mean(1));
  const at::Tensor lognormal = at::exp(0.5 * at::randn({n}, at::kDouble));
  const at::Tensor rows = at::stack({uniform, exponential, gaussian, student, lognormal}, 1);
  const Bounds b = Bounds::find(rows);
  ASSERT_FALSE(b.none());
  const double inf = std::numeric_limits<double>::infinity();
  // The uniform's bounds lie beyond its extremes by about one spacing (2 / n), close to -1 and 1.
  const double lo = b.lower[0].item<double>(), hi = b.upper[0].item<double>();
  EXPECT_LT(lo, uniform.min().item<double>());
  EXPECT_GT(hi, uniform.max().item<double>());
  EXPECT_NEAR(lo, -1, 10.0 / n);
  EXPECT_NEAR(hi, 1, 10.0 / n);
  EXPECT_NEAR(b.lower[1].item<double>(), 0, 10.0 / n);
  EXPECT_EQ(b.upper[1].item<double>(), inf);
  for (int64_t f = 2; f < 5; ++f) {
    EXPECT_EQ(b.lower[f].item<double>(), -inf) << f;
    EXPECT_EQ(b.upper[f].item<double>(), inf) << f;
  }
  EXPECT_EQ(b.first_outside(rows), "");  // every training row is inside
  EXPECT_EQ(b.lower_list().size(), 5u);
  EXPECT_EQ(b.lower_list()[0], lo);
  EXPECT_EQ(b.upper_list()[2], inf);
  // Only tails: nothing. Too few rows, or a constant: nothing.
  EXPECT_TRUE(Bounds::find(rows.narrow(1, 2, 3)).none());
  EXPECT_TRUE(Bounds::find(rows.narrow(0, 0, 499)).none());
  EXPECT_TRUE(Bounds::find(at::ones({n, 2}, at::kDouble)).none());
  EXPECT_TRUE(Bounds{}.lower_list().empty());
}

// How often Bounds::find finds each side, in 100 draws of 500 and of 10,000 rows: a uniform's
// sides nearly always, a Gaussian's, a Student t_3's and a mixture of two narrow Gaussians' never
// (in the rule's own trials: 0 of 200 at every size from 500 to 10^5 rows, bounds.cpp).
TEST(Bounds, FindsAUniformsSidesAndNoTailsInRepeatedDraws) {
  at::manual_seed(11);
  for (const int64_t n : {500, 10000}) {
    const auto found_sides = [n](const std::function<at::Tensor()>& draw) {
      int64_t sides = 0;
      for (int trial = 0; trial < 100; ++trial) {
        const Bounds b = Bounds::find(draw().reshape({n, 1}));
        if (!b.none()) sides += at::isfinite(b.lower).sum().item<int64_t>() + at::isfinite(b.upper).sum().item<int64_t>();
      }
      return sides;
    };
    EXPECT_GE(found_sides([n] { return at::rand({n}, at::kDouble); }), 195) << n;
    EXPECT_EQ(found_sides([n] { return at::randn({n}, at::kDouble); }), 0) << n;
    EXPECT_EQ(found_sides([n] { return at::randn({n}, at::kDouble) / at::sqrt(at::randn({n, 3}, at::kDouble).pow(2).mean(1)); }), 0) << n;
    EXPECT_EQ(found_sides([n] { return at::randn({n}, at::kDouble) * 0.3 + 3 * at::sign(at::rand({n}, at::kDouble) - 0.5); }), 0) << n;
  }
}
