// `--cond` in train, sample and loglik, and `sbgm inpaint`: conditional models and inverse
// problems through the CLI, checked against Gaussian posteriors computed independently with
// NumPy/SciPy (tests/oracles/linear_gaussian.py).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "cli_harness.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

const fs::path& oracle_dir() {
  static const fs::path dir = [] {
    const fs::path d = scratch() / "linear_gaussian";
    fs::create_directories(d);
    EXPECT_EQ(run_python(std::string(SBGM_ORACLES_DIR) + "/linear_gaussian.py " + d.string()), 0);
    return d;
  }();
  return dir;
}

// A small conditional run trained with condition dropout: x in R^2 = (y, -y) + noise, y in R^1;
// beside it two conditions, two.npy [2, 1].
const fs::path& conditional_run() {
  static const fs::path run = [] {
    const fs::path dir = scratch() / "cond_run";
    fs::create_directories(dir);
    at::Generator gen = make_generator(at::kCPU, 4);
    const at::Tensor y = at::randn({1000, 1}, gen);
    write_npy((dir / "x.npy").string(), at::cat({y, -y}, 1) + 0.2 * at::randn({1000, 2}, gen));
    write_npy((dir / "y.npy").string(), y);
    write_npy((dir / "two.npy").string(), at::tensor({-1.0f, 1.0f}).reshape({2, 1}));
    const CliResult r = sbgm_cli("train --data " + (dir / "x.npy").string() + " --cond " + (dir / "y.npy").string() +
                                 " --cond-dropout 0.2 --out " + (dir / "run").string() +
                                 " --steps 200 --model.width 32 --model.depth 2 --sample.n 50 --sample.steps 20 --threads 1");
    EXPECT_EQ(r.code, 0) << r.err;
    return dir;
  }();
  return run;
}

}  // namespace

// n samples for each of M observations from the analytic posterior: [M, n, P], each block with
// the posterior's mean and variances within Monte-Carlo error.
TEST(CliConditioning, SamplesTheAnalyticPosteriorPerObservation) {
  const fs::path& dir = oracle_dir();
  const fs::path out = scratch() / "posterior_samples.npy", png = scratch() / "posterior_samples.png";
  const CliResult r = sbgm_cli("sample --gmm " + (dir / "posterior.npz").string() + " --sde ve --sigma-max 100 --cond " +
                               (dir / "observations.npy").string() + " --n 3000 --steps 500 --out " + out.string() +
                               " --png " + png.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(png));
  const at::Tensor s = read_npy(out.string(), true);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{4, 3000, 3}));
  const at::Tensor means = read_npy((dir / "post_means.npy").string(), true);
  const at::Tensor cov = read_npy((dir / "post_cov.npy").string(), true);
  for (int64_t m = 0; m < 4; ++m)
    for (int64_t i = 0; i < 3; ++i) {
      const double v = cov[i][i].item<double>();
      EXPECT_NEAR(s[m].select(1, i).mean().item<double>(), means[m][i].item<double>(), 5 * std::sqrt(v / 3000) + 0.02);
      EXPECT_NEAR(s[m].select(1, i).var().item<double>(), v, 5 * v * std::sqrt(2.0 / 3000) + 0.02);
    }
}

// log p(theta | x) per row equals scipy's posterior density (up to the prior mismatch at T).
TEST(CliConditioning, LoglikGivesTheAnalyticPosteriorDensity) {
  const fs::path& dir = oracle_dir();
  const fs::path out = scratch() / "posterior_logp.npy";
  const CliResult r = sbgm_cli("loglik --gmm " + (dir / "posterior.npz").string() + " --cond " +
                               (dir / "observations.npy").string() + " --data " + (dir / "theta.npy").string() +
                               " --out " + out.string() + " --rtol 1e-8 --atol 1e-8");
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor got = read_npy(out.string(), true), want = read_npy((dir / "logp.npy").string(), true);
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_LT((got - want).abs().max().item<double>(), 0.05);
}

// A trained conditional run: info names the condition, sample --cond gives [M, n, D] with and
// without guidance, loglik --cond gives one value per row.
TEST(CliConditioning, TrainedConditionalRunSamplesAndEvaluates) {
  const fs::path& dir = conditional_run();
  const std::string ck = " --checkpoint " + (dir / "run").string();
  const CliResult info = sbgm_cli("info" + ck);
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("condition features: 1"), std::string::npos) << info.out;
  for (const char* guidance : {"0", "2"}) {
    const fs::path out = dir / (std::string("s") + guidance + ".npy");
    const CliResult r = sbgm_cli("sample" + ck + " --cond " + (dir / "two.npy").string() + " --n 40 --steps 50 --guidance " +
                                 guidance + " --out " + out.string() + " --png " + (dir / "s.png").string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(read_npy(out.string()).sizes(), (std::vector<int64_t>{2, 40, 2}));
  }
  const fs::path ll = dir / "ll.npy";
  const CliResult r = sbgm_cli("loglik" + ck + " --cond " + (dir / "y.npy").string() + " --data " +
                               (dir / "x.npy").string() + " --out " + ll.string() + " --rtol 1e-3 --atol 1e-3");
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor values = read_npy(ll.string(), true);
  EXPECT_EQ(values.sizes(), (std::vector<int64_t>{1000}));
  EXPECT_TRUE(at::isfinite(values).all().item<bool>());
}

