// Errors name settings as {key}; what() spells the keys, and each front end words the same error
// with its own names (the CLI its flags, Python its keywords).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli_harness.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

TEST(Errors, SettingsAreNamedByKeyAndWordedByEachFrontEnd) {
  const InvalidArgument e("give ddim either {eta} or {lambda}, not both; {sde.beta_max} too");
  EXPECT_EQ(std::string(e.what()), "give ddim either eta or lambda, not both; sde.beta_max too");
  const auto flag = [](const std::string& key) { return "--" + key; };
  EXPECT_EQ(e.worded(flag), "give ddim either --eta or --lambda, not both; --sde.beta_max too");
  // Braces around anything but a key are text, and a message without keys is itself.
  const InvalidArgument text("header {\"a\": 1} and {1} and { x} and {unclosed");
  EXPECT_EQ(std::string(text.what()), "header {\"a\": 1} and {1} and { x} and {unclosed");
  EXPECT_EQ(text.worded(flag), text.what());
  EXPECT_EQ(InvalidArgument("").worded(flag), "");
}

TEST(Errors, TheCliNamesTheFlagsThatSetTheKeys) {
  // A request parameter by its flag, a key with a shortcut by the shortcut, the --gmm SDE keys
  // by the flags that set them there.
  const fs::path dir = scratch() / "errors_named";
  fs::create_directories(dir);
  const std::string gmm = (dir / "gmm.npz").string(), points = (dir / "points.npy").string();
  ASSERT_EQ(run_python("-c \"import numpy as np; np.savez('" + gmm +
                       "', weights=np.ones(1), means=np.zeros((1, 2)), covs=np.eye(2)[None])\""),
            0);
  write_npy(points, at::zeros({3, 2}, at::kDouble));
  const std::string out = " --out " + (dir / "never.npy").string();
  CliResult r = sbgm_cli("loglik --gmm " + gmm + " --data " + points + " --divergence hutchinson --probes 0" + out);
  expect_one_line_error(r, "--probes must be at least 1");
  r = sbgm_cli("sample --gmm " + gmm + " --n 5 --sde vp --beta-min=-1" + out);
  expect_one_line_error(r, "--beta-min must be positive");
  r = sbgm_cli("sample --gmm " + gmm + " --n 5 --sampler ddim --eta 0.5 --lambda 0.5" + out);
  expect_one_line_error(r, "give ddim either --eta or --lambda, not both");
  r = sbgm_cli("train --dataset moons --steps 10 --cond-dropout 0.2 --out " + (dir / "never_run").string());
  expect_one_line_error(r, "--cond-dropout needs conditions (--cond)");
  EXPECT_FALSE(fs::exists(dir / "never.npy"));
  EXPECT_FALSE(fs::exists(dir / "never_run"));
}
