// The command line's contract: bad input gives one line on stderr, a non-zero exit and no
// output file; good input writes what it promises.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "cli_harness.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/io/run_lock.hpp"
#include "sbgm/run/checkpoint.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

// One trained run shared by the tests that need a checkpoint.
const fs::path& trained_run() {
  static const fs::path run = [] {
    const fs::path r = scratch() / "run";
    const CliResult res = sbgm_cli("train --dataset bimodal1d --out " + r.string() +
                                " --steps 30 --batch-size 32 --threads 1 --model.width 16 --sample.n 50 --sample.steps 10");
    EXPECT_EQ(res.code, 0) << res.err;
    return r;
  }();
  return run;
}

}  // namespace

TEST(Cli, TrainSampleInfo) {
  const fs::path& run = trained_run();
  for (const char* f : {"checkpoint.safetensors", "config.toml", "loss.csv", "loss.png", "samples.npy", "samples.png"})
    EXPECT_TRUE(fs::exists(run / f)) << f;
  const fs::path out = scratch() / "s.npy", png = scratch() / "s.png";
  const CliResult r = sbgm_cli("sample --checkpoint " + run.string() + " --n 77 --steps 5 --out " + out.string() + " --png " + png.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy(out.string()).sizes(), (std::vector<int64_t>{77, 1}));
  EXPECT_TRUE(fs::exists(png));
  const fs::path reduced = scratch() / "s_bf16.npy";
  const CliResult r16 = sbgm_cli("sample --checkpoint " + run.string() + " --n 77 --steps 5 --precision bfloat16 --out " + reduced.string());
  ASSERT_EQ(r16.code, 0) << r16.err;
  EXPECT_EQ(read_npy(reduced.string()).scalar_type(), at::kFloat);
  const CliResult info = sbgm_cli("info --checkpoint " + run.string());
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("step: 30"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("parameters: "), std::string::npos);
  EXPECT_NE(info.out.find("[model]"), std::string::npos);
}

// model.ensemble and model.input_scaling go through a whole run: written to config.toml, an
// ensemble of three holds three networks' weights, the checkpoint resumes and samples.
TEST(Cli, EnsembleWithScaledInputsTrainsResumesAndSamples) {
  const fs::path run = scratch() / "ensemble_run";
  const std::string common = " --steps 20 --batch-size 30 --threads 1 --model.width 8 --sample.n 10 --sample.steps 3";
  const CliResult r = sbgm_cli("train --dataset bimodal1d --sde.type ve --model.ensemble 3 --model.input_scaling unit --out " +
                               run.string() + common);
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream in(run / "config.toml");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("ensemble = 3"), std::string::npos) << text;
  EXPECT_NE(text.find("input_scaling = \"unit\""), std::string::npos) << text;
  auto parameters = [](const fs::path& dir) {
    const CliResult info = sbgm_cli("info --checkpoint " + dir.string());
    const auto at = info.out.find("parameters: ");
    return at == std::string::npos ? -1L : std::stol(info.out.substr(at + 12));
  };
  const fs::path single = scratch() / "single_run";
  ASSERT_EQ(sbgm_cli("train --dataset bimodal1d --sde.type ve --out " + single.string() + common).code, 0);
  EXPECT_GT(parameters(single), 0);
  EXPECT_EQ(parameters(run), 3 * parameters(single));
  const CliResult again = sbgm_cli("train --out " + run.string() + " --resume --steps 30 --threads 1");
  ASSERT_EQ(again.code, 0) << again.err;
  const fs::path out = scratch() / "ensemble.npy";
  ASSERT_EQ(sbgm_cli("sample --checkpoint " + run.string() + " --n 50 --steps 20 --out " + out.string()).code, 0);
  EXPECT_TRUE(at::isfinite(read_npy(out.string())).all().item<bool>());
  expect_one_line_error(sbgm_cli("train --dataset bimodal1d --model.ensemble 0 --out " + (scratch() / "never_ens").string()),
                        "model.ensemble");
  expect_one_line_error(sbgm_cli("train --dataset bimodal1d --model.input_scaling cubic --out " + (scratch() / "never_ens").string()),
                        "input scaling");
  expect_one_line_error(sbgm_cli("train --dataset bimodal1d --sample.lambda 2 --out " + (scratch() / "never_ens").string()),
                        "sample.lambda");
  expect_one_line_error(sbgm_cli("train --dataset bimodal1d --sample.sampler pc --sample.lambda 0.5 --out " +
                                 (scratch() / "never_ens").string()),
                        "sample.lambda");
  EXPECT_FALSE(fs::exists(scratch() / "never_ens"));
}