TEST(CliConditioning, BadConditionInputs) {
  const fs::path& dir = conditional_run();
  const fs::path& oracle = oracle_dir();
  write_npy((dir / "short.npy").string(), at::zeros({10, 1}));
  write_npy((dir / "wide.npy").string(), at::zeros({2, 3}));
  at::Tensor nan = at::zeros({2, 1});
  nan[1][0] = std::nan("");
  write_npy((dir / "nan.npy").string(), nan);
  const std::string x = " --data " + (dir / "x.npy").string(), never = " --out " + (dir / "never").string();
  const std::string out = " --out " + (dir / "never.npy").string();
  const std::string ck = " --checkpoint " + (dir / "run").string();
  // Training: conditions that disagree with the data, dropout without conditions.
  expect_one_line_error(sbgm_cli("train" + x + " --cond " + (dir / "short.npy").string() + never), "10 condition rows for 1000");
  expect_one_line_error(sbgm_cli("train" + x + " --cond-dropout 0.1" + never), "needs conditions");
  expect_one_line_error(sbgm_cli("train" + x + " --cond " + (dir / "y.npy").string() + " --cond-dropout 1" + never), "cond_dropout");
  // Sampling: no condition for a conditional model, the wrong width, NaN, a condition for an
  // unconditional model, guidance without dropout.
  expect_one_line_error(sbgm_cli("sample" + ck + out), "give conditions");
  expect_one_line_error(sbgm_cli("sample" + ck + " --cond " + (dir / "wide.npy").string() + out), "3 features");
  expect_one_line_error(sbgm_cli("sample" + ck + " --cond " + (dir / "nan.npy").string() + out), "NaN");
  expect_one_line_error(sbgm_cli("sample" + ck + " --cond " + (dir / "two.npy").string() + " --guidance -2" + out), "guidance");
  expect_one_line_error(sbgm_cli("sample --gmm " + (oracle / "posterior.npz").string() + " --cond " +
                                 (oracle / "observations.npy").string() + " --guidance 1" + out),
                        "guidance");
  expect_one_line_error(sbgm_cli("sample --gmm " + (oracle / "posterior.npz").string() + " --cond " +
                                 (dir / "two.npy").string() + out),
                        "1 features");
  // Likelihood: condition rows that are neither one per data row nor a single row.
  expect_one_line_error(sbgm_cli("loglik" + ck + x + " --cond " + (dir / "short.npy").string() + out), "10 condition rows");
  EXPECT_FALSE(fs::exists(dir / "never"));
  EXPECT_FALSE(fs::exists(dir / "never.npy"));
}

// Conditions given to an unconditional model are an error, not silently ignored; a conditional
// model without conditions is one too.
TEST(CliConditioning, ConditionsMustMatchTheModelsKind) {
  const fs::path& oracle = oracle_dir();
  const std::string out = " --out " + (scratch() / "never.npy").string();
  const std::string cond = " --cond " + (oracle / "observations.npy").string();
  expect_one_line_error(sbgm_cli("sample --gmm " + (oracle / "prior.npz").string() + cond + out), "unconditional");
  expect_one_line_error(sbgm_cli("loglik --gmm " + (oracle / "prior.npz").string() + cond + " --data " +
                                 (oracle / "theta.npy").string() + out),
                        "unconditional");
  expect_one_line_error(sbgm_cli("sample --gmm " + (oracle / "posterior.npz").string() + out), "give conditions");
  expect_one_line_error(sbgm_cli("loglik --gmm " + (oracle / "posterior.npz").string() + " --data " +
                                 (oracle / "theta.npy").string() + out),
                        "give conditions");
  EXPECT_FALSE(fs::exists(scratch() / "never.npy"));
}

