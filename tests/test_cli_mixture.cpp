// `--gmm FILE.npz`: an analytic Gaussian mixture as the model of sample, loglik and info, checked
// against an independent probability-flow solve in Python (tests/oracles/pf_ode_gmm.py).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_harness.hpp"
#include "sbgm/data/gaussian_mixture.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

const char* const kSDEs[] = {"vp", "subvp", "ve", "cosine"};

// The oracle's mixture, points and expected log-densities (computed once per test process).
const fs::path& oracle_dir() {
  static const fs::path dir = [] {
    const fs::path d = scratch() / "oracle";
    fs::create_directories(d);
    EXPECT_EQ(run_python(std::string(SBGM_ORACLES_DIR) + "/pf_ode_gmm.py " + d.string()), 0);
    return d;
  }();
  return dir;
}

}  // namespace

// Exact divergence at tight tolerances equals scipy's DOP853 solve with an analytic divergence to
// 1e-4 nats for every SDE, and the mixture's own density up to the prior mismatch.
TEST(CliMixture, LoglikMatchesIndependentProbabilityFlowSolve) {
  const fs::path& dir = oracle_dir();
  const at::Tensor own = read_npy((dir / "mixture_logp.npy").string(), true);
  for (const char* sde : kSDEs) {
    const fs::path out = scratch() / (std::string("ll_") + sde + ".npy");
    const CliResult r = sbgm_cli(std::string("loglik --gmm ") + (dir / "gmm.npz").string() + " --sde " + sde +
                                 " --data " + (dir / "points.npy").string() + " --out " + out.string() +
                                 " --rtol 1e-9 --atol 1e-9 --threads 1");
    ASSERT_EQ(r.code, 0) << r.err;
    const at::Tensor got = read_npy(out.string(), true);
    const at::Tensor want = read_npy((dir / (std::string("expected_") + sde + ".npy")).string(), true);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-4) << sde;
    EXPECT_LT((got - own).abs().max().item<double>(), 0.05) << sde;
  }
}

// Every sampler draws from the mixture for every SDE: the samples' mean log-density under the
// mixture matches that of exact draws from it.
class CliMixtureEverySDE : public ::testing::TestWithParam<const char*> {};

TEST_P(CliMixtureEverySDE, SamplersDrawTheMixture) {
  const fs::path& dir = oracle_dir();
  const GaussianMixture mixture = read_gaussian_mixture((dir / "gmm.npz").string());
  const double truth = mixture.log_prob(mixture.sample(20000, make_generator(at::kCPU, 5)).to(at::kDouble)).mean().item<double>();
  const std::string sde = GetParam();
  for (const std::string sampler : {"em --steps 500", "ode --rtol 1e-5 --atol 1e-5", "pc --steps 200", "pc --predictor ancestral --steps 200",
                                   "ancestral --steps 300", "edm --steps 50", "edm --steps 50 --churn 10", "ddim --steps 200",
                                   "ddim --steps 200 --eta 1", "dpmpp2m --steps 50", "dpmpp2m --schedule karras --steps 50",
                                   "dpmpp3m --steps 30", "unipc --schedule time --steps 50", "unipc --order 3 --steps 30",
                                   "dpmpp2m --schedule adaptive --steps 20", "unipc --steps 20 --restarts 2 --restart-steps 5",
                                   "unipc --steps 30 --lambda 0 --ode-range 0.3,1"}) {
    const fs::path out = scratch() / ("mixture_samples_" + sde + ".npy");
    const CliResult r = sbgm_cli(std::string("sample --gmm ") + (dir / "gmm.npz").string() + " --sde " + sde +
                                 " --n 3000 --seed 3 --threads 1 --out " + out.string() + " --sampler " + sampler);
    ASSERT_EQ(r.code, 0) << r.err;
    const at::Tensor x = read_npy(out.string(), true);
    ASSERT_EQ(x.sizes(), (std::vector<int64_t>{3000, 2}));
    EXPECT_EQ(x.scalar_type(), at::kDouble);  // analytic models compute in float64
    EXPECT_NEAR(mixture.log_prob(x).mean().item<double>(), truth, 0.08) << sde << " " << sampler;
  }
}

INSTANTIATE_TEST_SUITE_P(All, CliMixtureEverySDE, ::testing::ValuesIn(kSDEs));

