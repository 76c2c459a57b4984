// Conditions given to the network as their logarithm (data.cond_transform), and parameters
// modelled as theirs (data.transform): the automatic choices (positive, heavy-tailed rows only),
// the transforms and their refusals, and posterior runs on log-normal conditions and on log-normal
// parameters whose samples and densities match the analytic posteriors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "cli_harness.hpp"
#include "error_of.hpp"
#include "sbgm/data/feature_transform.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/run_defaults.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

TEST(FeatureTransform, TheLogIsChosenForPositiveHeavyTailedConditionsOnly) {
  at::Generator gen = make_generator(at::kCPU, 3);
  const at::Tensor normal = at::randn({5000, 3}, gen);
  EXPECT_TRUE(log_symmetrises(at::exp(normal)));          // log-normal: skewness 6.2 -> 0
  EXPECT_TRUE(log_symmetrises(at::exp(0.5 * normal)));    // 1.75 -> 0
  EXPECT_FALSE(log_symmetrises(normal + 10));             // positive but symmetric
  EXPECT_FALSE(log_symmetrises(at::rand({5000, 3}, gen) + 1));
  EXPECT_FALSE(log_symmetrises(-at::log(at::rand({5000, 3}, gen))));  // exponential: the log skews it left
  at::Tensor with_zero = at::exp(normal);
  with_zero[7][1] = 0;
  EXPECT_FALSE(log_symmetrises(with_zero));               // not positive
  // A constant feature is left out of the skewness, not a division by zero.
  at::Tensor constant = at::exp(normal);
  constant.select(1, 2).fill_(4);
  EXPECT_TRUE(log_symmetrises(constant));
  EXPECT_FALSE(log_symmetrises(at::ones({100, 2})));
}

TEST(FeatureTransform, TheLogOfTheDataIsChosenWhereAGaussianFitsItBetter) {
  at::Generator gen = make_generator(at::kCPU, 5);
  const at::Tensor normal = at::randn({1000, 2}, gen);
  // sir's prior: log-normal with sigma 0.5 and 0.2.
  EXPECT_TRUE(log_fits_better(at::exp(normal * at::tensor({0.5, 0.2}, at::kFloat) + at::tensor({-0.9f, -2.1f}))));
  EXPECT_TRUE(log_fits_better(-at::log(at::rand({1000, 2}, gen))));  // exponential
  EXPECT_FALSE(log_fits_better(normal + 10));
  EXPECT_FALSE(log_fits_better(at::rand({1000, 2}, gen) + 1));  // U(1, 2)
  EXPECT_FALSE(log_fits_better(at::rand({1000, 2}, gen)));      // U(0, 1): its log is skewed
  EXPECT_FALSE(log_fits_better(normal));                        // not positive
  at::Tensor constant = at::exp(0.5 * normal);
  constant.select(1, 1).fill_(3);  // left out, not a division by zero
  EXPECT_TRUE(log_fits_better(constant));
  EXPECT_FALSE(log_fits_better(at::ones({100, 2})));
  EXPECT_EQ(log_fit_statistic(normal), -std::numeric_limits<double>::infinity());
  EXPECT_GT(log_fit_statistic(at::exp(0.5 * normal)), 5.0);  // sir's and lotka_volterra's: 8–14 at 1000 rows
}

TEST(FeatureTransform, TheTransformAndWhatItRefuses) {
  const at::Tensor x = at::tensor({1.0, 2.0, 4.0, 8.0}).reshape({2, 2});
  EXPECT_TRUE(at::allclose(transform_conditions(FeatureTransform::Log, x), at::log(x)));
  EXPECT_TRUE(transform_conditions(FeatureTransform::None, x).equal(x));
  EXPECT_TRUE(transform_conditions(FeatureTransform::Auto, x).equal(x));  // a run settled before the key existed
  const std::string err = error_of([] {
    transform_conditions(FeatureTransform::Log, at::tensor({1.0, 2.0, 3.0, -4.0}).reshape({2, 2}));
  });
  EXPECT_NE(err.find("row 1, feature 1 = -4 is not positive"), std::string::npos) << err;
  EXPECT_THROW(transform_conditions(FeatureTransform::Log, at::tensor({0.0})), InvalidArgument);
  EXPECT_EQ(feature_transform_from_string("log"), FeatureTransform::Log);
  EXPECT_THROW(feature_transform_from_string("exp"), InvalidArgument);
}