// sbgm inpaint with the prior as the model: NaN in unobserved entries and a boolean mask from
// NumPy; the unobserved feature follows its conditional Gaussian; [N, D] for one sample per row,
// [N, n, D] for several; without --mask it denoises.
TEST(CliInpaint, SamplesTheConditionalOfTheUnobservedFeature) {
  const fs::path& dir = oracle_dir();
  const std::string base = "inpaint --gmm " + (dir / "prior.npz").string() + " --data " + (dir / "inpaint_obs.npy").string();
  const fs::path one = scratch() / "inpainted1.npy", many = scratch() / "inpainted.npy", png = scratch() / "inpainted.png";
  const std::string mask = " --mask " + (dir / "inpaint_mask.npy").string();
  CliResult r = sbgm_cli(base + mask + " --steps 50 --out " + one.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy(one.string()).sizes(), (std::vector<int64_t>{2, 3}));
  r = sbgm_cli(base + mask + " --n 3000 --steps 300 --out " + many.string() + " --png " + png.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(png));
  const at::Tensor x = read_npy(many.string(), true);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{2, 3000, 3}));
  const at::Tensor means = read_npy((dir / "inpaint_means.npy").string(), true);
  const double var = read_npy((dir / "inpaint_var.npy").string(), true).item<double>();
  for (int64_t row = 0; row < 2; ++row) {
    const at::Tensor free = x[row].select(1, 1);
    EXPECT_NEAR(free.mean().item<double>(), means[row].item<double>(), 5 * std::sqrt(var / 3000) + 0.02) << row;
    EXPECT_NEAR(free.var().item<double>(), var, 5 * var * std::sqrt(2.0 / 3000) + 0.02) << row;
  }
  EXPECT_EQ(x[0].select(1, 0).min().item<double>(), 1.0);
  EXPECT_EQ(x[0].select(1, 0).max().item<double>(), 1.0);
  const fs::path denoised = scratch() / "denoised.npy";
  r = sbgm_cli("inpaint --gmm " + (dir / "prior.npz").string() + " --data " + (dir / "theta.npy").string() +
               " --noise-std 0.3 --steps 50 --out " + denoised.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy(denoised.string()).sizes(), (std::vector<int64_t>{4, 3}));
}

TEST(CliInpaint, BadInputs) {
  const fs::path& dir = oracle_dir();
  const fs::path tmp = scratch() / "bad_inpaint";
  fs::create_directories(tmp);
  write_npy((tmp / "mask2.npy").string(), at::ones({2}));
  write_npy((tmp / "half.npy").string(), at::full({3}, 0.5));
  at::Tensor nan = at::zeros({2, 3});
  nan[0][0] = NAN;
  write_npy((tmp / "nan_observed.npy").string(), nan);
  const std::string prior = "inpaint --gmm " + (dir / "prior.npz").string();
  const std::string data = " --data " + (dir / "inpaint_obs.npy").string(), mask = " --mask " + (dir / "inpaint_mask.npy").string();
  const std::string out = " --out " + (tmp / "never.npy").string();
  expect_one_line_error(sbgm_cli(prior + data + " --mask " + (tmp / "mask2.npy").string() + out), "the mask has shape [2]");
  expect_one_line_error(sbgm_cli(prior + data + " --mask " + (tmp / "half.npy").string() + out), "only 0 and 1");
  expect_one_line_error(sbgm_cli(prior + " --data " + (tmp / "nan_observed.npy").string() + mask + out), "NaN");
  expect_one_line_error(sbgm_cli(prior + data + mask + " --method replace --noise-std 0.1" + out), "exact observations");
  expect_one_line_error(sbgm_cli(prior + data + mask + " --method replace --sampler ode" + out), "--sampler em");
  expect_one_line_error(sbgm_cli(prior + data + mask + " --method replace --lambda 0.5" + out), "takes no --lambda");
  expect_one_line_error(sbgm_cli(prior + data + mask + " --method guess" + out), "guess");
  expect_one_line_error(sbgm_cli(prior + data + out), "--noise-std");
  expect_one_line_error(sbgm_cli(prior + data + mask + " --n 0" + out), "at least 1");
  expect_one_line_error(sbgm_cli("inpaint --gmm " + (dir / "posterior.npz").string() + data + mask + out), "unconditional");
  EXPECT_FALSE(fs::exists(tmp / "never.npy"));
}

