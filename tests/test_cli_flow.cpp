// `--objective flow` through the CLI: a flow-matching run records what it chose (the velocity, the
// linear path, the ODE), samples, evaluates and describes itself like a score run, conditions
// and guidance included; what a flow model cannot do is one line, nothing written.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_harness.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

// Two small flow runs on x = (y, -y) + noise: unconditional (x alone) and conditional on y with
// condition dropout.
const fs::path& flow_runs() {
  static const fs::path dir = [] {
    const fs::path d = scratch() / "flow_runs";
    fs::create_directories(d);
    at::Generator gen = make_generator(at::kCPU, 4);
    const at::Tensor y = at::randn({600, 1}, gen);
    write_npy((d / "x.npy").string(), at::cat({y, -y}, 1) + 0.2 * at::randn({600, 2}, gen));
    write_npy((d / "y.npy").string(), y);
    write_npy((d / "two.npy").string(), at::tensor({-1.0f, 1.0f}).reshape({2, 1}));
    const std::string common = " --objective flow --steps 150 --model.width 32 --model.depth 2 --sample.n 50 --threads 1";
    // The unconditional run pairs its batches' data and noise by minibatch optimal transport.
    CliResult r = sbgm_cli("train --data " + (d / "x.npy").string() + " --out " + (d / "plain").string() + common +
                           " --train.ot_coupling true");
    EXPECT_EQ(r.code, 0) << r.err;
    r = sbgm_cli("train --data " + (d / "x.npy").string() + " --cond " + (d / "y.npy").string() +
                 " --cond-dropout 0.2 --out " + (d / "cond").string() + common);
    EXPECT_EQ(r.code, 0) << r.err;
    return d;
  }();
  return dir;
}

}  // namespace

TEST(CliFlow, RunRecordsItsChoicesAndSamplesAndEvaluates) {
  const fs::path& dir = flow_runs();
  const std::string config = slurp(dir / "plain" / "config.toml");
  for (const char* line : {"objective = \"flow\"", "output = \"velocity\"", "type = \"linear\"", "sampler = \"ode\""})
    EXPECT_NE(config.find(line), std::string::npos) << line << "\n" << config;
  const std::string ck = " --checkpoint " + (dir / "plain").string();
  const CliResult info = sbgm_cli("info" + ck);
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("objective: flow matching"), std::string::npos) << info.out;

  const fs::path samples = dir / "samples.npy", ll = dir / "ll.npy";
  CliResult r = sbgm_cli("sample" + ck + " --n 30 --out " + samples.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy(samples.string()).sizes(), (std::vector<int64_t>{30, 2}));
  for (const char* solver : {"heun --steps 10", "euler --steps 20"}) {
    r = sbgm_cli("sample" + ck + " --n 30 --sampler ode --solver " + solver + " --out " + samples.string());
    EXPECT_EQ(r.code, 0) << solver << ": " << r.err;
  }
  // The few-step solvers of the ODE (the run's optimal-transport pairs leave it the ODE alone).
  for (const char* sampler : {"unipc --steps 10", "dpmpp2m --steps 10", "dpmpp3m --steps 10", "ddim --steps 10"}) {
    r = sbgm_cli("sample" + ck + " --n 30 --sampler " + sampler + " --out " + samples.string());
    EXPECT_EQ(r.code, 0) << sampler << ": " << r.err;
  }
  r = sbgm_cli("loglik" + ck + " --data " + samples.string() + " --out " + ll.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor lp = read_npy(ll.string(), true);
  EXPECT_EQ(lp.sizes(), (std::vector<int64_t>{30}));
  EXPECT_TRUE(at::isfinite(lp).all().item<bool>());
  r = sbgm_cli("loglik --divergence hutchinson --probes 4" + ck + " --data " + samples.string() + " --out " + ll.string());
  EXPECT_EQ(r.code, 0) << r.err;
  // The pictures: the density map of a grid, and trajectories (the ODE's alone: no reverse SDE).
  const fs::path grid = dir / "grid.npy", png = dir / "grid.png", paths = dir / "paths.png";
  r = sbgm_cli("loglik" + ck + " --grid 5 --range -3,3,-3,3 --data " + samples.string() + " --png " + png.string() +
               " --out " + grid.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy(grid.string(), true).sizes(), (std::vector<int64_t>{5, 5}));
  EXPECT_TRUE(fs::exists(png));
  r = sbgm_cli("sample" + ck + " --n 30 --trajectories 5 --png " + paths.string() + " --out " + samples.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(paths));
}