TEST(FeatureTransform, AutoSettlesFromTheConditions) {
  RunConfig c;
  EXPECT_EQ(c.get("data.cond_transform"), "auto");
  EXPECT_EQ(settle_auto_keys(c, DataFacts{1000, 3, true}).data.cond_transform, FeatureTransform::Log);
  EXPECT_EQ(settle_auto_keys(c, DataFacts{1000, 3, false}).data.cond_transform, FeatureTransform::None);
  EXPECT_EQ(settle_auto_keys(c, DataFacts{1000, 0, true}).data.cond_transform, FeatureTransform::None);
  c.set("data.cond_transform", "none");
  EXPECT_EQ(settle_auto_keys(c, DataFacts{1000, 3, true}).data.cond_transform, FeatureTransform::None);
  RunConfig u;
  u.data.dataset = "ring8";
  u.set("data.cond_transform", "log");
  EXPECT_THROW(u.validate(), InvalidArgument);  // no conditions to take the log of
}

TEST(FeatureTransform, TheDataTransformSettlesFromThePosteriorsParameters) {
  RunConfig c;
  EXPECT_EQ(c.get("data.transform"), "auto");
  DataFacts log_normal{1000, 3};
  log_normal.log_fits_better = true;
  EXPECT_EQ(settle_auto_keys(c, log_normal).data.transform, FeatureTransform::Log);
  EXPECT_EQ(settle_auto_keys(c, DataFacts{1000, 3}).data.transform, FeatureTransform::None);
  DataFacts unconditional = log_normal;
  unconditional.cond_dim = 0;
  EXPECT_EQ(settle_auto_keys(c, unconditional).data.transform, FeatureTransform::None);
  // Bounds the user gives state the support: the run adds no log of its own.
  RunConfig bounded = c;
  bounded.set("data.lower", "0");
  EXPECT_EQ(settle_auto_keys(bounded, log_normal).data.transform, FeatureTransform::None);
  c.set("data.transform", "none");
  EXPECT_EQ(settle_auto_keys(c, log_normal).data.transform, FeatureTransform::None);
}

TEST(FeatureTransform, TheDataLogIsTheMapOfALowerBoundZero) {
  RunConfig c;
  c.set("data.transform", "log");
  const BoxUse logs = model_box(c, {3});
  EXPECT_TRUE(logs.rejected.none());
  ASSERT_FALSE(logs.mapped.none());
  const at::Tensor x = at::tensor({0.5, 2.0, 7.0}, at::kDouble).reshape({1, 3});
  EXPECT_TRUE(at::allclose(logs.mapped.to_unbounded(x), at::log(x)));
  EXPECT_NEAR(logs.mapped.log_abs_det_jacobian(x).item<double>(), -std::log(0.5 * 2.0 * 7.0), 1e-12);
  // A box kept by rejection goes with it; a mapped one cannot.
  c.set("data.upper", "10");
  c.set("data.keep_within", "reject");
  const BoxUse both = model_box(c, {3});
  EXPECT_FALSE(both.mapped.none());
  EXPECT_FALSE(both.rejected.none());
  c.set("data.keep_within", "map");
  const std::string err = error_of([&] { model_box(c, {3}); });
  EXPECT_NE(err.find("data.transform = log is the map of a lower bound 0"), std::string::npos) << err;
}