// An image condition (model.cond_channels = 1): a UNet learns x = y for bar images, so samples
// given a condition are close to that condition and far from the others'.
TEST(CliConditioning, ImageConditionedUNetFollowsTheConditionImage) {
  const fs::path dir = scratch() / "image_cond";
  fs::create_directories(dir);
  // 64 images of one bright bar (horizontal or vertical, any of 8 positions) on 8x8 pixels.
  at::Tensor bars = at::zeros({64, 8, 8});
  for (int64_t i = 0; i < 64; ++i) {
    const int64_t at_row = (i / 2) % 8;
    if (i % 2) bars[i].select(0, at_row).fill_(255);
    else bars[i].select(1, at_row).fill_(255);
  }
  write_npy((dir / "x.npy").string(), bars);
  write_npy((dir / "y.npy").string(), bars);
  write_npy((dir / "y_test.npy").string(), bars.narrow(0, 0, 8));
  const fs::path run = dir / "run";
  CliResult r = sbgm_cli("train --data " + (dir / "x.npy").string() + " --cond " + (dir / "y.npy").string() +
                         " --out " + run.string() +
                         " --data.image_range -1,1 --model unet --model.cond_channels 1 --model.width 16 --model.depth 1"
                         " --model.channel_mult 1,2 --model.attention_res 4 --model.heads 2 --steps 250 --batch-size 32"
                         " --lr 2e-3 --train.warmup_steps 20 --train.ema_decay 0.99 --threads 1 --sample.n 8 --sample.steps 50");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(sbgm_cli("info --checkpoint " + run.string()).out.find("condition"), std::string::npos);
  const fs::path samples = dir / "samples.npy";
  r = sbgm_cli("sample --checkpoint " + run.string() + " --cond " + (dir / "y_test.npy").string() +
               " --n 4 --steps 100 --threads 1 --out " + samples.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor x = read_npy(samples.string());  // [8, 4, 1, 8, 8] in pixel levels
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{8, 4, 1, 8, 8}));
  const at::Tensor y = bars.narrow(0, 0, 8).reshape({8, 1, 1, 8, 8});
  // Mean absolute error to the sample's own condition and to the next condition (another bar).
  const double own = (x - y).abs().mean().item<double>();
  const double other = (x - y.roll(1, 0)).abs().mean().item<double>();
  EXPECT_LT(own, 0.35 * other) << "own " << own << " other " << other;
  // A negative channel count, or image conditions for a vector network, are refused with one line.
  expect_one_line_error(sbgm_cli("train --data " + (dir / "x.npy").string() + " --cond " + (dir / "y.npy").string() +
                                 " --out " + (dir / "bad_run").string() + " --model unet --model.cond_channels -1"),
                        "model.cond_channels");
  expect_one_line_error(sbgm_cli("train --data " + (dir / "x.npy").string() + " --cond " + (dir / "y.npy").string() +
                                 " --out " + (dir / "bad_run").string() + " --model mlp --model.cond_channels 1"),
                        "needs an image network");
  // A condition image of another size is refused with one line.
  write_npy((dir / "small.npy").string(), at::zeros({2, 4, 4}));
  expect_one_line_error(sbgm_cli("sample --checkpoint " + run.string() + " --cond " + (dir / "small.npy").string() +
                                 " --n 1 --out " + (dir / "bad.npy").string()),
                        "features");
}

