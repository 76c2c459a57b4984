// A run's data preparation (no files) and its run directory (the files), apart from training.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "error_of.hpp"
#include "scratch_dir.hpp"
#include "sbgm/run/checkpoint.hpp"
#include "sbgm/run/run_directory.hpp"
#include "sbgm/run/training_data.hpp"
#include "sbgm/train/trainer.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

// 500 pairs: theta [500, 3] with unequal means and spreads, x [500, 2].
TrainingData pairs(double theta_scale = 1.0) {
  const at::Generator gen = make_generator(at::kCPU, 11);
  TrainingData rows;
  rows.data = (at::randn({500, 3}, gen, at::kDouble) * at::tensor({1.0, 2.0, 3.0}, at::kDouble) +
               at::tensor({0.0, 1.0, -1.0}, at::kDouble)) *
              theta_scale;
  rows.cond = at::randn({500, 2}, gen, at::kDouble);
  rows.data_name = "theta.npy";
  rows.cond_name = "x.npy";
  return rows;
}

RunConfig posterior_config() {
  RunConfig c;
  c.data.file = "theta.npy";
  c.data.cond = "x.npy";
  c.model.baseline = Baseline::None;
  c.train.validation_fraction = 0.1;
  c.threads = 1;
  return c;
}

int count_lines(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

}  // namespace

