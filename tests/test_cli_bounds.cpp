// Bounded parameters through the CLI (data.lower / data.upper, --lower / --upper, or the box a
// posterior run finds): a posterior over a box-uniform prior whose samples never leave the box,
// whose log-densities are -inf outside it, and the bad bounds a user can give, each refused in
// one line with nothing written.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_harness.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/run/run_config.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

// theta ~ U[-1, 1] x U[0, 2], x = theta + 0.3 noise (gaussian_linear_uniform in two dimensions),
// trained briefly with the prior's bounds; beside it observations near the box's corners.
const fs::path& bounded_run() {
  static const fs::path run = [] {
    const fs::path dir = scratch() / "bounded_run";
    fs::create_directories(dir);
    at::Generator gen = make_generator(at::kCPU, 6);
    const at::Tensor theta = at::rand({2000, 2}, gen) * 2 + at::tensor({-1.0f, 0.0f});
    write_npy((dir / "theta.npy").string(), theta);
    write_npy((dir / "x.npy").string(), theta + 0.3 * at::randn({2000, 2}, gen));
    write_npy((dir / "xo.npy").string(), at::tensor({0.95f, 1.95f, -1.1f, 0.1f}).reshape({2, 2}));
    const CliResult r = sbgm_cli("train --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string() +
                                 " --lower=-1,0 --upper 1,2 --out " + (dir / "run").string() +
                                 " --steps 1500 --model.width 32 --model.depth 2 --sample.n 50 --threads 1");
    EXPECT_EQ(r.code, 0) << r.err;
    return dir;
  }();
  return run;
}

}  // namespace

