// The run config: TOML in, keys set one by one, TOML out, and every bad value rejected.
#include <gtest/gtest.h>

#include "sbgm/run/run_config.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;

TEST(RunConfig, TomlRoundTrip) {
  RunConfig c;
  c.merge_toml("[model]\ntype = \"resnet\"\nwidth = 64\n[sde]\ntype = \"ve\"\nsigma_max = 3.5\n[train]\nlr = 2e-4\n",
               "test.toml");
  EXPECT_EQ(c.model.kind, NetKind::ResNet);
  EXPECT_EQ(c.model.width, 64);
  EXPECT_EQ(c.sde.kind, SDEKind::VE);
  EXPECT_DOUBLE_EQ(c.sde.sigma_max, 3.5);
  EXPECT_DOUBLE_EQ(c.train.lr, 2e-4);
  RunConfig d;
  d.merge_toml(c.to_toml(), "written");
  EXPECT_EQ(d.to_toml(), c.to_toml());
  for (const auto& key : RunConfig::keys()) EXPECT_EQ(c.get(key.name), d.get(key.name)) << key.name;
}

TEST(RunConfig, RejectsUnknownKeysAndBadValues) {
  RunConfig c;
  EXPECT_THROW(c.merge_toml("[model]\nwidht = 3\n", "f.toml"), InvalidArgument);
  EXPECT_THROW(c.merge_toml("width = 3\n", "f.toml"), InvalidArgument);
  EXPECT_THROW(c.merge_toml("[model\n", "f.toml"), InvalidArgument);
  EXPECT_THROW(c.set("train.steps", "many"), InvalidArgument);
  EXPECT_THROW(c.set("train.steps", "1.5"), InvalidArgument);
  EXPECT_THROW(c.set("train.lr", "nan"), InvalidArgument);
  EXPECT_THROW(c.set("sde.type", "vpp"), InvalidArgument);
  EXPECT_THROW(c.set("no.such", "1"), InvalidArgument);
  c.set("train.steps", "1e4");
  EXPECT_EQ(c.train.steps, 10000);
}

TEST(RunConfig, ValidateRejectsImpossibleValues) {
  auto invalid = [](const std::string& key, const std::string& value) {
    RunConfig c;
    c.data.dataset = "ring8";
    c.set(key, value);
    EXPECT_THROW(c.validate(), InvalidArgument) << key << " = " << value;
  };
  invalid("train.steps", "0");
  invalid("train.batch_size", "-1");
  invalid("train.lr", "0");
  invalid("sde.beta_min", "30");
  invalid("sde.t_eps", "2");
  invalid("model.width", "0");
  invalid("sample.steps", "0");
  invalid("train.ema_decay", "1");
  invalid("data.file", "x.npy");  // both a dataset and a file
}
