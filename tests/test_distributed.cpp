// Data-parallel jobs: the chunk split, the launcher's environment, and whole jobs of two
// processes on loopback (Gloo) through the command line: the same weights as one process with
// the whole batch, the same samples and likelihoods, and what happens when a process dies,
// hangs or is interrupted.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "cli_harness.hpp"
#include "sbgm/dist/communicator.hpp"
#include "sbgm/dist/row_chunks.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/run/checkpoint.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

// Jobs of several processes need a build with Gloo (Communicator::processes_supported).
#define SBGM_REQUIRE_PROCESSES()                                                              \
  if (!Communicator::processes_supported())                                                   \
  GTEST_SKIP() << "this build has no Gloo process groups (its LibTorch installation has no gloo headers)"

namespace {

// Sets environment variables for one scope and restores what was there.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, old] : saved_) {
      if (old) ::setenv(name.c_str(), old->c_str(), 1);
      else ::unsetenv(name.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Starts `sbgm ARGS...` in the background with stderr to err_file.
pid_t spawn_cli(std::vector<std::string> args, const fs::path& err_file) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::freopen(err_file.c_str(), "w", stderr);
    std::freopen("/dev/null", "w", stdout);
    std::vector<char*> argv{const_cast<char*>("sbgm")};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(SBGM_CLI_PATH, argv.data());
    ::_exit(127);
  }
  return pid;
}

// The process among the launcher's children whose environment says RANK=rank, or -1.
pid_t child_with_rank(pid_t launcher, int rank) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != launcher) continue;
    // NUL-separated NAME=VALUE entries; "RANK=1" must not match "LOCAL_RANK=1".
    const std::string env = std::string(1, '\0') + slurp(entry.path() / "environ");
    const std::string wanted = std::string(1, '\0') + "RANK=" + std::to_string(rank) + std::string(1, '\0');
    if (env.find(wanted) != std::string::npos) return std::stoi(name);
  }
  return -1;
}