TEST(CliBounds, PosteriorSamplesStayInsideThePriorsBox) {
  const fs::path& dir = bounded_run();
  const std::string ck = " --checkpoint " + (dir / "run").string();
  const CliResult info = sbgm_cli("info" + ck);
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("bounds: [-1, 1], [0, 2]"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("lower = [-1,0]"), std::string::npos) << info.out;

  const fs::path out = dir / "post.npy";
  const CliResult r = sbgm_cli("sample" + ck + " --cond " + (dir / "xo.npy").string() + " --n 2000 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor s = read_npy(out.string(), true);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{2, 2000, 2}));
  const at::Tensor first = s.select(2, 0), second = s.select(2, 1);
  EXPECT_TRUE(((first >= -1) & (first <= 1) & (second >= 0) & (second <= 2)).all().item<bool>());
  // Observations near a corner put mass against it: the exact posterior means are 0.74 and 1.74
  // (normals of sd 0.3 about 0.95 and 1.95 truncated at 1 and 2), the prior's 0 and 1.
  EXPECT_GT(s[0].select(1, 0).mean().item<double>(), 0.5);
  EXPECT_GT(s[0].select(1, 1).mean().item<double>(), 1.5);

  // log p: finite inside, -inf outside the box (the density there is zero).
  write_npy((dir / "points.npy").string(), at::tensor({0.5f, 1.0f, 1.5f, 1.0f}).reshape({2, 2}));
  const fs::path ll = dir / "ll.npy";
  const CliResult l = sbgm_cli("loglik" + ck + " --cond " + (dir / "xo.npy").string() + " --data " +
                               (dir / "points.npy").string() + " --out " + ll.string() + " --rtol 1e-3 --atol 1e-3");
  ASSERT_EQ(l.code, 0) << l.err;
  const at::Tensor lp = read_npy(ll.string(), true);
  EXPECT_TRUE(std::isfinite(lp[0].item<double>()));
  EXPECT_TRUE(std::isinf(lp[1].item<double>()) && lp[1].item<double>() < 0) << lp;

  // The mode search stays inside too.
  const fs::path map = dir / "map.npy";
  const CliResult m = sbgm_cli("sample" + ck + " --cond " + (dir / "xo.npy").string() + " --map --n 20 --out " + map.string());
  ASSERT_EQ(m.code, 0) << m.err;
  const at::Tensor modes = read_npy(map.string(), true);
  EXPECT_TRUE(((modes.select(1, 0).abs() <= 1) & (modes.select(1, 1) >= 0) & (modes.select(1, 1) <= 2)).all().item<bool>());
}

// By default (data.bounds = auto) a posterior run finds the prior's box in its parameters, says
// so, writes it to config.toml with how it keeps within it (rejection), and its samples stay
// inside; asked to, it maps the box instead, or looks for none.
TEST(CliBounds, APosteriorRunFindsThePriorsBoxByDefault) {
  const fs::path& dir = bounded_run();
  const std::string data = " --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string();
  const std::string brief = " --steps 200 --model.width 32 --model.depth 2 --sample.n 50 --threads 1";
  for (const std::string keep : {"reject", "map"}) {
    const fs::path run = dir / ("found_" + keep);
    const CliResult r = sbgm_cli("train" + data + " --out " + run.string() + brief +
                                 (keep == "map" ? " --data.keep_within map" : ""));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("data.bounds: the training rows show a box (2 of 2 features bounded on both sides"),
              std::string::npos) << r.err;
    RunConfig written;
    written.merge_toml(slurp(run / "config.toml"), "config.toml");
    EXPECT_EQ(written.get("data.bounds"), "find");
    EXPECT_EQ(written.get("data.keep_within"), keep);
    ASSERT_EQ(written.data.lower.size(), 2u);
    ASSERT_EQ(written.data.upper.size(), 2u);
    EXPECT_NEAR(written.data.lower[0], -1, 0.01);
    EXPECT_NEAR(written.data.lower[1], 0, 0.01);
    EXPECT_NEAR(written.data.upper[0], 1, 0.01);
    EXPECT_NEAR(written.data.upper[1], 2, 0.01);
    const CliResult info = sbgm_cli("info --checkpoint " + run.string());
    ASSERT_EQ(info.code, 0) << info.err;
    EXPECT_NE(info.out.find(keep == "map" ? "logit / log map" : "samples outside drawn again"), std::string::npos) << info.out;
    const fs::path out = dir / ("found_post_" + keep + ".npy");
    const CliResult s = sbgm_cli("sample --checkpoint " + run.string() + " --cond " + (dir / "xo.npy").string() +
                                 " --n 500 --out " + out.string());
    ASSERT_EQ(s.code, 0) << s.err;
    // A network this brief smooths the box's edges: some first draws fall outside, and sample says
    // how many were drawn again (a mapped model's draws never leave the box).
    EXPECT_EQ(s.out.find("samples' first draws fell outside data.lower .. data.upper and were drawn again") !=
                  std::string::npos,
              keep == "reject")
        << s.out;
    const at::Tensor post = read_npy(out.string(), true);
    const at::Tensor first = post.select(2, 0), second = post.select(2, 1);
    EXPECT_TRUE(((first >= written.data.lower[0]) & (first <= written.data.upper[0]) &
                 (second >= written.data.lower[1]) & (second <= written.data.upper[1]))
                    .all()
                    .item<bool>());
    // log p of a few draws: normalised by the box's share, from --support-draws draws per
    // condition (its error against the draws: tests/test_bounds.cpp); a mapped model has no share
    // to estimate.
    const fs::path rows = dir / ("found_rows_" + keep + ".npy"), lp = dir / ("found_lp_" + keep + ".npy");
    write_npy(rows.string(), at::stack({post[0][0], post[1][0]}).contiguous());  // one per row of xo
    const std::string loglik = "loglik --checkpoint " + run.string() + " --cond " + (dir / "xo.npy").string() +
                               " --data " + rows.string() + " --out " + lp.string();
    if (keep == "map") {
      expect_one_line_error(sbgm_cli(loglik + " --support-draws 2000"), "--support-draws estimate the share");
      EXPECT_FALSE(fs::exists(lp));
      continue;
    }
    // The printed mean keeps Z's error, shared by the rows of a condition: a hundred times the
    // draws, a tenth of it.
    const auto mean_error = [&](const std::string& draws) {
      const CliResult l = sbgm_cli(loglik + " --support-draws " + draws);
      EXPECT_EQ(l.code, 0) << l.err;
      EXPECT_TRUE(at::isfinite(read_npy(lp.string(), true)).all().item<bool>());
      fs::remove(lp);
      EXPECT_NE(l.out.find("from " + draws + " per condition, its error shared"), std::string::npos) << l.out;
      const size_t at = l.out.find("+- ");
      return at == std::string::npos ? -1.0 : std::stod(l.out.substr(at + 3));
    };
    const double few = mean_error("100"), many = mean_error("10000");
    EXPECT_GT(many, 0);
    EXPECT_NEAR(few / many, 10.0, 3.5);
    // So does the mean log p of samples drawn with their density: the spread of the values over
    // sqrt(n), and Z's error (from the 200 first draws of each condition, or 10,000 of its own).
    const auto sample_error = [&](const std::string& draws) {
      const fs::path s = dir / "lp_samples.npy", l = dir / "lp_values.npy";
      const CliResult r = sbgm_cli("sample --checkpoint " + run.string() + " --cond " + (dir / "xo.npy").string() +
                                   " --n 200 --out " + s.string() + " --log-prob " + l.string() + " --support-draws " + draws);
      EXPECT_EQ(r.code, 0) << r.err;
      EXPECT_NE(r.out.find("counted once a condition"), std::string::npos) << r.out;
      const at::Tensor values = read_npy(l.string(), true).to(at::kDouble).flatten();
      const double spread = values.std().item<double>() / std::sqrt(static_cast<double>(values.numel()));
      const size_t at = r.out.find("+- ");
      const double printed = at == std::string::npos ? -1.0 : std::stod(r.out.substr(at + 3));
      EXPECT_GE(printed, spread * (1 - 1e-6)) << r.out;
      return printed;
    };
    EXPECT_GT(sample_error("100"), sample_error("10000"));
    expect_one_line_error(sbgm_cli(loglik + " --support-draws 0"), "--support-draws must be in [1, 10000000], got 0");
  }

  const fs::path unbounded = dir / "unbounded";
  const CliResult u = sbgm_cli("train" + data + " --out " + unbounded.string() + brief + " --data.bounds none");
  ASSERT_EQ(u.code, 0) << u.err;
  EXPECT_EQ(u.err.find("data.bounds"), std::string::npos) << u.err;
  RunConfig off;
  off.merge_toml(slurp(unbounded / "config.toml"), "config.toml");
  EXPECT_TRUE(off.data.lower.empty());
}