// The rows in the model's space are the data standardised; the moments kept are those of every
// row (before the split), and the split keeps every row exactly once.
TEST(PrepareTrainingData, ScalesMomentsAndSplitAgreeWithTheRows) {
  const TrainingData rows = pairs();
  const PreparedData d = prepare_training_data(config_for_rows(posterior_config(), rows), rows);
  ASSERT_EQ(d.data_shape, std::vector<int64_t>({3}));
  EXPECT_EQ(d.cond_dim, 2);
  ASSERT_TRUE(d.held_out.defined());
  EXPECT_EQ(d.held_out.size(0), 50);
  EXPECT_EQ(d.data.size(0), 450);
  EXPECT_EQ(d.held_out_cond.size(0), 50);
  EXPECT_EQ(d.cond.size(0), 450);

  const at::Tensor all = d.scaling.to_model(rows.data.to(at::kFloat)).to(at::kDouble);
  // Standardised: mean 0, spread 1 over all rows (the spread with divisor N).
  EXPECT_LT(all.mean(0).abs().max().item<double>(), 1e-5);
  const at::Tensor spread = all.std({0}, /*unbiased=*/false);
  EXPECT_NEAR(spread.min().item<double>(), 1.0, 1e-5);
  EXPECT_NEAR(spread.max().item<double>(), 1.0, 1e-5);
  // The moments are every row's, with the unbiased covariance.
  const at::Tensor mean = all.mean(0), centred = all - mean;
  EXPECT_TRUE(at::allclose(d.data_mean, mean, 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(d.data_cov, at::matmul(centred.t(), centred) / 499.0, 1e-6, 1e-6));
  // Held-out and training rows together are all rows, once each (compared as sorted row sums).
  const at::Tensor split = at::cat({d.held_out, d.data}).to(at::kDouble).sum(1);
  EXPECT_TRUE(at::allclose(std::get<0>(split.sort()), std::get<0>(all.sum(1).sort()), 1e-5, 1e-5));
  // The conditions of each row travel with it.
  const at::Tensor cond_all = d.cond_scaling.to_model(rows.cond.to(at::kFloat)).to(at::kDouble);
  const at::Tensor pair_sums = (at::cat({d.held_out, d.data}).to(at::kDouble).sum(1) +
                                at::cat({d.held_out_cond, d.cond}).to(at::kDouble).sum(1) * 1000.0);
  EXPECT_TRUE(at::allclose(std::get<0>(pair_sums.sort()), std::get<0>((all.sum(1) + cond_all.sum(1) * 1000.0).sort()),
                           1e-3, 1e-3));
  // The split is the seed's: the same again.
  const PreparedData again = prepare_training_data(config_for_rows(posterior_config(), rows), rows);
  EXPECT_TRUE(at::equal(again.held_out, d.held_out));
}

// Auto keys are settled by the rows: a posterior of 500 pairs and no validation fraction given.
TEST(PrepareTrainingData, SettlesAutoKeysByTheRows) {
  const TrainingData rows = pairs();
  RunConfig c = posterior_config();
  c.train.validation_fraction = -1.0;  // auto
  const PreparedData d = prepare_training_data(config_for_rows(c, rows), rows);
  EXPECT_GE(d.config.train.validation_fraction, 0.0);
  EXPECT_EQ(d.held_out.defined(), d.config.train.validation_fraction > 0);
}

TEST(PrepareTrainingData, RefusesMisalignedRowsNamingThem) {
  TrainingData rows = pairs();
  rows.cond = rows.cond.narrow(0, 0, 499);
  const RunConfig c = config_for_rows(posterior_config(), rows);
  EXPECT_EQ(error_of([&] { prepare_training_data(c, rows); }),
            "x.npy: 499 condition rows for 500 data rows (the rows must be aligned)");
  TrainingData none;
  EXPECT_EQ(error_of([&] { prepare_training_data(RunConfig(), none); }), "no training data");
}

// A resumed run keeps its checkpoint's scalings, and refuses other data or another width.
TEST(PrepareTrainingData, ChecksResumedRowsAgainstTheCheckpoint) {
  const TrainingData rows = pairs();
  const RunConfig c = config_for_rows(posterior_config(), rows);
  Checkpoint resumed;
  static_cast<ModelSpec&>(resumed) = prepare_training_data(c, rows);
  const PreparedData same = prepare_training_data(c, rows, &resumed);
  EXPECT_TRUE(at::equal(same.scaling.scale, resumed.scaling.scale));
  EXPECT_TRUE(at::equal(same.data_mean, resumed.data_mean));

  const TrainingData wider = pairs(2.0);
  EXPECT_EQ(error_of([&] { prepare_training_data(c, wider, &resumed); }),
            "the data differ from the ones the checkpoint was trained on (another mean or spread)");
  TrainingData other_width = pairs();
  other_width.cond = at::cat({other_width.cond, other_width.cond}, 1);
  EXPECT_EQ(error_of([&] { prepare_training_data(c, other_width, &resumed); }),
            "the conditions' width differs from the checkpoint's");
}

// The loss log keeps a resumed run's rows up to its checkpoint's step and drops the rest.
TEST(RunDirectory, LossLogKeepsRowsUpToTheResumedStep) {
  const std::string dir = scratch_dir("run_directory_log");
  {
    RunDirectory run(dir, {});
    run.start_loss_log(0);
    for (int64_t step = 1; step <= 5; ++step) {
      TrainProgress p;
      p.step = step;
      p.loss = 1.0 / static_cast<double>(step);
      run.log_loss(p);
    }
  }
  EXPECT_EQ(count_lines(dir + "/loss.csv"), 6);
  {
    RunDirectory run(dir, {});
    run.start_loss_log(3);
  }
  EXPECT_EQ(count_lines(dir + "/loss.csv"), 4);
  fs::remove_all(dir);
}

// One run holds a directory: a second one is refused while the first lives, and takes it after.
TEST(RunDirectory, IsHeldByOneRunAtATime) {
  const std::string dir = scratch_dir("run_directory_lock");
  {
    const RunDirectory first(dir, {});
    const std::string error = error_of([&] { RunDirectory second(dir, {}); });
    EXPECT_NE(error.find("another sbgm run"), std::string::npos) << error;
  }
  EXPECT_EQ(error_of([&] { RunDirectory again(dir, {}); }), "");
  fs::remove_all(dir);
}

// Adopting a candidate's files copies those that exist and leaves the rest.
TEST(RunDirectory, AdoptCopiesTheFilesThatExist) {
  const std::string dir = scratch_dir("run_directory_adopt"), from = dir + "_from";
  fs::create_directories(from);
  std::ofstream(from + "/config.toml") << "x = 1\n";
  const RunDirectory run(dir, {});
  run.adopt(from, {"config.toml", "loss.csv"});
  EXPECT_TRUE(fs::exists(dir + "/config.toml"));
  EXPECT_FALSE(fs::exists(dir + "/loss.csv"));
  EXPECT_EQ(count_lines(dir + "/config.toml"), 1);
  fs::remove_all(dir);
  fs::remove_all(from);
}