// A run directory has one owner: while a process holds RUN's lock (here this test process), a
// second training run into RUN, fresh or resumed, refuses with one line naming the holder and
// writes nothing; sample and info still read the run; once the holder lets go, training works.
TEST(Cli, ARunDirectoryHasOneOwner) {
  const fs::path run = scratch() / "locked_run";
  const std::string train = "train --dataset bimodal1d --out " + run.string() +
                            " --batch-size 16 --threads 1 --model.width 8 --sample.n 10 --sample.steps 3";
  ASSERT_EQ(sbgm_cli(train + " --steps 10").code, 0);
  const auto stamp = fs::last_write_time(run / "checkpoint.safetensors");
  {
    const RunLock held(run.string());
    const std::string pid = "process " + std::to_string(::getpid());
    expect_one_line_error(sbgm_cli(train + " --steps 10"), pid);
    expect_one_line_error(sbgm_cli(train + " --resume --steps 20"), pid);
    EXPECT_EQ(fs::last_write_time(run / "checkpoint.safetensors"), stamp);
    EXPECT_EQ(sbgm_cli("info --checkpoint " + run.string()).code, 0);
    EXPECT_EQ(sbgm_cli("sample --checkpoint " + run.string() + " --n 5 --steps 3 --out " + (scratch() / "locked.npy").string()).code, 0);
  }
  const CliResult again = sbgm_cli(train + " --resume --steps 20");
  EXPECT_EQ(again.code, 0) << again.err;
}

// --resume keeps the model, its SDE and its data: changing them is one line naming the key (or
// the data), nothing written; compatible changes (more steps, another learning rate) go through.
TEST(Cli, ResumeRefusesIncompatibleChanges) {
  const fs::path dir = scratch() / "resume_changes", run = dir / "run";
  fs::create_directories(dir);
  at::manual_seed(6);
  write_npy((dir / "a.npy").string(), at::randn({300, 2}));
  write_npy((dir / "b.npy").string(), at::randn({300, 2}) * 2 + 1);
  const std::string train = "train --data " + (dir / "a.npy").string() + " --out " + run.string() +
                            " --steps 10 --batch-size 16 --threads 1 --model.width 8 --sample.n 10 --sample.steps 3";
  ASSERT_EQ(sbgm_cli(train).code, 0);
  const std::string resume = "train --out " + run.string() + " --resume --threads 1";
  const auto stamp = fs::last_write_time(run / "checkpoint.safetensors");
  expect_one_line_error(sbgm_cli(resume + " --steps 20 --sde ve"), "sde.type = ve differs from the checkpoint's vp");
  expect_one_line_error(sbgm_cli(resume + " --steps 20 --sde.beta_max 10"), "sde.beta_max");
  expect_one_line_error(sbgm_cli(resume + " --steps 20 --model.output score"), "model.output");
  expect_one_line_error(sbgm_cli(resume + " --steps 20 --model.width 16"), "model.width");
  expect_one_line_error(sbgm_cli(resume + " --steps 20 --data " + (dir / "b.npy").string()), "the data differ");
  expect_one_line_error(sbgm_cli(resume + " --steps 5"), "below the checkpoint's step 10");
  EXPECT_EQ(fs::last_write_time(run / "checkpoint.safetensors"), stamp);
  const CliResult ok = sbgm_cli(resume + " --steps 20 --train.lr 3e-4");
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(sbgm_cli("info --checkpoint " + run.string()).out.find("step: 20 of 20"), std::string::npos);
}