// sbgm diagnose on the exact posterior of the linear-Gaussian model, with held-out simulations
// from its joint: every check calibrated, in the JSON (read back by Python), the CSV and stdout.
TEST(CliDiagnose, TheExactPosteriorIsCalibrated) {
  const fs::path& oracle = oracle_dir();
  const fs::path dir = scratch() / "diagnose";
  fs::create_directories(dir);
  const CliResult r = sbgm_cli("diagnose --gmm " + (oracle / "posterior.npz").string() + " --theta " +
                               (oracle / "sbc_theta.npy").string() + " --cond " + (oracle / "sbc_x.npy").string() +
                               " --samples 200 --hpd-samples 20 --out " + (dir / "report.json").string() + " --csv " +
                               (dir / "coverage.csv").string() + " --png " + (dir / "calibration.png").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("200 held-out simulations"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("confident"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir / "calibration.png"));
  std::ofstream(dir / "check.py") << "import json, sys, csv\n"
                                     "r = json.load(open(sys.argv[1] + '/report.json'))\n"
                                     "assert r['simulations'] == 200 and len(r['ranks']) == 200, r['simulations']\n"
                                     "names = [c['name'] for c in r['checks']]\n"
                                     "assert names == ['sbc theta_0', 'sbc theta_1', 'sbc theta_2', 'hpd', 'tarp'], names\n"
                                     "assert all(c['verdict'] == 'calibrated' for c in r['checks']), r['checks']\n"
                                     "assert all(0 <= k <= 200 for row in r['ranks'] for k in row)\n"
                                     "rows = list(csv.reader(open(sys.argv[1] + '/coverage.csv')))\n"
                                     "assert rows[0] == ['level'] + names and len(rows) == 1 + len(r['levels']), rows[0]\n";
  EXPECT_EQ(run_python((dir / "check.py").string() + " " + dir.string()), 0);
}

TEST(CliDiagnose, BadInputs) {
  const fs::path& oracle = oracle_dir();
  const std::string out = " --out " + (scratch() / "never.json").string();
  const std::string sims = " --theta " + (oracle / "sbc_theta.npy").string() + " --cond " + (oracle / "sbc_x.npy").string();
  const std::string post = "diagnose --gmm " + (oracle / "posterior.npz").string();
  expect_one_line_error(sbgm_cli("diagnose --gmm " + (oracle / "prior.npz").string() + sims + out), "unconditional");
  expect_one_line_error(sbgm_cli(post + " --theta " + (oracle / "sbc_theta.npy").string() + " --cond " +
                                 (oracle / "observations.npy").string() + out),
                        "rows");
  expect_one_line_error(sbgm_cli(post + " --theta " + (oracle / "sbc_x.npy").string() + " --cond " +
                                 (oracle / "sbc_x.npy").string() + out),
                        "shape");
  expect_one_line_error(sbgm_cli(post + " --theta " + (oracle / "sbc_theta.npy").string() + " --cond " +
                                 (oracle / "sbc_theta.npy").string() + out),
                        "features");
  expect_one_line_error(sbgm_cli(post + sims + " --samples 10 --hpd-samples 20" + out), "HPD");
  expect_one_line_error(sbgm_cli(post + sims + " --out " + (scratch() / "never.txt").string()), ".json");
  EXPECT_FALSE(fs::exists(scratch() / "never.json"));
}

// sample --map on the exact linear-Gaussian posterior: the mode of each observation's posterior
// is its mean (post_means.npy, by SciPy), found to well within the posterior's spread.
TEST(CliMap, FindsTheAnalyticPosteriorMode) {
  const fs::path& oracle = oracle_dir();
  const fs::path out = scratch() / "map.npy";
  const CliResult r = sbgm_cli("sample --gmm " + (oracle / "posterior.npz").string() + " --cond " +
                               (oracle / "observations.npy").string() + " --map --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor modes = read_npy(out.string(), true);
  const at::Tensor want = read_npy((oracle / "post_means.npy").string(), true);
  ASSERT_EQ(modes.sizes(), want.sizes());
  const double spread = read_npy((oracle / "post_cov.npy").string(), true).diagonal().sqrt().min().item<double>();
  EXPECT_LT((modes - want).abs().max().item<double>(), 0.01 * spread) << modes << want;
  expect_one_line_error(sbgm_cli("sample --gmm " + (oracle / "posterior.npz").string() + " --cond " +
                                 (oracle / "observations.npy").string() + " --map --guidance 1 --out " +
                                 (scratch() / "never_map.npy").string()),
                        "--map");
  EXPECT_FALSE(fs::exists(scratch() / "never_map.npy"));
}

// --iid: the posterior given n = 1, 5 and 20 observations of one theta, composed from the
// single-observation posterior and the prior, against the closed form computed by NumPy.
TEST(CliIID, ComposesTheAnalyticPosteriorOfManyObservations) {
  const fs::path& oracle = oracle_dir();
  for (const char* n : {"1", "5", "20"}) {
    const fs::path out = scratch() / (std::string("iid_") + n + ".npy");
    const CliResult r = sbgm_cli("sample --gmm " + (oracle / "posterior.npz").string() + " --prior " +
                                 (oracle / "prior.npz").string() + " --cond " +
                                 (oracle / (std::string("iid_obs_") + n + ".npy")).string() + " --iid --iid-draws 5000 --n 4000 --out " +
                                 out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("the prior's score from the given prior"), std::string::npos) << r.out;
    const at::Tensor s = read_npy(out.string(), true);
    ASSERT_EQ(s.sizes(), (std::vector<int64_t>{4000, 3}));
    const at::Tensor mean = read_npy((oracle / (std::string("iid_mean_") + n + ".npy")).string(), true);
    const at::Tensor cov = read_npy((oracle / (std::string("iid_cov_") + n + ".npy")).string(), true);
    const at::Tensor sd = cov.diagonal().sqrt();
    // The gauss composition weighs each observation's score by its posterior's covariance,
    // estimated from --iid-draws draws; that estimate's error moves every composed sample alike,
    // by up to 0.15 sd at n = 20 with 5000 draws (seeds 0-4 of the sampler: 0.01-0.15 sd), beside
    // the 4000 samples' own error.
    const double composed = 0.15 * (std::stod(n) - 1) / 19;
    EXPECT_TRUE(((s.mean(0) - mean).abs() < (4 / std::sqrt(4000.0) + composed) * sd).all().item<bool>())
        << n << s.mean(0) << mean;
    EXPECT_LT((at::cov(s.t()) - cov).abs().max().item<double>(), 0.1 * sd.max().item<double>() * sd.max().item<double>()) << n;
  }
}

TEST(CliIID, TrainedModelsAndBadInputs) {
  const fs::path& dir = conditional_run();
  const fs::path& oracle = oracle_dir();
  // A model trained with condition dropout gives the prior's score itself.
  const fs::path out = dir / "iid.npy";
  const CliResult r = sbgm_cli("sample --checkpoint " + (dir / "run").string() + " --cond " + (dir / "two.npy").string() +
                               " --iid --iid-method factorized --n 30 --steps 10 --out " + out.string() + " --png " +
                               (dir / "iid.png").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("unconditional mode"), std::string::npos) << r.out;
  EXPECT_EQ(read_npy(out.string()).sizes(), (std::vector<int64_t>{30, 2}));
  EXPECT_TRUE(fs::exists(dir / "iid.png"));

  const std::string gmm = "sample --gmm " + (oracle / "posterior.npz").string();
  const std::string obs = " --cond " + (oracle / "iid_obs_5.npy").string();
  const std::string never = " --out " + (scratch() / "never_iid.npy").string();
  const std::string prior = " --prior " + (oracle / "prior.npz").string();
  expect_one_line_error(sbgm_cli(gmm + obs + " --iid" + never), "--prior");  // no source for the prior's score
  expect_one_line_error(sbgm_cli(gmm + " --iid" + prior + never), "--iid needs the observations");
  expect_one_line_error(sbgm_cli(gmm + obs + prior + never), "--prior applies to --iid only");
  expect_one_line_error(sbgm_cli(gmm + obs + prior + " --iid --iid-method mean" + never), "iid method");
  expect_one_line_error(sbgm_cli(gmm + obs + prior + " --iid --map" + never), "--map");
  expect_one_line_error(sbgm_cli(gmm + obs + " --iid --prior " + (oracle / "posterior.npz").string() + never), "unconditional");
  expect_one_line_error(sbgm_cli("sample --gmm " + (oracle / "prior.npz").string() + obs + prior + " --iid" + never),
                        "unconditional");
  expect_one_line_error(sbgm_cli(gmm + " --cond " + (dir / "two.npy").string() + prior + " --iid" + never), "features");
  expect_one_line_error(sbgm_cli(gmm + obs + prior + " --iid --iid-draws 4" + never), "draws per observation");
  EXPECT_FALSE(fs::exists(scratch() / "never_iid.npy"));
}

// A condition that is a raw series, learnt through a cnn summary: theta ~ N(0, I_2) and
// x = A theta + 1.5 eps, a series of 32 steps (a level and a sine), so that p(theta | x) is the
// Gaussian N(S A^T x / 1.5^2, S) with S = (I + A^T A / 1.5^2)^-1, sd 0.26 and 0.36 where the
// prior's is 1. The samples must find its mean and be as narrow: the summary carries x. (A far
// narrower posterior, sd 0.1, needs a longer run than a test should take: docs/sbi.md.)
TEST(CliSummary, ACnnSummaryOfARawSeriesFindsTheAnalyticPosterior) {
  const fs::path dir = scratch() / "summary_run";
  fs::create_directories(dir);
  at::Generator gen = make_generator(at::kCPU, 5);
  const at::Tensor steps = at::arange(32, at::kDouble);
  const at::Tensor A = at::stack({at::ones({32}, at::kDouble), at::sin(steps * (2 * M_PI / 16))}, 1);  // [32, 2]
  const double noise = 1.5;
  const at::Tensor theta = at::randn({6000, 2}, gen, at::kDouble);
  write_npy((dir / "theta.npy").string(), theta);
  write_npy((dir / "x.npy").string(), at::matmul(theta, A.t()) + noise * at::randn({6000, 32}, gen, at::kDouble));
  const at::Tensor truth = at::tensor({0.8, -0.5, -1.2, 0.3}, at::kDouble).reshape({2, 2});
  const at::Tensor xo = at::matmul(truth, A.t()) + noise * at::randn({2, 32}, gen, at::kDouble);
  write_npy((dir / "xo.npy").string(), xo);
  const CliResult r = sbgm_cli("train --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string() +
                               " --out " + (dir / "run").string() +
                               " --model.summary cnn --model.width 64 --model.depth 2 --steps 3000 --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(slurp(dir / "run" / "config.toml").find("summary = \"cnn\""), std::string::npos);
  const fs::path out = dir / "post.npy";
  const CliResult s = sbgm_cli("sample --checkpoint " + (dir / "run").string() + " --cond " + (dir / "xo.npy").string() +
                               " --n 2000 --out " + out.string());
  ASSERT_EQ(s.code, 0) << s.err;
  const at::Tensor post = read_npy(out.string(), true);
  ASSERT_EQ(post.sizes(), (std::vector<int64_t>{2, 2000, 2}));
  const at::Tensor S = at::linalg_inv(at::eye(2, at::kDouble) + at::matmul(A.t(), A) / (noise * noise));
  for (int64_t m = 0; m < 2; ++m) {
    const at::Tensor mean = at::matmul(S, at::matmul(A.t(), xo[m])) / (noise * noise);
    for (int64_t i = 0; i < 2; ++i) {
      const double sd = std::sqrt(S[i][i].item<double>());
      EXPECT_NEAR(post[m].select(1, i).mean().item<double>(), mean[i].item<double>(), 0.5 * sd) << m << " " << i;
      EXPECT_NEAR(post[m].select(1, i).std().item<double>(), sd, 0.3 * sd) << m << " " << i;
    }
  }
  // a summary needs conditions; a cnn needs equal series
  const std::string never = " --out " + (scratch() / "never_summary").string();
  expect_one_line_error(sbgm_cli("train --data " + (dir / "theta.npy").string() + " --model.summary mlp" + never),
                        "model.summary needs conditions");
  expect_one_line_error(sbgm_cli("train --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string() +
                                 " --model.summary cnn --model.summary_channels 5" + never),
                        "summary_channels");
  EXPECT_FALSE(fs::exists(scratch() / "never_summary"));
}

// theta ~ N(0, I_2) and x `points` iid draws theta + noise eps in the plane, one after another, so
// that p(theta | x) is N(S sum_j x_j / noise^2, S I) with S = 1 / (1 + points / noise^2). Writes
// `rows` training pairs (theta.npy, x.npy), two observations (xo.npy) and the same points in
// another order (xo_reordered.npy) under dir.
struct IidPoints {
  IidPoints(const fs::path& dir, int64_t rows, int64_t points_, double noise_, uint64_t seed,
            const std::vector<double>& theta_o, const std::vector<int64_t>& order)
      : points(points_), noise(noise_) {
    at::Generator gen = make_generator(at::kCPU, seed);
    const auto simulate = [&](const at::Tensor& th) {
      return (th.unsqueeze(1) + noise * at::randn({th.size(0), points, 2}, gen, at::kDouble)).reshape({th.size(0), -1});
    };
    const at::Tensor theta = at::randn({rows, 2}, gen, at::kDouble);
    write_npy((dir / "theta.npy").string(), theta);
    write_npy((dir / "x.npy").string(), simulate(theta));
    xo = simulate(at::tensor(theta_o, at::kDouble).reshape({2, 2}));
    write_npy((dir / "xo.npy").string(), xo);
    write_npy((dir / "xo_reordered.npy").string(),
              xo.reshape({2, points, 2}).index_select(1, at::tensor(order, at::kLong)).reshape({2, -1}));
  }
  // Samples [2, n, 2] of the two observations' posteriors: their means within half a posterior sd
  // of the exact ones, their sd within 30%.
  void expect_posterior(const at::Tensor& post) const {
    ASSERT_EQ(post.sizes(), (std::vector<int64_t>{2, post.size(1), 2}));
    const double S = 1.0 / (1.0 + points / (noise * noise)), sd = std::sqrt(S);
    for (int64_t m = 0; m < 2; ++m) {
      const at::Tensor mean = xo[m].reshape({points, 2}).sum(0) * (S / (noise * noise));
      for (int64_t i = 0; i < 2; ++i) {
        EXPECT_NEAR(post[m].select(1, i).mean().item<double>(), mean[i].item<double>(), 0.5 * sd) << m << " " << i;
        EXPECT_NEAR(post[m].select(1, i).std().item<double>(), sd, 0.3 * sd) << m << " " << i;
      }
    }
  }
  int64_t points;
  double noise;
  at::Tensor xo;
};

// A condition that is a set of iid points, learnt through a set summary: theta ~ N(0, I_2) and x
// eight points theta + 1.5 eps in the plane, so that p(theta | x) is N(S sum_j x_j / 1.5^2, S I)
// with S = 1 / (1 + 8 / 1.5^2) (sd 0.47). The samples must find it, and the same points in another
// order must give the same samples: the summary and the conditions' standardisation (one shift
// and scale per coordinate, pooled over the points) are blind to the order.
TEST(CliSummary, ASetSummaryOfIidPointsFindsTheAnalyticPosteriorInAnyOrder) {
  const fs::path dir = scratch() / "set_run";
  fs::create_directories(dir);
  const IidPoints data(dir, 6000, 8, 1.5, 6, {0.9, -0.6, -1.1, 0.4}, {5, 2, 7, 0, 3, 6, 1, 4});
  const CliResult r = sbgm_cli("train --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string() +
                               " --out " + (dir / "run").string() +
                               " --model.summary set --data.cond_set 2 --model.width 64 --model.depth 2"
                               " --steps 3000 --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(slurp(dir / "run" / "config.toml").find("summary = \"set\""), std::string::npos);
  EXPECT_NE(slurp(dir / "run" / "config.toml").find("cond_set = 2"), std::string::npos);
  const auto sample = [&](const std::string& cond, const std::string& name) {
    const fs::path out = dir / name;
    const CliResult s = sbgm_cli("sample --checkpoint " + (dir / "run").string() + " --cond " + (dir / cond).string() +
                                 " --n 2000 --seed 3 --out " + out.string());
    EXPECT_EQ(s.code, 0) << s.err;
    return read_npy(out.string(), true);
  };
  const at::Tensor post = sample("xo.npy", "post.npy");
  ASSERT_EQ(post.size(1), 2000);
  data.expect_posterior(post);
  EXPECT_TRUE(at::allclose(sample("xo_reordered.npy", "post_reordered.npy"), post, 1e-4, 1e-4));
  expect_one_line_error(sbgm_cli("sample --checkpoint " + (dir / "run").string() + " --cond " + (dir / "xo.npy").string() +
                                 " --set-orders 2 --out " + (dir / "never.npy").string()),
                        "blind to the elements' order already");
  EXPECT_FALSE(fs::exists(dir / "never.npy"));
  // the condition must be whole points, and a set summary needs to know them
  const std::string pairs = "train --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string();
  const std::string never = " --out " + (scratch() / "never_set").string();
  expect_one_line_error(sbgm_cli(pairs + " --data.cond_set 3" + never), "data.cond_set = 3");
  expect_one_line_error(sbgm_cli(pairs + " --model.summary set" + never), "needs data.cond_set");
  expect_one_line_error(sbgm_cli("train --data " + (dir / "theta.npy").string() + " --data.cond_set 2" + never),
                        "needs conditions");
  EXPECT_FALSE(fs::exists(scratch() / "never_set"));
}