namespace {

// Writes theta.npy, x.npy and xo.npy in dir and trains a small posterior on them in dir/run.
CliResult train_small_posterior(const fs::path& dir, const at::Tensor& theta, const at::Tensor& x, const at::Tensor& xo) {
  fs::create_directories(dir);
  write_npy((dir / "theta.npy").string(), theta);
  write_npy((dir / "x.npy").string(), x);
  write_npy((dir / "xo.npy").string(), xo);
  return sbgm_cli("train --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string() + " --out " +
                  (dir / "run").string() +
                  " --steps 3000 --model.width 64 --model.depth 2 --model.baseline none --sample.n 50 --threads 1");
}

// theta ~ N(0, I_2), x = exp(2 theta + 0.5 z): log x is linear-Gaussian in theta, so the posterior
// is N(8 log x / 17, 1/17) per feature (sd 0.243), while x itself spans four decades.
const fs::path& log_normal_run() {
  static const fs::path run = [] {
    const fs::path dir = scratch() / "cond_transform_run";
    at::Generator gen = make_generator(at::kCPU, 8);
    const at::Tensor theta = at::randn({4000, 2}, gen);
    const CliResult r = train_small_posterior(dir, theta, at::exp(2 * theta + 0.5 * at::randn({4000, 2}, gen)),
                                              at::exp(at::tensor({1.0f, -1.0f, 3.0f, 0.0f})).reshape({2, 2}));
    EXPECT_EQ(r.code, 0) << r.err;
    return dir;
  }();
  return run;
}

}  // namespace