// Training that goes wrong says so: a loss that is no longer finite stops the run with one line
// and a non-zero exit; a checkpoint whose weights are not finite is not resumed.
TEST(Cli, DivergedTrainingIsAnError) {
  const fs::path run = scratch() / "diverged";
  const CliResult r = sbgm_cli("train --dataset moons --out " + run.string() +
                               " --steps 200 --batch-size 16 --threads 1 --model.width 8 --train.lr 1e30 --train.log_every 10");
  EXPECT_NE(r.code, 0);
  expect_one_line_error(r, "training diverged");
  EXPECT_FALSE(fs::exists(run / "samples.npy"));
  // Skipping single bad steps says how many and does not hide a run that stays broken: the first
  // step (lr 1e28 in the warm-up) leaves weights near 1e28, every later step overflows.
  const CliResult skipping = sbgm_cli("train --dataset moons --out " + (scratch() / "diverged_skip").string() +
                                      " --steps 200 --batch-size 16 --threads 1 --model.width 8 --train.lr 1e30 "
                                      "--train.log_every 10 --train.skip_nonfinite true");
  EXPECT_NE(skipping.code, 0);
  EXPECT_NE(skipping.err.find("step 10: 9 of the last 10 steps skipped"), std::string::npos) << skipping.err;
  EXPECT_NE(skipping.err.find("sbgm: error: training diverged: the loss or gradient was not finite at every step "
                              "from 11 to 20"),
            std::string::npos)
      << skipping.err;

  const fs::path good = scratch() / "nan_resume";
  ASSERT_EQ(sbgm_cli("train --dataset moons --out " + good.string() +
                     " --steps 10 --batch-size 16 --threads 1 --model.width 8 --sample.n 10 --sample.steps 3")
                .code,
            0);
  Checkpoint c = load_checkpoint(good.string());
  c.state.ema.fill_(std::numeric_limits<float>::quiet_NaN());
  save_checkpoint(c, (good / "checkpoint.safetensors").string());
  expect_one_line_error(sbgm_cli("train --out " + good.string() + " --resume --steps 20 --threads 1"), "not finite");
}

TEST(Cli, EffectiveConfigIsWrittenAndConfigFileIsRead) {
  const fs::path cfg = scratch() / "c.toml", run = scratch() / "cfgrun";
  std::ofstream(cfg) << "[model]\nwidth = 12\n[train]\nsteps = 7\nbatch_size = 16\n[sample]\nn = 10\nsteps = 3\n";
  const CliResult r = sbgm_cli("train --dataset moons --out " + run.string() + " --config " + cfg.string() + " --train.steps 9 --threads 1 --train.precision bf16");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string written = slurp(run / "config.toml");
  EXPECT_NE(written.find("precision = \"bfloat16\""), std::string::npos) << written;
  EXPECT_NE(written.find("width = 12"), std::string::npos);
  EXPECT_NE(written.find("steps = 9"), std::string::npos);  // the flag wins over the file
}

TEST(Cli, BadTrainInputs) {
  const fs::path dir = scratch();
  write_npy((dir / "rank1.npy").string(), at::ones({5}));
  at::Tensor nan = at::ones({4, 2});
  nan[1][0] = std::nan("");
  write_npy((dir / "nan.npy").string(), nan);
  std::ofstream(dir / "trunc.npy", std::ios::binary) << "\x93NUMPY\x01\x00";
  std::ofstream(dir / "bad.toml") << "[model]\nwdth = 4\n";
  const std::string out = " --out " + (dir / "never").string();
  expect_one_line_error(sbgm_cli("train --data " + (dir / "missing.npy").string() + out), "cannot open");
  expect_one_line_error(sbgm_cli("train --data " + (dir / "trunc.npy").string() + out), "truncated");
  expect_one_line_error(sbgm_cli("train --data " + (dir / "rank1.npy").string() + out), "rank 1");
  expect_one_line_error(sbgm_cli("train --data " + (dir / "nan.npy").string() + out), "NaN");
  expect_one_line_error(sbgm_cli("train --dataset ring8 --steps 0" + out), "train.steps");
  expect_one_line_error(sbgm_cli("train --dataset ring8 --sde.beta_min 30" + out), "beta_max");
  expect_one_line_error(sbgm_cli("train --dataset ring9" + out), "unknown dataset");
  expect_one_line_error(sbgm_cli("train --dataset ring8 --sde vpp" + out), "unknown SDE");
  expect_one_line_error(sbgm_cli("train --dataset ring8 --config " + (dir / "bad.toml").string() + out), "model.wdth");
  expect_one_line_error(sbgm_cli("train --dataset ring8 --no-such-flag 1" + out), "no-such-flag");
  // A size no network needs is refused before anything is allocated (it once took 5.5 GB).
  expect_one_line_error(sbgm_cli("train --dataset ring8 --model.depth 100000000" + out), "model.depth must be in [1, 256]");
  expect_one_line_error(sbgm_cli("train --dataset ring8 --lr abc" + out), "train.lr");
  expect_one_line_error(sbgm_cli("train --dataset ring8 --train.precision float16" + out), "unknown precision");
  expect_one_line_error(sbgm_cli("train --dataset ring8 --train.patience 5" + out), "train.validation_fraction");
  expect_one_line_error(sbgm_cli("train --dataset ring8 --train.validation_fraction 0.5" + out), "[0, 0.5)");
  expect_one_line_error(sbgm_cli("train --dataset ring8 --device tpu" + out), "unknown device");
  expect_one_line_error(sbgm_cli("train" + out), "exactly one");
  expect_one_line_error(sbgm_cli("train --dataset ring8 --resume" + out), "no checkpoint");
  EXPECT_FALSE(fs::exists(dir / "never"));
}

