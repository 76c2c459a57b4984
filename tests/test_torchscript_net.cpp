// Networks users bring (nets/torchscript_net.hpp): a TorchScript module is the network, its
// parameters the network's (shared, so training and device or dtype moves reach the module);
// modules that break the contract are refused in one line; a scripted MLP trains end to end from
// the CLI, and its checkpoint keeps the module (test_training.cpp: the ring-of-8 quality check).
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <filesystem>

#include "cli_harness.hpp"
#include "scratch_dir.hpp"
#include "scripted_mlp.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/nets/torchscript_net.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

std::string message_of(const std::string& script, std::vector<int64_t> shape, int64_t cond_dim) {
  try {
    TorchScriptNet net(script, shape, cond_dim);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

std::string with_forward(const std::string& source) {
  torch::jit::Module m("Broken");
  m.define(source);
  return sbgm_test::saved(m);
}

}  // namespace

TEST(TorchScriptNet, IsTheModuleAndSharesItsParameters) {
  torch::jit::Module module = sbgm_test::scripted_mlp(3, 2, 16, 2, 1);
  TorchScriptNet net(sbgm_test::saved(module), {3}, 2);
  torch::jit::Module reference = sbgm_test::scripted_mlp(3, 2, 16, 2, 1);
  EXPECT_EQ(net.parameters().size(), 6u);
  const at::Tensor x = at::randn({5, 3}), t = at::rand({5}), y = at::randn({5, 2});
  EXPECT_TRUE(at::allclose(net.forward(x, t, y), reference.forward({x, t, y}).toTensor(), 1e-6, 1e-6));

  // A change to a parameter (what the trainer and FlatParameters do) is the module's.
  {
    at::NoGradGuard no_grad;
    net.parameters().back().add_(1.0);
  }
  EXPECT_TRUE(at::allclose(net.forward(x, t, y), reference.forward({x, t, y}).toTensor() + 1.0, 1e-5, 1e-5));
  // Autograd reaches the parameters: the bias of the last layer gets the output's gradient.
  const auto grads = torch::autograd::grad({net.forward(x, t, y).sum()}, {net.parameters().back()});
  EXPECT_TRUE(at::allclose(grads[0], at::full({3}, 5.0)));
  // So does a move to float64.
  net.to(at::kDouble);
  EXPECT_EQ(net.forward(x.to(at::kDouble), t.to(at::kDouble), y.to(at::kDouble)).scalar_type(), at::kDouble);
}

TEST(TorchScriptNet, ModulesThatBreakTheContractAreRefusedInOneLine) {
  const auto one_line = [](const std::string& m) { return !m.empty() && m.find('\n') == std::string::npos; };
  std::string m = message_of("not a module at all", {3}, 0);
  EXPECT_TRUE(one_line(m) && m.find("not a TorchScript module") != std::string::npos) << m;
  m = message_of(with_forward("def forward(self, x: Tensor) -> Tensor:\n    return x\n"), {3}, 0);
  EXPECT_TRUE(one_line(m) && m.find("fails on forward(x, t, y) for x [2, 3]") != std::string::npos) << m;
  m = message_of(with_forward("def forward(self, x: Tensor, t: Tensor, y: Optional[Tensor]) -> Tensor:\n"
                              "    return x[:, :2]\n"),
                 {3}, 0);
  EXPECT_TRUE(one_line(m) && m.find("returns [2, 2] for x [2, 3]") != std::string::npos) << m;
  m = message_of(with_forward("def forward(self, x: Tensor, t: Tensor, y: Optional[Tensor]) -> int:\n    return 1\n"),
                 {3}, 0);
  EXPECT_TRUE(one_line(m) && m.find("not a tensor") != std::string::npos) << m;
  // A condition the module cannot take.
  torch::jit::Module unconditional = sbgm_test::scripted_mlp(3, 0, 8, 1, 1);
  m = message_of(sbgm_test::saved(unconditional), {3}, 4);
  EXPECT_TRUE(one_line(m) && m.find(", y [2, 4]:") != std::string::npos) << m;
}

TEST(Cli, TrainsSamplesAndScoresWithAScriptedNetwork) {
  const fs::path dir = scratch_dir("torchscript");
  fs::create_directories(dir);
  torch::jit::Module module = sbgm_test::scripted_mlp(2, 0, 32, 2, 3);
  sbgm_test::save_to(module, (dir / "net.pt").string());
  const std::string run = (dir / "run").string();
  CliResult r = sbgm_cli("train --dataset moons --steps 200 --model torchscript --model.file " + (dir / "net.pt").string() +
                         " --out " + run);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(slurp(fs::path(run) / "config.toml").find("type = \"torchscript\""), std::string::npos);
  // The checkpoint keeps the module: the file is no longer needed.
  fs::remove(dir / "net.pt");
  r = sbgm_cli("sample --checkpoint " + run + " --n 50 --out " + (dir / "s.npy").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy((dir / "s.npy").string()).sizes(), (at::IntArrayRef{50, 2}));
  r = sbgm_cli("loglik --checkpoint " + run + " --data " + (dir / "s.npy").string() + " --out " + (dir / "lp.npy").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(at::isfinite(read_npy((dir / "lp.npy").string())).all().item<bool>());
  // A missing file and a module that breaks the contract: one line, nothing written.
  r = sbgm_cli("train --dataset moons --steps 10 --model torchscript --model.file " + (dir / "none.pt").string() +
               " --out " + (dir / "bad").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("model.file"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "bad"));
  fs::remove_all(dir);
}