// Waits until the loss log of run has a row for step `step` (training is under way).
bool wait_for_step(const fs::path& run, int step, double seconds = 120) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (slurp(run / "loss.csv").find("\n" + std::to_string(step) + ",") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// Waits for pid to exit; returns its exit code, or -1 if it had to be killed after `seconds`.
int wait_exit(pid_t pid, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

double max_relative_difference(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

const std::string kMoons = "train --dataset moons --batch-size 64 --model.width 32 --threads 1 --sample.n 50 --sample.steps 10";

// Starts a 2-process training job on the moons that would run for ever, logging every 10 steps.
pid_t start_endless_job(const fs::path& run, const fs::path& err, std::vector<std::string> extra) {
  std::vector<std::string> args{"train", "--dataset", "moons", "--out", run.string(), "--steps", "100000000",
                                "--batch-size", "32", "--model.width", "16", "--threads", "1", "--nproc", "2",
                                "--train.log_every", "10", "--sample.n", "10", "--sample.steps", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return spawn_cli(args, err);
}

}  // namespace

TEST(Distributed, ChunksOfRankCoverEveryRowOnceInOrderAndBalanced) {
  for (int64_t n : {1, 5, 255, 256, 257, 1000}) {
    for (int64_t chunk : {1, 7, 256}) {
      for (int size : {1, 2, 3, 8}) {
        int64_t next = 0, least = n, most = 0;
        for (int r = 0; r < size; ++r) {
          const ChunkRange c = chunks_of_rank(n, chunk, r, size);
          EXPECT_EQ(c.begin, next);
          EXPECT_LE(c.begin, c.end);
          EXPECT_EQ(c.begin, std::min(n, c.first_chunk * chunk));
          next = c.end;
          least = std::min(least, c.end_chunk - c.first_chunk);
          most = std::max(most, c.end_chunk - c.first_chunk);
        }
        EXPECT_EQ(next, n) << n << " " << chunk << " " << size;
        EXPECT_LE(most - least, 1);
      }
    }
  }
}

TEST(Distributed, RowChunksVisitEveryRowOnceWithItsOwnSeedAndReportProgressInOrder) {
  // 23 rows in chunks of 5: chunks of 5, 5, 5, 5, 3, each with its own seed and generator.
  const RowChunks chunks(23, 5, make_generator(at::kCPU, 11), at::TensorOptions().dtype(at::kDouble));
  EXPECT_EQ(chunks.local_rows(), 23);
  EXPECT_EQ(chunks.local_begin(), 0);
  at::Tensor local = at::full({23}, -1.0, at::kDouble);
  std::vector<uint64_t> seeds;
  std::vector<std::pair<int64_t, int64_t>> reports;
  chunks.for_each(
      [&](const RowChunk& c) {
        EXPECT_EQ(c.start, 5 * c.index);
        EXPECT_EQ(c.rows, c.index < 4 ? 5 : 3);
        EXPECT_EQ(c.local_start, c.start);
        EXPECT_TRUE(at::equal(at::rand({3}, c.gen), at::rand({3}, make_generator(at::kCPU, c.seed))));
        seeds.push_back(c.seed);
        c.report(0.5);
        c.report(0.25);  // a step back (a rejected solver step) is not reported
        c.report(2.0);   // clamped to the chunk's end
        local.narrow(0, c.local_start, c.rows).fill_(static_cast<double>(c.index));
      },
      [&](int64_t done, int64_t total) { reports.emplace_back(done, total); });
  ASSERT_EQ(seeds.size(), 5u);
  EXPECT_EQ(std::set<uint64_t>(seeds.begin(), seeds.end()).size(), 5u);
  for (size_t i = 1; i < reports.size(); ++i) EXPECT_GE(reports[i].first, reports[i - 1].first);
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.front(), std::make_pair(int64_t{500}, int64_t{5000}));
  EXPECT_EQ(reports.back(), std::make_pair(int64_t{5000}, int64_t{5000}));
  const at::Tensor all = chunks.gather(local);
  for (int64_t row = 0; row < 23; ++row) EXPECT_EQ(all[row].item<double>(), static_cast<double>(row / 5));
  // The same generator seed draws the same chunk seeds: results depend on it and the chunk size only.
  std::vector<uint64_t> again;
  RowChunks(23, 5, make_generator(at::kCPU, 11), at::TensorOptions().dtype(at::kDouble))
      .for_each([&](const RowChunk& c) { again.push_back(c.seed); });
  EXPECT_EQ(again, seeds);
  EXPECT_THROW(RowChunks(0, 5, make_generator(at::kCPU, 1), at::TensorOptions()), InvalidArgument);
  EXPECT_THROW(RowChunks(5, 0, make_generator(at::kCPU, 1), at::TensorOptions()), InvalidArgument);
  EXPECT_THROW(chunks.gather(at::zeros({22})), InvalidArgument);
}

TEST(Distributed, OneProcessCommunicatorIsTheIdentity) {
  const Communicator comm;
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.size(), 1);
  EXPECT_TRUE(comm.is_root());
  at::Tensor t = at::arange(6.0);
  comm.broadcast(t);
  comm.all_reduce_sum({t});
  EXPECT_TRUE(at::equal(t, at::arange(6.0)));
  EXPECT_TRUE(at::equal(comm.all_gather(t), t.unsqueeze(0)));
  EXPECT_TRUE(at::equal(gather_rows(comm, t, 6, 4), t));
  comm.barrier();
}

TEST(Distributed, LauncherEnvironmentIsReadAndCheckedByName) {
  {
    ScopedEnv clear({{"WORLD_SIZE", ""}});
    ::unsetenv("WORLD_SIZE");
    EXPECT_FALSE(process_group_env_from_environment().has_value());
  }
  {
    ScopedEnv env({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                   {"MASTER_ADDR", "10.0.0.2"}, {"MASTER_PORT", "29400"}});
    const auto e = process_group_env_from_environment();
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->world_size, 4);
    EXPECT_EQ(e->rank, 3);
    EXPECT_EQ(e->local_rank, 1);
    EXPECT_EQ(e->local_world_size, 2);
    EXPECT_EQ(e->master_addr, "10.0.0.2");
    EXPECT_EQ(e->master_port, 29400);
  }
  auto error_with = [](std::initializer_list<std::pair<const char*, const char*>> vars) {
    ScopedEnv env({{"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "1"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29400"}});
    ScopedEnv more(vars);
    try {
      process_group_env_from_environment();
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_with({{"WORLD_SIZE", "2"}, {"RANK", "2"}}).find("RANK=2"), std::string::npos);
  EXPECT_NE(error_with({{"WORLD_SIZE", "two"}, {"RANK", "0"}}).find("WORLD_SIZE=two"), std::string::npos);
  EXPECT_NE(error_with({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_PORT", "99999"}}).find("MASTER_PORT"), std::string::npos);
  EXPECT_NE(error_with({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", ""}}).find("MASTER_ADDR"), std::string::npos);
}

namespace {

// K steps of 2 processes, each with half of the global batch, give the weights of K steps of 1
// process with the whole batch.
void expect_two_processes_train_like_one(const std::string& args, const std::string& name) {
  const fs::path one = scratch() / (name + "_one"), two = scratch() / (name + "_two");
  const CliResult a = sbgm_cli(args + " --steps 40 --out " + one.string());
  ASSERT_EQ(a.code, 0) << a.err;
  const CliResult b = sbgm_cli(args + " --steps 40 --nproc 2 --out " + two.string());
  ASSERT_EQ(b.code, 0) << b.err;
  // Rank 0 alone reports and writes.
  const std::string wrote = "wrote " + two.string();
  EXPECT_EQ(b.err.find(wrote), b.err.rfind(wrote)) << b.err;
  for (const char* f : {"checkpoint.safetensors", "config.toml", "loss.csv", "samples.npy", "samples.png"})
    EXPECT_TRUE(fs::exists(two / f)) << f;
  const Checkpoint x = load_checkpoint(one.string()), y = load_checkpoint(two.string());
  EXPECT_EQ(y.state.step, 40);
  EXPECT_LT(max_relative_difference(y.state.params, x.state.params), 1e-5);
  EXPECT_LT(max_relative_difference(y.state.ema, x.state.ema), 1e-5);
  // Not equal by default: training moved the weights far more than the tolerance.
  const fs::path early = scratch() / (name + "_early");
  ASSERT_EQ(sbgm_cli(args + " --steps 1 --out " + early.string()).code, 0);
  EXPECT_GT(max_relative_difference(load_checkpoint(early.string()).state.params, x.state.params), 1e-2);
  // The logged loss is the global batch's: the two logs agree.
  const std::string log_one = slurp(one / "loss.csv"), log_two = slurp(two / "loss.csv");
  EXPECT_EQ(log_one.substr(0, log_one.find(',', 20)), log_two.substr(0, log_two.find(',', 20)));
}

}  // namespace

// The correctness test, on the manual-backward MLP path.
TEST(Distributed, TwoProcessesTrainLikeOneWithTheWholeBatch) {
  SBGM_REQUIRE_PROCESSES();
  expect_two_processes_train_like_one(kMoons, "dp");
}

// The same for flow matching (the velocity objective and the linear path).
TEST(Distributed, TwoProcessesTrainAFlowModelLikeOne) {
  SBGM_REQUIRE_PROCESSES();
  expect_two_processes_train_like_one(kMoons + " --model.objective flow", "dp_flow");
}

// Dropout: each process draws the masks of its rows of the whole batch.
TEST(Distributed, TwoProcessesTrainWithDropoutLikeOne) {
  SBGM_REQUIRE_PROCESSES();
  expect_two_processes_train_like_one(kMoons + " --model.dropout 0.2", "dp_dropout");
}

// Held-out rows and early stopping: every rank scores the same rows with the same weights, so
// 2 processes log the held-out losses 1 process logs and stop at the same step. (Over hundreds
// of steps the two runs' weights drift apart by the order of their floating-point sums, which
// training amplifies; the 40-step test above bounds that drift where it is still small.)
TEST(Distributed, ValidationAndEarlyStoppingAgreeAcrossProcesses) {
  SBGM_REQUIRE_PROCESSES();
  const std::string args = kMoons + " --data.size 200 --steps 2000 --train.validation_fraction 0.25"
                                    " --train.patience 2 --train.log_every 10";
  const fs::path one = scratch() / "dp_val_one", two = scratch() / "dp_val_two";
  const CliResult a = sbgm_cli(args + " --out " + one.string());
  ASSERT_EQ(a.code, 0) << a.err;
  const CliResult b = sbgm_cli(args + " --nproc 2 --out " + two.string());
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("stopped early"), std::string::npos) << b.err;
  const Checkpoint x = load_checkpoint(one.string()), y = load_checkpoint(two.string());
  EXPECT_LT(x.state.step, 2000);
  EXPECT_EQ(y.state.step, x.state.step);
  EXPECT_EQ(y.state.best_step, x.state.best_step);
  // The first ten validations agree to the drift's order (1e-5 measured; bound 1e-3).
  auto val_losses = [](const std::string& log) {
    std::vector<double> v;
    std::stringstream in(log);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line) && v.size() < 10) v.push_back(std::stod(line.substr(line.rfind(',') + 1)));
    return v;
  };
  const std::vector<double> v1 = val_losses(slurp(one / "loss.csv")), v2 = val_losses(slurp(two / "loss.csv"));
  ASSERT_EQ(v1.size(), 10u);
  ASSERT_EQ(v2.size(), 10u);
  for (size_t i = 0; i < v1.size(); ++i) EXPECT_NEAR(v2[i] / v1[i], 1.0, 1e-3) << "validation " << i;
}

// The autograd path (a UNet), with the per-row random draws of augmentation (flips,
// dequantisation) split across the ranks too.
TEST(Distributed, TwoProcessesTrainAUNetLikeOne) {
  SBGM_REQUIRE_PROCESSES();
  const fs::path images = scratch() / "dp_images.npy";
  write_npy(images.string(), at::randint(0, 256, {48, 8, 8}, at::TensorOptions().dtype(at::kFloat)));
  const std::string args = "train --data " + images.string() +
                           " --data.image_range -1,1 --train.hflip true --train.dequantize true --model unet"
                           " --model.width 8 --model.depth 1 --model.channel_mult 1,2 --model.attention_res 4"
                           " --model.heads 2 --batch-size 16 --steps 6 --threads 1 --sample.n 4 --sample.steps 3";
  const fs::path one = scratch() / "dp_unet_one", two = scratch() / "dp_unet_two";
  const CliResult a = sbgm_cli(args + " --out " + one.string());
  ASSERT_EQ(a.code, 0) << a.err;
  const CliResult b = sbgm_cli(args + " --nproc 2 --out " + two.string());
  ASSERT_EQ(b.code, 0) << b.err;
  const Checkpoint x = load_checkpoint(one.string()), y = load_checkpoint(two.string());
  EXPECT_LT(max_relative_difference(y.state.params, x.state.params), 1e-5);
  EXPECT_LT(max_relative_difference(y.state.exp_avg_sq, x.state.exp_avg_sq), 1e-4);
}

// Sampling and likelihoods split their chunks over the ranks and give what one process gives.
TEST(Distributed, SamplesAndLikelihoodsDoNotDependOnTheNumberOfProcesses) {
  SBGM_REQUIRE_PROCESSES();
  const fs::path run = scratch() / "dp_sample_run";
  ASSERT_EQ(sbgm_cli(kMoons + " --steps 20 --out " + run.string()).code, 0);
  const std::string ck = " --checkpoint " + run.string() + " --threads 1";
  // Sampling: one chunk per 4M floats, so 2-D samples are one chunk: rank 1 idles but the
  // result must still come back whole; the image test below splits real chunks.
  const fs::path s1 = scratch() / "dp_s1.npy", s2 = scratch() / "dp_s2.npy";
  CliResult r = sbgm_cli("sample --n 300 --steps 20" + ck + " --out " + s1.string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = sbgm_cli("sample --n 300 --steps 20 --nproc 2" + ck + " --out " + s2.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(at::allclose(read_npy(s1.string()), read_npy(s2.string()), 1e-5, 1e-6));
  // Likelihood in chunks of 7 rows: 2 chunks on one rank, 1 on the other (20 rows).
  const fs::path points = scratch() / "dp_points.npy";
  write_npy(points.string(), at::randn({20, 2}, at::TensorOptions().dtype(at::kDouble)));
  // The ODE with either divergence, and the variational bound (Monte-Carlo draws per chunk).
  const std::vector<std::pair<std::string, std::string>> methods{
      {"exact", "--divergence exact"}, {"hutchinson", "--divergence hutchinson"}, {"bound", "--bound elbo-dsm --draws 5"}};
  for (const auto& [div, flags] : methods) {
    const fs::path l1 = scratch() / ("dp_l1_" + div + ".npy"), l2 = scratch() / ("dp_l2_" + div + ".npy");
    const std::string common = "loglik --chunk 7 " + flags + ck + " --data " + points.string();
    r = sbgm_cli(common + " --out " + l1.string());
    ASSERT_EQ(r.code, 0) << r.err;
    const CliResult r2 = sbgm_cli(common + " --nproc 2 --out " + l2.string());
    ASSERT_EQ(r2.code, 0) << r2.err;
    EXPECT_TRUE(at::allclose(read_npy(l1.string(), true), read_npy(l2.string(), true), 1e-6, 1e-6)) << div;
    // The summary (rank 0's) counts every rank's function evaluations.
    EXPECT_EQ(r.out, r2.out);
  }
  // Draws with their log-density: 2,500 rows in three likelihood chunks of 1,000, two on rank 0.
  const fs::path d1 = scratch() / "dp_d1.npy", d2 = scratch() / "dp_d2.npy";
  const fs::path q1 = scratch() / "dp_q1.npy", q2 = scratch() / "dp_q2.npy";
  const std::string draws = "sample --n 2500 --sampler ode --rtol 1e-3 --atol 1e-3" + ck;
  r = sbgm_cli(draws + " --out " + d1.string() + " --log-prob " + q1.string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = sbgm_cli(draws + " --nproc 2 --out " + d2.string() + " --log-prob " + q2.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(at::allclose(read_npy(d1.string()), read_npy(d2.string()), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(read_npy(q1.string(), true), read_npy(q2.string(), true), 1e-6, 1e-6));
  // Inpainting: 20 rows x 3 samples in 8 chunks of 8, 4 chunks per rank.
  const fs::path mask = scratch() / "dp_mask.npy", i1 = scratch() / "dp_i1.npy", i2 = scratch() / "dp_i2.npy";
  write_npy(mask.string(), at::tensor({1.0, 0.0}, at::kDouble));
  const std::string inpaint = "inpaint --n 3 --steps 10" + ck + " --data " + points.string() + " --mask " + mask.string();
  r = sbgm_cli(inpaint + " --out " + i1.string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = sbgm_cli(inpaint + " --nproc 2 --out " + i2.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(at::allclose(read_npy(i1.string(), true), read_npy(i2.string(), true), 1e-5, 1e-6));
}

TEST(Distributed, ImageSamplesSplitIntoChunksMatchOneProcess) {
  SBGM_REQUIRE_PROCESSES();
  const fs::path images = scratch() / "dp_sample_images.npy";
  write_npy(images.string(), at::randint(0, 256, {32, 8, 8}, at::TensorOptions().dtype(at::kFloat)));
  const fs::path run = scratch() / "dp_unet_sample_run";
  ASSERT_EQ(sbgm_cli("train --data " + images.string() +
                     " --data.image_range -1,1 --model unet --model.width 8 --model.depth 1 --model.channel_mult 1,2"
                     " --model.heads 2 --batch-size 8 --steps 2 --threads 1 --sample.n 4 --sample.steps 3 --out " +
                     run.string())
                .code,
            0);
  // 600 images in chunks of 256: ranks take chunks {0, 1} and {2}.
  const fs::path s1 = scratch() / "dp_img1.npy", s2 = scratch() / "dp_img2.npy";
  const std::string common = "sample --n 600 --steps 4 --threads 1 --checkpoint " + run.string();
  CliResult r = sbgm_cli(common + " --out " + s1.string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = sbgm_cli(common + " --nproc 2 --out " + s2.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor a = read_npy(s1.string()), b = read_npy(s2.string());
  ASSERT_EQ(a.sizes(), b.sizes());
  EXPECT_TRUE(at::allclose(a, b, 1e-4, 1e-4)) << (a - b).abs().max().item<double>();
}

TEST(Distributed, BadJobsGiveOneLine) {
  const fs::path run = scratch() / "dp_bad";
  expect_one_line_error(sbgm_cli(kMoons + " --steps 5 --nproc 0 --out " + run.string()), "--nproc");
  if (!Communicator::processes_supported()) {
    expect_one_line_error(sbgm_cli(kMoons + " --steps 5 --nproc 2 --out " + run.string()), "no Gloo process groups");
    return;
  }
  // Every process finds the same problem; only rank 0 says it.
  expect_one_line_error(sbgm_cli("train --dataset moons --batch-size 63 --steps 5 --nproc 2 --threads 1 --out " + run.string()),
                        "does not split evenly over 2 processes");
  {
    ScopedEnv env({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29400"}});
    expect_one_line_error(sbgm_cli(kMoons + " --steps 5 --out " + run.string()), "RANK=2");
    expect_one_line_error(sbgm_cli(kMoons + " --steps 5 --nproc 2 --out " + run.string()), "WORLD_SIZE is set");
  }
  expect_one_line_error(sbgm_cli(kMoons + " --steps 5 --run.timeout 0 --out " + run.string()), "run.timeout");
  EXPECT_FALSE(fs::exists(run / "checkpoint.safetensors"));
}

// A process that dies makes the job stop with a clear error at once (its peers' collectives
// fail when its connections close); --resume continues from the last checkpoint.
TEST(Distributed, ADeadProcessStopsTheJobAndResumeContinues) {
  SBGM_REQUIRE_PROCESSES();
  const fs::path run = scratch() / "dp_dies", err = scratch() / "dp_dies.err";
  const pid_t launcher = start_endless_job(run, err, {"--train.checkpoint_every", "10"});
  ASSERT_TRUE(wait_for_step(run, 30)) << slurp(err);
  const pid_t rank1 = child_with_rank(launcher, 1);
  ASSERT_GT(rank1, 0);
  ::kill(rank1, SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  const int code = wait_exit(launcher, 60);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1) << "the job hung after a process died";
  EXPECT_LT(took, 30);
  const std::string said = slurp(err);
  EXPECT_NE(said.find("process 1 of 2 was killed by signal 9"), std::string::npos) << said;
  EXPECT_NE(said.find("failed, another process died or stopped answering"), std::string::npos) << said;
  // The checkpoint rank 0 wrote last is whole and the job resumes from it.
  const int64_t saved = load_checkpoint(run.string()).state.step;
  EXPECT_GE(saved, 10);
  const CliResult resumed =
      sbgm_cli("train --out " + run.string() + " --resume --nproc 2 --steps " + std::to_string(saved + 12));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resuming " + run.string() + " from step " + std::to_string(saved)), std::string::npos)
      << resumed.err;
  EXPECT_EQ(load_checkpoint(run.string()).state.step, saved + 12);
}

// A process that stops answering (here: stopped by SIGSTOP) makes the others give up after
// run.timeout instead of hanging.
TEST(Distributed, AHungProcessTimesOut) {
  SBGM_REQUIRE_PROCESSES();
  const fs::path run = scratch() / "dp_hangs", err = scratch() / "dp_hangs.err";
  const pid_t launcher = start_endless_job(run, err, {"--run.timeout", "3"});
  ASSERT_TRUE(wait_for_step(run, 20)) << slurp(err);
  const pid_t rank1 = child_with_rank(launcher, 1);
  ASSERT_GT(rank1, 0);
  ::kill(rank1, SIGSTOP);
  const int code = wait_exit(launcher, 60);
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1) << "the job hung";
  const std::string said = slurp(err);
  EXPECT_NE(said.find("rank 0 of 2: all-reduce failed, another process died or stopped answering"), std::string::npos)
      << said;
}

// SIGTERM to the launcher reaches every process; they agree on a step, rank 0 saves, and the
// run resumes on a different number of processes.
TEST(Distributed, InterruptedJobSavesOnceAndResumesOnOneProcess) {
  SBGM_REQUIRE_PROCESSES();
  const fs::path run = scratch() / "dp_interrupted", err = scratch() / "dp_interrupted.err";
  fs::remove_all(run);  // a repeated run (--gtest_repeat) must not find the last one's loss log
  const pid_t launcher = start_endless_job(run, err, {});
  ASSERT_TRUE(wait_for_step(run, 20)) << slurp(err);
  ::kill(launcher, SIGTERM);
  EXPECT_EQ(wait_exit(launcher, 60), 130);
  const std::string said = slurp(err);
  const auto first = said.find("interrupted at step");
  ASSERT_NE(first, std::string::npos) << said;
  EXPECT_EQ(said.find("interrupted at step", first + 1), std::string::npos) << "said twice: " << said;
  const int64_t step = load_checkpoint(run.string()).state.step;
  EXPECT_GE(step, 20);
  const CliResult resumed = sbgm_cli("train --out " + run.string() + " --resume --steps " + std::to_string(step + 5));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(load_checkpoint(run.string()).state.step, step + 5);
}