TEST(CliFlow, ConditionalFlowWithGuidance) {
  const fs::path& dir = flow_runs();
  const std::string ck = " --checkpoint " + (dir / "cond").string();
  for (const char* guidance : {"0", "2"}) {
    const fs::path out = dir / (std::string("c") + guidance + ".npy");
    const CliResult r = sbgm_cli("sample" + ck + " --cond " + (dir / "two.npy").string() + " --n 20 --guidance " +
                                 guidance + " --out " + out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(read_npy(out.string()).sizes(), (std::vector<int64_t>{2, 20, 2}));
  }
  const fs::path ll = dir / "cll.npy";
  const CliResult r = sbgm_cli("loglik" + ck + " --cond " + (dir / "y.npy").string() + " --data " +
                               (dir / "x.npy").string() + " --out " + ll.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy(ll.string(), true).sizes(), (std::vector<int64_t>{600}));
}

TEST(CliFlow, WhatAFlowModelCannotDoIsOneLine) {
  const fs::path& dir = flow_runs();
  const fs::path out = dir / "never.npy";
  const std::string ck = " --checkpoint " + (dir / "plain").string(), to = " --out " + out.string();
  for (const char* sampler : {"em", "pc", "ancestral", "edm"})
    expect_one_line_error(sbgm_cli("sample" + ck + " --sampler " + sampler + to), "sample it with the ode sampler");
  expect_one_line_error(sbgm_cli("sample --checkpoint " + (dir / "cond").string() + " --cond " + (dir / "two.npy").string() +
                                 " --iid" + to),
                        "not available for flow models");
  expect_one_line_error(sbgm_cli("inpaint" + ck + " --data " + (dir / "x.npy").string() + " --noise-std 0.1" + to),
                        "flow model");
  // Trained with minibatch optimal transport, the model's marginals are not the path's, so the
  // score derived from its velocity is not theirs: no sampler that draws fresh noise along it, no
  // variational bound (measured: such draws land far off the data, docs/flow_matching.md).
  for (const char* sampler : {"dpmpp2m --lambda 0", "ddim --eta 1", "ddim --lambda 0.5", "unipc --lambda 0.5"})
    expect_one_line_error(sbgm_cli("sample" + ck + " --sampler " + sampler + to), "uses the path's score");
  expect_one_line_error(sbgm_cli("loglik" + ck + " --bound elbo-dsm --data " + (dir / "x.npy").string() + to),
                        "the variational bound uses the path's score");
  EXPECT_FALSE(fs::exists(out));

  const fs::path never = dir / "never_run";
  const std::string train = "train --data " + (dir / "x.npy").string() + " --out " + never.string() + " --steps 5 --threads 1";
  expect_one_line_error(sbgm_cli(train + " --objective flows"), "model.objective");
  expect_one_line_error(sbgm_cli(train + " --sde linear"), "needs model.objective = flow");
  expect_one_line_error(sbgm_cli(train + " --objective flow --train.weighting likelihood"), "flow matching");
  expect_one_line_error(sbgm_cli(train + " --objective flow --sample.sampler em"), "ode sampler");
  expect_one_line_error(sbgm_cli(train + " --train.ot_coupling true"), "train.ot_coupling");
  expect_one_line_error(sbgm_cli(train + " --objective flow --sde vp --train.ot_coupling true --sample.sampler em"),
                        "train.ot_coupling's flow model does not have");
  expect_one_line_error(sbgm_cli(train + " --objective flow --train.ot_coupling true --cond " + (dir / "y.npy").string()),
                        "unconditional data only");
  EXPECT_FALSE(fs::exists(never));
  // A flow run cannot be resumed as a score run: its path is flow matching's, its network a velocity.
  const std::string resume = "train --out " + (dir / "plain").string() + " --resume --steps 200 --threads 1";
  expect_one_line_error(sbgm_cli(resume + " --objective score"), "needs model.objective = flow");
  expect_one_line_error(sbgm_cli(resume + " --objective score --sde vp --train.ot_coupling false"),
                        "differs from the checkpoint's");
}