TEST(CliFeatureTransform, LogNormalConditionsAreTakenAsLogsAndThePosteriorIsRight) {
  const fs::path& dir = log_normal_run();
  EXPECT_NE(slurp(dir / "run" / "config.toml").find("cond_transform = \"log\""), std::string::npos);
  const std::string ck = " --checkpoint " + (dir / "run").string();
  const fs::path out = dir / "post.npy";
  const CliResult r = sbgm_cli("sample" + ck + " --cond " + (dir / "xo.npy").string() + " --n 4000 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor s = read_npy(out.string(), true).to(at::kDouble);
  const at::Tensor exact_mean = at::tensor({1.0, -1.0, 3.0, 0.0}).reshape({2, 2}) * (8.0 / 17.0);
  const at::Tensor mean = s.mean(1), sd = s.std(1);
  EXPECT_LT((mean - exact_mean).abs().max().item<double>(), 0.08) << mean;
  EXPECT_LT((sd / std::sqrt(1.0 / 17.0) - 1).abs().max().item<double>(), 0.15) << sd;
}

TEST(CliFeatureTransform, ConditionsThatAreNotPositiveAreRefused) {
  const fs::path& dir = log_normal_run();
  write_npy((dir / "negative.npy").string(), at::tensor({1.0f, -2.0f}).reshape({1, 2}));
  const fs::path out = dir / "never.npy";
  const CliResult r = sbgm_cli("sample --checkpoint " + (dir / "run").string() + " --cond " +
                               (dir / "negative.npy").string() + " --n 10 --out " + out.string());
  expect_one_line_error(r, "feature 1 = -2 is not positive");
  EXPECT_FALSE(fs::exists(out));
  // Training with log conditions asked for, on conditions that are not all positive.
  write_npy((dir / "x_signed.npy").string(), at::randn({4000, 2}));
  const CliResult t = sbgm_cli("train --data " + (dir / "theta.npy").string() + " --cond " +
                               (dir / "x_signed.npy").string() + " --data.cond_transform log --out " +
                               (dir / "never_run").string() + " --steps 10");
  expect_one_line_error(t, "is not positive");
  EXPECT_FALSE(fs::exists(dir / "never_run"));
}

namespace {

// log theta ~ N(0, 0.5^2 I_2) (a log-normal prior, skewness 1.75), x = log theta + 0.5 z: the
// posterior of log theta is N(x / 2, 1/8) per feature, so p(theta | x) is log-normal with density
// N(log theta; x / 2, 1/8) / theta per feature.
const fs::path& log_normal_parameters_run() {
  static const fs::path run = [] {
    const fs::path dir = scratch() / "data_transform_run";
    at::Generator gen = make_generator(at::kCPU, 9);
    const at::Tensor log_theta = 0.5 * at::randn({4000, 2}, gen);
    const CliResult r = train_small_posterior(dir, at::exp(log_theta), log_theta + 0.5 * at::randn({4000, 2}, gen),
                                              at::tensor({0.8f, -0.4f}).reshape({1, 2}));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE((r.out + r.err).find("data.transform: the training rows are positive and closer to Gaussian as their logs"),
              std::string::npos)
        << r.out << r.err;
    return dir;
  }();
  return run;
}

}  // namespace

TEST(CliFeatureTransform, LogNormalParametersAreModelledAsLogsWithTheirDensity) {
  const fs::path& dir = log_normal_parameters_run();
  const std::string config = slurp(dir / "run" / "config.toml");
  EXPECT_NE(config.find("\ntransform = \"log\""), std::string::npos) << config;
  EXPECT_NE(config.find("cond_transform = \"none\""), std::string::npos);  // x takes negative values
  const std::string ck = " --checkpoint " + (dir / "run").string();
  const fs::path out = dir / "post.npy";
  const CliResult r = sbgm_cli("sample" + ck + " --cond " + (dir / "xo.npy").string() + " --n 4000 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor s = read_npy(out.string(), true).to(at::kDouble).reshape({4000, 2});
  EXPECT_TRUE((s > 0).all().item<bool>());
  const at::Tensor logs = at::log(s), exact_mean = at::tensor({0.4, -0.2}, at::kDouble);
  EXPECT_LT((logs.mean(0) - exact_mean).abs().max().item<double>(), 0.05) << logs.mean(0);
  EXPECT_LT((logs.std(0) / std::sqrt(0.125) - 1).abs().max().item<double>(), 0.12) << logs.std(0);

  // log p(theta | x_o) at points around the posterior: the log-normal density, the log's Jacobian
  // included.
  const at::Tensor points = at::exp(at::tensor({0.4, -0.2, 0.1, 0.2, 0.8, -0.6}, at::kDouble).reshape({3, 2}));
  write_npy((dir / "points.npy").string(), points.to(at::kFloat));
  const fs::path ll = dir / "ll.npy";
  const CliResult l = sbgm_cli("loglik" + ck + " --cond " + (dir / "xo.npy").string() + " --data " +
                               (dir / "points.npy").string() + " --out " + ll.string());
  ASSERT_EQ(l.code, 0) << l.err;
  const at::Tensor lp = read_npy(ll.string(), true).to(at::kDouble);
  const at::Tensor u = at::log(points.to(at::kFloat).to(at::kDouble));
  const at::Tensor exact =
      (-(u - exact_mean).square() / (2 * 0.125) - 0.5 * std::log(2 * M_PI * 0.125) - u).sum(1);
  EXPECT_LT((lp - exact).abs().max().item<double>(), 0.15) << lp << exact;
}

TEST(CliFeatureTransform, ParametersThatAreNotPositiveAreRefusedForTheLog) {
  const fs::path& dir = log_normal_parameters_run();
  write_npy((dir / "theta_signed.npy").string(), at::randn({4000, 2}));
  const CliResult t = sbgm_cli("train --data " + (dir / "theta_signed.npy").string() + " --cond " +
                               (dir / "x.npy").string() + " --data.transform log --out " + (dir / "never_run").string() +
                               " --steps 10");
  expect_one_line_error(t, "is not positive (data.transform = log)");
  EXPECT_FALSE(fs::exists(dir / "never_run"));
  const CliResult b = sbgm_cli("train --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string() +
                               " --data.transform log --data.upper 100 --out " + (dir / "never_run").string() + " --steps 10");
  expect_one_line_error(b, "data.transform = log is the map of a lower bound 0");
  EXPECT_FALSE(fs::exists(dir / "never_run"));
}