// The linear path of flow matching: its exact velocity's log-likelihood equals the oracle's
// independent solve, and the mixture's own density to the t_eps blur (its prior is exact at
// t = 1); the ODE and the multistep solvers sample the mixture; every other sampler is refused
// with one line, nothing written, as are the schedules that need a finite noise level at t = T
// (logsnr, karras, adaptive).
TEST(CliMixture, LinearPathLoglikAndSamples) {
  const fs::path& dir = oracle_dir();
  const fs::path out = scratch() / "ll_linear.npy";
  CliResult r = sbgm_cli("loglik --gmm " + (dir / "gmm.npz").string() + " --sde linear --data " +
                         (dir / "points.npy").string() + " --out " + out.string() + " --rtol 1e-9 --atol 1e-9 --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor got = read_npy(out.string(), true);
  EXPECT_LT((got - read_npy((dir / "expected_linear.npy").string(), true)).abs().max().item<double>(), 1e-4);
  EXPECT_LT((got - read_npy((dir / "mixture_logp.npy").string(), true)).abs().max().item<double>(), 1e-3);

  const GaussianMixture mixture = read_gaussian_mixture((dir / "gmm.npz").string());
  const double truth = mixture.log_prob(mixture.sample(20000, make_generator(at::kCPU, 5)).to(at::kDouble)).mean().item<double>();
  const fs::path samples = scratch() / "linear_samples.npy";
  const std::string sample = "sample --gmm " + (dir / "gmm.npz").string() + " --sde linear --n 3000 --seed 3 --threads 1 --out " +
                             samples.string();
  for (const char* sampler : {"ode", "dpmpp2m", "unipc", "ddim --steps 200"}) {
    r = sbgm_cli(sample + " --sampler " + sampler);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NEAR(mixture.log_prob(read_npy(samples.string(), true)).mean().item<double>(), truth, 0.08) << sampler;
    fs::remove(samples);
  }
  for (const char* schedule : {"logsnr", "karras", "adaptive"}) {
    expect_one_line_error(sbgm_cli(sample + " --sampler dpmpp2m --schedule " + schedule), "use the time schedule");
    EXPECT_FALSE(fs::exists(samples)) << schedule;
  }
  for (const char* sampler : {"em", "pc", "ancestral", "edm"}) {
    expect_one_line_error(sbgm_cli(sample + " --sampler " + sampler), "sample it with the ode sampler");
    EXPECT_FALSE(fs::exists(samples)) << sampler;
  }
}

// `sample --log-prob`: each draw's log-density from the ODE that drew it (the ODE by default with
// the flag), equal to `loglik` of the draws integrated the other way and to the mixture's own
// density up to the prior mismatch; [M, n] for M conditions. A sampler whose draws have no such
// density, or a request without draws of its own, is refused with one line, nothing written.
TEST(CliMixture, SamplesWithTheirLogDensity) {
  const fs::path& dir = oracle_dir();
  const GaussianMixture mixture = read_gaussian_mixture((dir / "gmm.npz").string());
  const fs::path x = scratch() / "lp_samples.npy", lp = scratch() / "lp_values.npy", ll = scratch() / "lp_loglik.npy";
  const std::string gmm = "--gmm " + (dir / "gmm.npz").string() + " --threads 1 ";
  CliResult r = sbgm_cli("sample " + gmm + "--n 500 --seed 2 --out " + x.string() + " --log-prob " + lp.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("log p of the samples: mean"), std::string::npos) << r.out;
  const at::Tensor samples = read_npy(x.string(), true), log_p = read_npy(lp.string(), true);
  ASSERT_EQ(log_p.sizes(), (std::vector<int64_t>{500}));
  EXPECT_EQ(log_p.scalar_type(), at::kDouble);
  r = sbgm_cli("loglik " + gmm + "--data " + x.string() + " --out " + ll.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LT((read_npy(ll.string(), true) - log_p).abs().max().item<double>(), 2e-3);
  EXPECT_LT((mixture.log_prob(samples) - log_p).abs().max().item<double>(), 0.05);
  // Hutchinson's estimate, unbiased: its mean over the draws within a few hundredths.
  r = sbgm_cli("sample " + gmm + "--n 500 --seed 2 --out " + x.string() + " --log-prob " + lp.string() +
               " --sampler ode --divergence hutchinson --probes 4");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NEAR((read_npy(lp.string(), true) - log_p).mean().item<double>(), 0.0, 0.05);
  for (const fs::path& f : {x, lp}) fs::remove(f);
  for (const auto& [flags, needle] :
       {std::pair{"--sampler em", "ask for the ode sampler"}, std::pair{"--map", "come with samples only"},
        std::pair{"--divergence laplace", "divergence"}, std::pair{"--divergence hutchinson --probes 0", "probes"}}) {
    expect_one_line_error(sbgm_cli("sample " + gmm + "--n 10 --out " + x.string() + " --log-prob " + lp.string() + " " + flags),
                          needle);
    EXPECT_FALSE(fs::exists(x) || fs::exists(lp)) << flags;
  }
  expect_one_line_error(sbgm_cli("sample " + gmm + "--n 10 --out " + x.string() + " --log-prob " + (scratch() / "lp.txt").string()),
                        ".npy");
  expect_one_line_error(sbgm_cli("sample " + gmm + "--n 10 --out " + x.string() + " --probes 4"), "apply to --log-prob only");
  expect_one_line_error(sbgm_cli("sample " + gmm + "--n 10 --out " + x.string() + " --support-draws 500"),
                        "--support-draws go with the samples' log-densities (--log-prob)");
  expect_one_line_error(sbgm_cli("sample " + gmm + "--n 10 --out " + x.string() + " --log-prob " + lp.string() +
                                 " --support-draws 500"),
                        "this model has no such box");
  EXPECT_FALSE(fs::exists(x));
}

TEST(CliMixture, InfoDescribesTheMixture) {
  const CliResult r = sbgm_cli("info --gmm " + (oracle_dir() / "gmm.npz").string() + " --sde ve --sigma-max 20");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("3 Gaussian components"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sigma 0.01 to 20"), std::string::npos) << r.out;
}

TEST(CliMixture, BadMixtureInputs) {
  const fs::path dir = scratch() / "bad_gmm";
  fs::create_directories(dir);
  ASSERT_EQ(run_python(std::string(SBGM_ORACLES_DIR) + "/bad_mixtures.py " + dir.string()), 0);
  std::ofstream(dir / "garbage.npz") << "not a zip archive";
  write_npy((dir / "points.npy").string(), at::zeros({4, 2}));
  write_npy((dir / "points3.npy").string(), at::zeros({4, 3}));
  const fs::path out = dir / "never.npy";
  auto loglik = [&](const std::string& gmm, const std::string& extra = "") {
    return sbgm_cli("loglik --gmm " + (dir / gmm).string() + " --data " + (dir / "points.npy").string() + " --out " +
                    out.string() + extra);
  };
  expect_one_line_error(loglik("missing.npz"), "cannot open");
  expect_one_line_error(loglik("garbage.npz"), "not a .npz");
  expect_one_line_error(loglik("no_covs.npz"), "no array 'covs'");
  expect_one_line_error(loglik("not_pd.npz"), "positive definite");
  expect_one_line_error(loglik("disagree.npz"), "disagree");
  expect_one_line_error(loglik("negative_weight.npz"), "weights must be positive");
  expect_one_line_error(loglik("text_weights.npz"), "dtype");
  expect_one_line_error(loglik("good.npz", " --sde ve --sigma-max 0.001"), "--sigma-max");
  expect_one_line_error(loglik("good.npz", " --beta-min 30"), "--beta-max");
  expect_one_line_error(loglik("good.npz", " --sde vpp"), "unknown SDE");
  expect_one_line_error(loglik("good.npz", " --dtype float16"), "--dtype");
  expect_one_line_error(loglik("good.npz", " --raw-weights"), "--raw-weights applies only with --checkpoint");
  const std::string sample = "sample --gmm " + (dir / "good.npz").string() + " --out " + out.string();
  expect_one_line_error(sbgm_cli(sample + " --sampler edm --rho 0"), "--rho");
  expect_one_line_error(sbgm_cli(sample + " --sampler edm --churn -1"), "--churn");
  expect_one_line_error(sbgm_cli(sample + " --sampler pc --predictor langevin"), "unknown predictor");
  expect_one_line_error(sbgm_cli(sample + " --sampler dpmpp"), "unknown sampler 'dpmpp'");
  expect_one_line_error(sbgm_cli(sample + " --sampler unipc --steps 0"), "--steps must be at least 1");
  expect_one_line_error(sbgm_cli(sample + " --sampler ddim --eta 1.5"), "[0, 1]");
  expect_one_line_error(sbgm_cli(sample + " --sampler dpmpp2m --eta 0.5"), "ddim sampler only");
  expect_one_line_error(sbgm_cli(sample + " --sampler unipc --order 4"), "1, 2 or 3");
  expect_one_line_error(sbgm_cli(sample + " --sampler unipc --restarts 1 --restart-range 1,0.5"),
                        "--restart-range: the high noise level must be finite and above the low one");
  expect_one_line_error(sbgm_cli(sample + " --sampler edm --restarts 1"), "--restarts apply to the ddim, dpmpp2m, dpmpp3m and unipc");
  expect_one_line_error(sbgm_cli(sample + " --sampler unipc --restarts 1 --restart-steps 0"), "--restart-steps must be at least 1");
  expect_one_line_error(sbgm_cli(sample + " --sampler dpmpp2m --restarts 1 --lambda 0.5"),
                        "--restarts apply to the deterministic solvers (no --lambda below 1, no --eta)");
  expect_one_line_error(sbgm_cli(sample + " --sampler unipc --lambda 0 --ode-range 1,0.3"),
                        "--ode-range: the low noise level must not be negative and the high one must lie above it");
  expect_one_line_error(sbgm_cli(sample + " --sampler unipc --ode-range 0.3,1"), "--ode-range applies with --lambda below 1");
  expect_one_line_error(sbgm_cli(sample + " --sampler em --ode-range 0.3,1"),
                        "--ode-range applies to the ddim, dpmpp2m and unipc samplers only");
  expect_one_line_error(sbgm_cli(sample + " --sampler unipc --lambda 0 --ode-range 0.3"), "--ode-range");
  expect_one_line_error(sbgm_cli(sample + " --sampler dpmpp3m --schedule cosine"), "unknown step schedule");
  expect_one_line_error(sbgm_cli(sample + " --sampler dpmpp3m --schedule karras --rho -1"), "--rho");
  expect_one_line_error(sbgm_cli(sample + " --precision bfloat16"), "bfloat16 applies to trained networks");
  expect_one_line_error(sbgm_cli("loglik --gmm " + (dir / "good.npz").string() + " --data " +
                                 (dir / "points3.npy").string() + " --out " + out.string()),
                        "trained on [2]");
  expect_one_line_error(sbgm_cli("loglik --data " + (dir / "points.npy").string() + " --out " + out.string()),
                        "exactly one of --checkpoint and --gmm");
  expect_one_line_error(sbgm_cli("sample --gmm " + (dir / "good.npz").string() + " --checkpoint " + dir.string() +
                                 " --out " + out.string()),
                        "exactly one of --checkpoint and --gmm");
  expect_one_line_error(sbgm_cli("sample --checkpoint " + dir.string() + " --sde ve --out " + out.string()),
                        "--sde applies only with --gmm");
  EXPECT_FALSE(fs::exists(out));
}

// `loglik --grid`: the map holds log p at the documented grid points (the mixture's own density
// up to the prior mismatch), and the picture is written.
TEST(CliMixture, LoglikGridMapsTheDensity) {
  const fs::path& dir = oracle_dir();
  const GaussianMixture mixture = read_gaussian_mixture((dir / "gmm.npz").string());
  const fs::path out = scratch() / "grid.npy", png = scratch() / "grid.png";
  const CliResult r = sbgm_cli("loglik --gmm " + (dir / "gmm.npz").string() + " --grid 9 --range -3,3,-2,4 --data " +
                               (dir / "points.npy").string() + " --png " + png.string() + " --out " + out.string() +
                               " --rtol 1e-7 --atol 1e-7 --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor map = read_npy(out.string(), true);
  ASSERT_EQ(map.sizes(), (std::vector<int64_t>{9, 9}));
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor xs = at::linspace(-3, 3, 9, opts), ys = at::linspace(-2, 4, 9, opts);
  for (int64_t i : {0, 4, 8}) {
    for (int64_t j : {0, 3, 8}) {
      const at::Tensor point = at::stack({xs[j], ys[i]}).reshape({1, 2});
      // The prior mismatch grows into the far tails (0.05 nats at log p = -70).
      const double want = mixture.log_prob(point).item<double>();
      EXPECT_NEAR(map[i][j].item<double>(), want, 0.02 + 2e-3 * std::abs(want)) << i << " " << j;
    }
  }
  const std::string bytes = slurp(png);
  ASSERT_GT(bytes.size(), 1000u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
}

// `sample --trajectories K --png`: paths through the reverse SDE, a plug-in SDE and the ODE, drawn.
TEST(CliMixture, SampleDrawsTrajectories) {
  const fs::path& dir = oracle_dir();
  const fs::path out = scratch() / "traj_samples.npy", png = scratch() / "traj.png";
  const CliResult r = sbgm_cli("sample --gmm " + (dir / "gmm.npz").string() + " --n 50 --steps 100 --trajectories 6 --png " +
                               png.string() + " --out " + out.string() + " --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy(out.string(), true).size(0), 50);
  const std::string bytes = slurp(png);
  ASSERT_GT(bytes.size(), 1000u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  // The plug-in SDE's panel takes the lambda asked for (and the ODE's panel none), for em and for
  // a few-step solver alike.
  for (const char* sampler : {"em --lambda 0.8", "dpmpp2m --lambda 0.3", "unipc --lambda 0.5"}) {
    fs::remove(png);
    const CliResult l = sbgm_cli("sample --gmm " + (dir / "gmm.npz").string() + " --n 50 --trajectories 4 --png " +
                                 png.string() + " --out " + out.string() + " --threads 1 --sampler " + sampler);
    ASSERT_EQ(l.code, 0) << sampler << ": " << l.err;
    EXPECT_EQ(slurp(png).substr(1, 3), "PNG") << sampler;
  }
}

// 8-bit data through --dequantize: the reported bits/dim match the exact discrete likelihood of
// a 1-D Gaussian on [0, 1] (bin probabilities from its CDF), up to the bound's small gap.
TEST(CliMixture, DequantizedBitsPerDimMatchTheDiscreteLikelihood) {
  const fs::path dir = scratch() / "dequantize";
  fs::create_directories(dir);
  std::ofstream(dir / "make.py") << "import sys, numpy as np\n"
                                    "from scipy.stats import norm\n"
                                    "d = sys.argv[1]\n"
                                    "np.savez(d + '/g.npz', weights=np.ones(1), means=np.array([[0.5]]),"
                                    " covs=np.array([[[0.01]]]))\n"
                                    "k = np.random.default_rng(0).integers(60, 196, size=(400, 1)).astype(np.float64)\n"
                                    "np.save(d + '/levels.npy', k)\n"
                                    "p = norm.cdf((k + 1) / 256, 0.5, 0.1) - norm.cdf(k / 256, 0.5, 0.1)\n"
                                    "np.save(d + '/bpd.npy', -np.log2(p[:, 0]))\n";
  ASSERT_EQ(run_python((dir / "make.py").string() + " " + dir.string()), 0);
  const fs::path out = dir / "bpd_out.npy";
  const std::string base = "loglik --gmm " + (dir / "g.npz").string() + " --data " + (dir / "levels.npy").string() +
                           " --out " + out.string();
  const CliResult r = sbgm_cli(base + " --dequantize --bpd --rtol 1e-7 --atol 1e-7 --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor got = read_npy(out.string(), true), want = read_npy((dir / "bpd.npy").string(), true);
  ASSERT_EQ(got.sizes(), want.sizes());
  // One uniform draw per row: the bound holds on average and each row is within the density's
  // variation across one bin.
  EXPECT_NEAR(got.mean().item<double>(), want.mean().item<double>(), 0.01);
  EXPECT_LT((got - want).abs().max().item<double>(), 0.1);
  fs::remove(out);
  std::ofstream(dir / "half.py") << "import sys, numpy as np\nnp.save(sys.argv[1], np.array([[3.5], [2.0]]))\n";
  ASSERT_EQ(run_python((dir / "half.py").string() + " " + (dir / "half.npy").string()), 0);
  expect_one_line_error(sbgm_cli("loglik --gmm " + (dir / "g.npz").string() + " --data " + (dir / "half.npy").string() +
                                 " --out " + out.string() + " --dequantize"),
                        "not an integer level");
  expect_one_line_error(sbgm_cli(base + " --dequantize --levels 1"), "--levels");
  expect_one_line_error(sbgm_cli(base + " --dequantize --dequantize-range 1,0"), "LO < HI");
  expect_one_line_error(sbgm_cli(base + " --levels 16"), "go with --dequantize");
  expect_one_line_error(sbgm_cli(base + " --grid 10"), "2-D points");
  EXPECT_FALSE(fs::exists(out));
}

TEST(CliMixture, BadGridAndTrajectoryOptions) {
  const fs::path& dir = oracle_dir();
  const fs::path out = scratch() / "never_grid.npy";
  const std::string gmm = "--gmm " + (dir / "gmm.npz").string() + " --out " + out.string();
  expect_one_line_error(sbgm_cli("loglik " + gmm + " --grid 1 --range 0,1,0,1"), "--grid must be at least 2");
  expect_one_line_error(sbgm_cli("loglik " + gmm + " --grid 5"), "--range");
  expect_one_line_error(sbgm_cli("loglik " + gmm + " --grid 5 --range 0,1,1,0"), "YMIN < YMAX");
  expect_one_line_error(sbgm_cli("loglik " + gmm + " --data " + (dir / "points.npy").string() + " --png x.png"),
                        "go with --grid");
  expect_one_line_error(sbgm_cli("loglik " + gmm), "--data is required");
  write_npy((scratch() / "points3.npy").string(), at::zeros({4, 3}));
  expect_one_line_error(sbgm_cli("loglik " + gmm + " --grid 5 --data " + (scratch() / "points3.npy").string()),
                        "the data must be [N, 2]");
  expect_one_line_error(sbgm_cli("sample " + gmm + " --trajectories 5"), "--trajectories needs --png");
  expect_one_line_error(sbgm_cli("sample " + gmm + " --trajectories -1 --png " + (scratch() / "t.png").string()),
                        "--trajectories must not be negative");
  EXPECT_FALSE(fs::exists(out));
}

// `loglik --bound elbo|elbo-dsm`: the variational bound of the exact mixture score is tight, so
// both forms agree with the mixture's own log-density within their Monte-Carlo standard errors
// (written per row beside nothing else; the printed mean carries its standard error); the ODE's
// flags are refused with the bound, its flags without it, and the flow path has no bound.
TEST(CliMixture, VariationalBoundIsTightForTheExactScore) {
  const fs::path& dir = oracle_dir();
  const at::Tensor own = read_npy((dir / "mixture_logp.npy").string(), true);
  const fs::path out = scratch() / "elbo.npy";
  const std::string loglik = "loglik --gmm " + (dir / "gmm.npz").string() + " --data " + (dir / "points.npy").string() +
                             " --out " + out.string() + " --threads 1 --draws 2000";
  for (const char* bound : {"elbo", "elbo-dsm"}) {
    const CliResult r = sbgm_cli(loglik + " --bound " + bound);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("Monte-Carlo standard error"), std::string::npos) << r.out;
    const at::Tensor got = read_npy(out.string(), true);
    ASSERT_EQ(got.sizes(), own.sizes());
    // 16 rows: the mean within 0.1 nats (about 4 standard errors of the mean at 2000 draws).
    EXPECT_LT(std::abs((got - own).mean().item<double>()), 0.1) << bound;
    fs::remove(out);
  }
  const std::string bad = "loglik --gmm " + (dir / "gmm.npz").string() + " --data " + (dir / "points.npy").string() +
                          " --out " + out.string();
  expect_one_line_error(sbgm_cli(bad + " --bound elbo --rtol 1e-3"), "--rtol applies to the ODE's log-likelihood");
  expect_one_line_error(sbgm_cli(bad + " --bound elbo-dsm --solver rk4"), "--solver applies to the ODE's");
  expect_one_line_error(sbgm_cli(bad + " --draws 10"), "--draws applies to --bound elbo or elbo-dsm");
  expect_one_line_error(sbgm_cli(bad + " --bound elbo-dsm --divergence hutchinson"), "takes no divergence");
  expect_one_line_error(sbgm_cli(bad + " --bound iwae"), "unknown likelihood method (--bound) 'iwae'");
  expect_one_line_error(sbgm_cli(bad + " --bound elbo --draws 0"), "--draws");
  expect_one_line_error(sbgm_cli(bad + " --bound elbo --bound-time beta"), "unknown time proposal");
  expect_one_line_error(sbgm_cli(bad + " --bound elbo --sde linear"), "use the ODE's log-likelihood");
  EXPECT_FALSE(fs::exists(out));
}