TEST(Cli, BadSampleInputs) {
  const fs::path& run = trained_run();
  const fs::path dir = scratch();
  const std::string ck = " --checkpoint " + run.string();
  expect_one_line_error(sbgm_cli("sample --checkpoint " + (dir / "nope").string() + " --out " + (dir / "x.npy").string()), "no checkpoint");
  std::ofstream(dir / "garbage.pt") << "not a checkpoint";
  expect_one_line_error(sbgm_cli("sample --checkpoint " + (dir / "garbage.pt").string() + " --out " + (dir / "x.npy").string()), "not an sbgm checkpoint");
  expect_one_line_error(sbgm_cli("sample" + ck + " --n 0 --out " + (dir / "x.npy").string()), "--n");
  expect_one_line_error(sbgm_cli("sample" + ck + " --out " + (dir / "x.txt").string()), ".npy");
  expect_one_line_error(sbgm_cli("sample" + ck + " --out " + (dir / "no/dir/x.npy").string()), "does not exist");
  expect_one_line_error(sbgm_cli("sample" + ck + " --n many --out " + (dir / "x.npy").string()), "--n");
  expect_one_line_error(sbgm_cli("sample" + ck + " --precision half --out " + (dir / "x.npy").string()), "unknown precision");
  expect_one_line_error(sbgm_cli("info --checkpoint " + (dir / "garbage.pt").string()), "checkpoint");
  EXPECT_FALSE(fs::exists(dir / "x.npy"));
}