TEST(CliBounds, BadBounds) {
  const fs::path& dir = bounded_run();
  const std::string data = " --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string();
  const std::string never = " --out " + (dir / "never").string() + " --steps 10";
  // Training rows outside the bounds, lower >= upper, a count that fits no feature count, NaN.
  expect_one_line_error(sbgm_cli("train" + data + " --lower=-0.5,0 --upper 1,2" + never), "feature 0 = ");
  expect_one_line_error(sbgm_cli("train" + data + " --lower=-0.5,0 --upper 1,2" + never), "is below its lower bound -0.5");
  expect_one_line_error(sbgm_cli("train" + data + " --lower=-1,2 --upper 1,2" + never), "feature 1 has bounds [2, 2]");
  expect_one_line_error(sbgm_cli("train" + data + " --lower=-1,0,0 --upper 1,2,2" + never), "3 values for samples of 2");
  expect_one_line_error(sbgm_cli("train" + data + " --lower nan" + never), "data.lower");
  expect_one_line_error(sbgm_cli("train" + data + " --data.bounds box" + never), "unknown bounds rule 'box'");
  expect_one_line_error(sbgm_cli("train" + data + " --data.keep_within clip" + never), "unknown data.keep_within value 'clip'");
  expect_one_line_error(sbgm_cli("train --dataset moons --model.type unet --data.bounds find" + never), "data.bounds = find");
  EXPECT_FALSE(fs::exists(dir / "never"));
  // Resuming with other bounds would change what the network's space means.
  expect_one_line_error(sbgm_cli("train --resume --out " + (dir / "run").string() + " --upper 1,3"), "differs from the checkpoint");
}
