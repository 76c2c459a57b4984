// model.baseline = auto: a posterior run trains the networks of model.candidates — by default the
// network with the linear-Gaussian fit and without it — and keeps the one with the lowest held-out
// loss (run/training_run.cpp).

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_harness.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// theta ~ N(0, I_2), x = theta + 0.5 eps: p(theta | x) is Gaussian, the model class of the fit.
fs::path linear_gaussian_pairs() {
  const fs::path dir = scratch() / "choose_baseline";
  fs::create_directories(dir);
  at::Generator gen = make_generator(at::kCPU, 11);
  const at::Tensor theta = at::randn({3000, 2}, gen, at::kDouble);
  write_npy((dir / "theta.npy").string(), theta);
  write_npy((dir / "x.npy").string(), theta + 0.5 * at::randn({3000, 2}, gen, at::kDouble));
  return dir;
}

const std::string kShort = " --steps 1500 --model.width 64 --model.depth 2 --threads 1";

}  // namespace

TEST(CliChooseBaseline, APosteriorRunKeepsTheCandidateWithTheLowerHeldOutLoss) {
  const fs::path dir = linear_gaussian_pairs(), run = dir / "run";
  const std::string data = " --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string();
  const CliResult r = sbgm_cli("train" + data + " --out " + run.string() + kShort);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* name : {"none", "gaussian"}) EXPECT_TRUE(fs::exists(run / "candidates" / name / "checkpoint.safetensors")) << name;
  // candidates.csv: both, with their best held-out losses, the lower one chosen.
  std::ifstream csv(run / "candidates.csv");
  std::string line, chosen;
  std::getline(csv, line);
  EXPECT_EQ(line, "candidate,model.type,best_held_out_loss,best_step,steps,chosen");
  double lowest = 1e300, chosen_loss = 0;
  int rows = 0;
  while (std::getline(csv, line)) {
    std::stringstream row(line);
    std::string name, network, loss, best_step, steps, flag;
    std::getline(row, name, ',');
    std::getline(row, network, ',');
    EXPECT_EQ(network, "mlp");
    std::getline(row, loss, ',');
    std::getline(row, best_step, ',');
    std::getline(row, steps, ',');
    std::getline(row, flag, ',');
    lowest = std::min(lowest, std::stod(loss));
    if (flag == "1") {
      chosen = name;
      chosen_loss = std::stod(loss);
    }
    ++rows;
  }
  EXPECT_EQ(rows, 2);
  EXPECT_EQ(chosen_loss, lowest);
  // On a linear-Gaussian posterior the fit is exact: its candidate wins.
  EXPECT_EQ(chosen, "gaussian");
  // The run's files are the chosen candidate's, and config.toml records the choice.
  EXPECT_EQ(file_bytes(run / "checkpoint.safetensors"), file_bytes(run / "candidates" / chosen / "checkpoint.safetensors"));
  EXPECT_NE(file_bytes(run / "config.toml").find("baseline = \"" + chosen + "\""), std::string::npos);
  EXPECT_NE(file_bytes(run / "config.toml").find("candidates = \"none,gaussian\""), std::string::npos);
  EXPECT_NE(r.err.find("model.candidates: kept " + chosen), std::string::npos) << r.err;
  const CliResult s = sbgm_cli("sample --checkpoint " + run.string() + " --cond " + (dir / "x.npy").string() +
                               " --n 10 --out " + (dir / "post.npy").string());
  ASSERT_EQ(s.code, 0) << s.err;

  // A run stopped while training its candidates has only theirs: --resume finds the config
  // there and finishes the choice.
  fs::remove(run / "checkpoint.safetensors");
  const CliResult again = sbgm_cli("train --out " + run.string() + " --resume --threads 1");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(file_bytes(run / "checkpoint.safetensors"), file_bytes(run / "candidates" / chosen / "checkpoint.safetensors"));

  // A baseline given, an unconditional run: no candidates.
  const CliResult given = sbgm_cli("train" + data + " --out " + (dir / "given").string() + kShort + " --model.baseline none");
  ASSERT_EQ(given.code, 0) << given.err;
  EXPECT_FALSE(fs::exists(dir / "given" / "candidates"));
  const CliResult plain = sbgm_cli("train --data " + (dir / "theta.npy").string() + " --out " + (dir / "plain").string() +
                                   " --steps 200 --model.width 16 --threads 1");
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_FALSE(fs::exists(dir / "plain" / "candidates"));
}