// Ctrl-C during training saves a checkpoint, says how to resume, exits 130; --resume continues.
TEST(Cli, InterruptSavesCheckpointAndResumeContinues) {
  const fs::path run = scratch() / "interrupted", err = scratch() / "interrupted.err";
  fs::remove_all(run);  // a repeated run (--gtest_repeat) must not find the last one's loss log
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::freopen(err.c_str(), "w", stderr);
    std::freopen("/dev/null", "w", stdout);
    ::execl(SBGM_CLI_PATH, "sbgm", "train", "--dataset", "moons", "--out", run.c_str(), "--steps", "100000000",
            "--batch-size", "32", "--model.width", "16", "--threads", "1", "--train.log_every", "10",
            "--sample.n", "10", "--sample.steps", "2", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until training is under way (the loss log has rows), then interrupt.
  for (int i = 0; i < 600; ++i) {
    if (slurp(run / "loss.csv").find("\n20,") != std::string::npos) break;
    ::usleep(100000);
  }
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_NE(slurp(err).find("interrupted at step"), std::string::npos) << slurp(err);
  ASSERT_TRUE(fs::exists(run / "checkpoint.safetensors"));
  const CliResult info = sbgm_cli("info --checkpoint " + run.string());
  ASSERT_EQ(info.code, 0) << info.err;
  const auto at = info.out.find("step: ");
  const long step = std::stol(info.out.substr(at + 6));
  EXPECT_GE(step, 20);
  const CliResult resumed = sbgm_cli("train --out " + run.string() + " --resume --steps " + std::to_string(step + 7));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resuming"), std::string::npos);
  EXPECT_NE(sbgm_cli("info --checkpoint " + run.string()).out.find("step: " + std::to_string(step + 7)), std::string::npos);
}

TEST(Cli, LoglikAndOdeSampling) {
  const fs::path& run = trained_run();
  const fs::path dir = scratch();
  write_npy((dir / "points.npy").string(), at::linspace(-3, 3, 25).reshape({25, 1}));
  const fs::path ll = dir / "ll.npy", bpd = dir / "bpd.npy", hutch = dir / "hutch.npy";
  CliResult r = sbgm_cli("loglik --checkpoint " + run.string() + " --data " + (dir / "points.npy").string() + " --out " + ll.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor lp = read_npy(ll.string(), true);
  EXPECT_EQ(lp.sizes(), (std::vector<int64_t>{25}));
  EXPECT_TRUE(at::isfinite(lp).all().item<bool>());
  EXPECT_NE(r.out.find("function evaluations per point"), std::string::npos);
  const fs::path per_row = dir / "ll_row.npy";
  r = sbgm_cli("loglik --error-control row --checkpoint " + run.string() + " --data " + (dir / "points.npy").string() +
               " --out " + per_row.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LT((read_npy(per_row.string(), true) - lp).abs().max().item<double>(), 1e-2);
  r = sbgm_cli("loglik --bpd --checkpoint " + run.string() + " --data " + (dir / "points.npy").string() + " --out " + bpd.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(at::allclose(read_npy(bpd.string(), true), -lp / std::log(2.0), 1e-5, 1e-6));
  r = sbgm_cli("loglik --divergence hutchinson --probes 3 --noise gaussian --checkpoint " + run.string() + " --data " +
               (dir / "points.npy").string() + " --out " + hutch.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("standard error"), std::string::npos);
  const fs::path ode = dir / "ode.npy";
  r = sbgm_cli("sample --sampler ode --solver tsit5 --error-control row --n 40 --checkpoint " + run.string() + " --out " + ode.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy(ode.string()).sizes(), (std::vector<int64_t>{40, 1}));
  const fs::path pc = dir / "pc.npy";
  r = sbgm_cli("sample --sampler pc --steps 20 --corrector-steps 2 --snr 0.1 --n 30 --checkpoint " + run.string() +
               " --out " + pc.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy(pc.string()).sizes(), (std::vector<int64_t>{30, 1}));
  expect_one_line_error(sbgm_cli("sample --sampler pc --snr 0 --checkpoint " + run.string() + " --out " +
                                 (dir / "pc_bad.npy").string()),
                        "--snr");
}

TEST(Cli, BadLoglikInputs) {
  const fs::path& run = trained_run();
  const fs::path dir = scratch();
  write_npy((dir / "two_d.npy").string(), at::zeros({5, 2}));
  write_npy((dir / "one_d.npy").string(), at::zeros({5, 1}));
  const std::string base = "loglik --checkpoint " + run.string() + " --out " + (dir / "bad_ll.npy").string();
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "two_d.npy").string()), "trained on [1]");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "one_d.npy").string() + " --rtol 0"), "tolerances");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "one_d.npy").string() + " --atol -1"), "tolerances");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "one_d.npy").string() + " --solver rk45"), "unknown solver");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "one_d.npy").string() + " --error-control each"), "error control");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "one_d.npy").string() +
                                 " --error-control row --max-steps 2 --rtol 1e-9 --atol 1e-9"), "max_steps");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "one_d.npy").string() + " --divergence trace"), "unknown divergence");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "one_d.npy").string() + " --probes 0"), "--probes");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "one_d.npy").string() + " --max-steps 2 --rtol 1e-9 --atol 1e-9"), "max_steps");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "missing.npy").string()), "cannot open");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "one_d.npy").string() + " --t-eps -1"), "--t-eps");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "one_d.npy").string() + " --t-eps 5"), "--t-eps");
  expect_one_line_error(sbgm_cli(base + " --data " + (dir / "one_d.npy").string() + " --chunk 0"), "chunk");
  expect_one_line_error(sbgm_cli("sample --steps 0 --checkpoint " + run.string() + " --out " + (dir / "bad_s.npy").string()), "--steps");
  expect_one_line_error(sbgm_cli("sample --sampler pc --corrector-steps -1 --checkpoint " + run.string() + " --out " + (dir / "bad_s.npy").string()), "corrector");
  expect_one_line_error(sbgm_cli("sample --sampler langevin --checkpoint " + run.string() + " --out " + (dir / "bad_s.npy").string()), "unknown sampler");
  EXPECT_FALSE(fs::exists(dir / "bad_ll.npy"));
  EXPECT_FALSE(fs::exists(dir / "bad_s.npy"));
}