TEST(CliSummary, AveragingOverTheOrdersOfASetMakesAnOrderedNetworkBlindToThem) {
  const fs::path dir = scratch() / "set_orders";
  fs::create_directories(dir);
  const IidPoints data(dir, 4000, 3, 1.0, 8, {0.8, -0.5, -1.0, 0.3}, {2, 0, 1});  // 3! = 6 orders
  const std::string pairs = "train --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string() +
                            " --model.width 64 --model.depth 2 --threads 1";
  const CliResult r = sbgm_cli(pairs + " --data.cond_set 2 --steps 2000 --out " + (dir / "run").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto sample = [&](const std::string& run, const std::string& cond, const std::string& flags) {
    const fs::path out = dir / "post.npy";
    fs::remove(out);
    const CliResult s = sbgm_cli("sample --checkpoint " + (dir / run).string() + " --cond " + (dir / cond).string() +
                                 " --n 2000 --seed 3 " + flags + " --out " + out.string());
    EXPECT_EQ(s.code, 0) << s.err;
    return read_npy(out.string(), true);
  };
  // over all six orders the points' order changes nothing; the posterior is the analytic one
  const at::Tensor post = sample("run", "xo.npy", "--set-orders 6");
  EXPECT_TRUE(at::allclose(sample("run", "xo_reordered.npy", "--set-orders 6"), post, 1e-4, 1e-4));
  data.expect_posterior(post);
  // without the average the network's order shows (it learnt to ignore it only nearly)
  EXPECT_FALSE(at::allclose(sample("run", "xo_reordered.npy", ""), sample("run", "xo.npy", ""), 1e-4, 1e-4));
  // the averaged model's density (sbgm loglik, and the MAP's choice among its starts) is blind alike
  // ten posterior draws of each observation, each row with its observation, in both orders
  write_npy((dir / "theta_rows.npy").string(), post.narrow(1, 0, 10).reshape({20, 2}).contiguous());
  for (const char* name : {"xo", "xo_reordered"})
    write_npy((dir / (std::string(name) + "_rows.npy")).string(),
              read_npy((dir / (std::string(name) + ".npy")).string(), true).repeat_interleave(10, 0));
  const auto log_p = [&](const std::string& cond, const std::string& flags) {
    const fs::path out = dir / "logp.npy";
    fs::remove(out);
    const CliResult l = sbgm_cli("loglik --checkpoint " + (dir / "run").string() + " --data " +
                                 (dir / "theta_rows.npy").string() + " --cond " + (dir / cond).string() + " " + flags +
                                 " --out " + out.string());
    EXPECT_EQ(l.code, 0) << l.err;
    return read_npy(out.string(), true);
  };
  const at::Tensor averaged = log_p("xo_rows.npy", "--set-orders 6");
  EXPECT_TRUE(at::allclose(log_p("xo_reordered_rows.npy", "--set-orders 6"), averaged, 1e-6, 1e-4));
  EXPECT_FALSE(at::allclose(log_p("xo_reordered_rows.npy", ""), log_p("xo_rows.npy", ""), 1e-6, 1e-4));
  EXPECT_TRUE(at::isfinite(averaged).all().item<bool>());
  // bad counts, and a condition that is no set: one line, nothing written
  const std::string never = " --out " + (dir / "never.npy").string();
  const std::string ask = "sample --checkpoint " + (dir / "run").string() + " --cond " + (dir / "xo.npy").string();
  expect_one_line_error(sbgm_cli(ask + " --set-orders 0" + never), "--set-orders must be at least 1");
  expect_one_line_error(sbgm_cli("loglik --checkpoint " + (dir / "run").string() + " --data " +
                                 (dir / "theta_rows.npy").string() + " --cond " + (dir / "xo_rows.npy").string() +
                                 " --set-orders 0" + never),
                        "--set-orders must be at least 1");
  // (iid points are found to be a set by default: data.cond_set 0 says they are none)
  ASSERT_EQ(sbgm_cli(pairs + " --data.cond_set 0 --steps 50 --out " + (dir / "plain").string()).code, 0);
  expect_one_line_error(sbgm_cli("sample --checkpoint " + (dir / "plain").string() + " --cond " +
                                 (dir / "xo.npy").string() + " --set-orders 2" + never),
                        "no set (data.cond_set)");
  EXPECT_FALSE(fs::exists(dir / "never.npy"));
}
