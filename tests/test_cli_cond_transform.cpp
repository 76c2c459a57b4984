// Conditions given to the network as their logarithm (data.cond_transform): the automatic choice
// (positive, heavy-tailed conditions only), the transform and its refusals, and a posterior run on
// log-normal conditions whose samples match the analytic posterior.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "cli_harness.hpp"
#include "error_of.hpp"
#include "sbgm/data/condition_transform.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/run/run_defaults.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

TEST(CondTransform, TheLogIsChosenForPositiveHeavyTailedConditionsOnly) {
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

TEST(CondTransform, TheTransformAndWhatItRefuses) {
  const at::Tensor x = at::tensor({1.0, 2.0, 4.0, 8.0}).reshape({2, 2});
  EXPECT_TRUE(at::allclose(transform_conditions(CondTransform::Log, x), at::log(x)));
  EXPECT_TRUE(transform_conditions(CondTransform::None, x).equal(x));
  EXPECT_TRUE(transform_conditions(CondTransform::Auto, x).equal(x));  // a run settled before the key existed
  const std::string err = error_of([] {
    transform_conditions(CondTransform::Log, at::tensor({1.0, 2.0, 3.0, -4.0}).reshape({2, 2}));
  });
  EXPECT_NE(err.find("row 1, feature 1 = -4 is not positive"), std::string::npos) << err;
  EXPECT_THROW(transform_conditions(CondTransform::Log, at::tensor({0.0})), InvalidArgument);
  EXPECT_EQ(cond_transform_from_string("log"), CondTransform::Log);
  EXPECT_THROW(cond_transform_from_string("exp"), InvalidArgument);
}

TEST(CondTransform, AutoSettlesFromTheConditions) {
  RunConfig c;
  EXPECT_EQ(c.get("data.cond_transform"), "auto");
  EXPECT_EQ(settle_auto_keys(c, DataFacts{1000, 3, true}).data.cond_transform, CondTransform::Log);
  EXPECT_EQ(settle_auto_keys(c, DataFacts{1000, 3, false}).data.cond_transform, CondTransform::None);
  EXPECT_EQ(settle_auto_keys(c, DataFacts{1000, 0, true}).data.cond_transform, CondTransform::None);
  c.set("data.cond_transform", "none");
  EXPECT_EQ(settle_auto_keys(c, DataFacts{1000, 3, true}).data.cond_transform, CondTransform::None);
  RunConfig u;
  u.data.dataset = "ring8";
  u.set("data.cond_transform", "log");
  EXPECT_THROW(u.validate(), InvalidArgument);  // no conditions to take the log of
}

namespace {

// theta ~ N(0, I_2), x = exp(2 theta + 0.5 z): log x is linear-Gaussian in theta, so the posterior
// is N(8 log x / 17, 1/17) per feature (sd 0.243), while x itself spans four decades.
const fs::path& log_normal_run() {
  static const fs::path run = [] {
    const fs::path dir = scratch() / "cond_transform_run";
    fs::create_directories(dir);
    at::Generator gen = make_generator(at::kCPU, 8);
    const at::Tensor theta = at::randn({4000, 2}, gen);
    write_npy((dir / "theta.npy").string(), theta);
    write_npy((dir / "x.npy").string(), at::exp(2 * theta + 0.5 * at::randn({4000, 2}, gen)));
    write_npy((dir / "xo.npy").string(), at::exp(at::tensor({1.0f, -1.0f, 3.0f, 0.0f})).reshape({2, 2}));
    const CliResult r = sbgm_cli("train --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string() +
                                 " --out " + (dir / "run").string() +
                                 " --steps 3000 --model.width 64 --model.depth 2 --model.baseline none --sample.n 50 --threads 1");
    EXPECT_EQ(r.code, 0) << r.err;
    return dir;
  }();
  return run;
}

}  // namespace

TEST(CliCondTransform, LogNormalConditionsAreTakenAsLogsAndThePosteriorIsRight) {
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

TEST(CliCondTransform, ConditionsThatAreNotPositiveAreRefused) {
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