// model.candidates names the networks: the transformer beside the MLP here, trained in that
// order whatever the list's, each in its own directory, with the network in candidates.csv.
TEST(CliChooseBaseline, TheCandidatesListNamesTheNetworks) {
  const fs::path dir = linear_gaussian_pairs(), run = dir / "listed";
  const std::string data = " --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string();
  const std::string train = "train" + data + " --steps 300 --model.width 32 --model.depth 2 --threads 1";
  const CliResult r = sbgm_cli(train + " --out " + run.string() + " --model.candidates transformer,none");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(run / "candidates" / "gaussian"));
  EXPECT_LT(r.err.find("training none"), r.err.find("training transformer")) << r.err;
  std::ifstream csv(run / "candidates.csv");
  std::string header, none_row, transformer_row;
  std::getline(csv, header);
  std::getline(csv, none_row);
  std::getline(csv, transformer_row);
  EXPECT_EQ(none_row.rfind("none,mlp,", 0), 0u) << none_row;
  EXPECT_EQ(transformer_row.rfind("transformer,transformer,", 0), 0u) << transformer_row;
  // The transformer candidate is the small one, whatever model.width says for the MLP.
  const std::string config = file_bytes(run / "candidates" / "transformer" / "config.toml");
  EXPECT_NE(config.find("type = \"transformer\""), std::string::npos) << config;
  EXPECT_NE(config.find("width = 32"), std::string::npos) << config;
  EXPECT_NE(config.find("candidates = \"none,transformer\""), std::string::npos) << config;
  const bool transformer_kept = transformer_row.back() == '1';
  EXPECT_NE(transformer_kept, none_row.back() == '1');
  EXPECT_EQ(file_bytes(run / "checkpoint.safetensors"),
            file_bytes(run / "candidates" / (transformer_kept ? "transformer" : "none") / "checkpoint.safetensors"));

  // Stopped while training the transformer: --resume finds the run's config in none's directory.
  fs::remove(run / "checkpoint.safetensors");
  fs::remove(run / "candidates" / "transformer" / "checkpoint.safetensors");
  const CliResult again = sbgm_cli("train --out " + run.string() + " --resume --threads 1");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(file_bytes(run / "candidates" / "transformer" / "config.toml").find("width = 32"), std::string::npos);
  EXPECT_TRUE(fs::exists(run / "checkpoint.safetensors"));

  // Parameters in a box: the bounds the rows show are said once, not by every candidate.
  at::Generator gen = make_generator(at::kCPU, 12);
  const at::Tensor theta = at::rand({2000, 2}, gen, at::kDouble) * 2 - 1;
  write_npy((dir / "box_theta.npy").string(), theta);
  write_npy((dir / "box_x.npy").string(), theta + 0.3 * at::randn({2000, 2}, gen, at::kDouble));
  const CliResult box = sbgm_cli("train --data " + (dir / "box_theta.npy").string() + " --cond " +
                                 (dir / "box_x.npy").string() + " --out " + (dir / "box").string() +
                                 " --steps 100 --model.width 16 --model.depth 1 --threads 1");
  ASSERT_EQ(box.code, 0) << box.err;
  const size_t first = box.err.find("data.bounds:");
  ASSERT_NE(first, std::string::npos) << box.err;
  EXPECT_EQ(box.err.find("data.bounds:", first + 1), std::string::npos) << box.err;
  EXPECT_TRUE(fs::exists(dir / "box" / "candidates" / "gaussian" / "checkpoint.safetensors"));

  // Names that are no candidate: one line, nothing written.
  for (const char* bad : {"none,mlp", "none,none", "\"\""}) {
    const fs::path out = dir / "bad";
    const CliResult b = sbgm_cli(train + " --out " + out.string() + " --model.candidates " + bad);
    expect_one_line_error(b, "model.candidates");
    EXPECT_FALSE(fs::exists(out)) << bad;
  }
}

// A run an earlier version stopped while it trained its candidates saved a config that does not
// name the keys added since (data.cond_set, data.transform): --resume reads them as what they were
// before they existed, so the run goes on as it was asked and is not settled anew — here the
// log-normal θ that today's defaults would model as their log.
TEST(CliChooseBaseline, ARunStoppedByAnEarlierVersionResumesAsItWasAsked) {
  const fs::path dir = scratch() / "choose_baseline_earlier", run = dir / "run";
  fs::create_directories(dir);
  at::Generator gen = make_generator(at::kCPU, 13);
  const at::Tensor log_theta = 0.5 * at::randn({2000, 2}, gen, at::kDouble);
  write_npy((dir / "theta.npy").string(), at::exp(log_theta));
  write_npy((dir / "x.npy").string(), log_theta + 0.3 * at::randn({2000, 2}, gen, at::kDouble));
  const std::string data = " --data " + (dir / "theta.npy").string() + " --cond " + (dir / "x.npy").string();
  const CliResult r = sbgm_cli("train" + data + " --out " + run.string() +
                               " --steps 200 --model.width 16 --model.depth 1 --threads 1 --data.transform none --data.cond_set 0");
  ASSERT_EQ(r.code, 0) << r.err;
  // What the earlier version left: the asked config without the two keys, the first candidate
  // done, the second and the run's own checkpoint not yet written.
  const fs::path asked = run / "candidates" / "config.toml";
  std::stringstream kept;
  std::ifstream in(asked);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("transform =", 0) != 0 && line.rfind("cond_set =", 0) != 0) kept << line << "\n";
  in.close();
  std::ofstream(asked) << kept.str();
  ASSERT_EQ(file_bytes(asked).find("transform = \"none\""), std::string::npos);
  fs::remove(run / "checkpoint.safetensors");
  fs::remove(run / "candidates" / "gaussian" / "checkpoint.safetensors");

  const CliResult again = sbgm_cli("train --out " + run.string() + " --resume --threads 1");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.err.find("data.transform:"), std::string::npos) << again.err;
  for (const char* name : {"none", "gaussian"}) {
    const std::string config = file_bytes(run / "candidates" / name / "config.toml");
    EXPECT_NE(config.find("\ntransform = \"none\""), std::string::npos) << name << "\n" << config;
    EXPECT_NE(config.find("\ncond_set = 0"), std::string::npos) << name << "\n" << config;
  }
  EXPECT_TRUE(fs::exists(run / "checkpoint.safetensors"));
}
