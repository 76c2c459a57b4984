// The loss, its gradient, the optimiser, and whole training runs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "error_of.hpp"
#include "scratch_dir.hpp"
#include "scripted_mlp.hpp"
#include "sbgm/data/toy.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/run/checkpoint.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/training_run.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/dsm_loss.hpp"
#include "sbgm/train/optimizer.hpp"
#include "sbgm/train/trainer.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

RunConfig small_run(const std::string& dataset, int64_t steps) {
  RunConfig c;
  c.data.dataset = dataset;
  c.data.size = 2000;
  c.model.width = 32;
  c.model.depth = 2;
  c.train.steps = steps;
  c.train.batch_size = 64;
  c.train.log_every = 10;
  c.train.checkpoint_every = 0;
  c.sample.n = 200;
  c.sample.steps = 20;
  c.threads = 1;
  return c;
}

}  // namespace

// d loss / d theta from autograd against central finite differences, in float64.
TEST(DSMLoss, GradientMatchesFiniteDifferences) {
  for (auto output : {Parameterization::Score, Parameterization::Noise}) {
    for (auto weighting : {LossWeighting::Sigma2, LossWeighting::Likelihood}) {
      NetConfig nc;
      nc.width = 8;
      nc.depth = 2;
      nc.activation = Activation::Tanh;
      nc.output = output;
      torch::manual_seed(0);
      auto net = make_score_net(nc, {3});
      net->to(at::kDouble);
      std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
      at::Generator gen = make_generator(at::kCPU, 1);
      const auto dbl = at::TensorOptions().dtype(at::kDouble);
      const at::Tensor x0 = at::normal(0.0, 1.0, {5, 3}, gen, dbl);
      const at::Tensor t = at::rand({5}, gen, dbl) * 0.9 + 0.05;
      const at::Tensor z = at::normal(0.0, 1.0, {5, 3}, gen, dbl);
      auto loss_value = [&] { return dsm_loss(*net, output, *sde, weighting, x0, at::Tensor(), t, z); };
      at::Tensor loss = loss_value();
      auto params = net->parameters();
      const auto grads = torch::autograd::grad({loss}, params);
      at::NoGradGuard no_grad;
      for (size_t i = 0; i < params.size(); ++i) {
        at::Tensor flat = params[i].view({-1});
        for (int64_t j = 0; j < std::min<int64_t>(flat.numel(), 4); ++j) {
          const double saved = flat[j].item<double>(), h = 1e-6;
          flat[j].fill_(saved + h);
          const double up = loss_value().item<double>();
          flat[j].fill_(saved - h);
          const double down = loss_value().item<double>();
          flat[j].fill_(saved);
          const double fd = (up - down) / (2 * h);
          EXPECT_NEAR(grads[i].view({-1})[j].item<double>(), fd, 1e-6 * (1 + std::abs(fd)))
              << "param " << i << " entry " << j;
        }
      }
    }
  }
}

TEST(TrainConfig, LearningRateScheduleWarmsUpAndDecays) {
  TrainConfig c;
  c.steps = 1000;
  c.lr = 1e-3;
  c.warmup_steps = 100;
  c.schedule = LRSchedule::Cosine;
  c.min_lr_ratio = 0.1;
  EXPECT_NEAR(c.lr_at(0), 1e-5, 1e-12);
  EXPECT_NEAR(c.lr_at(99), 1e-3, 1e-12);
  EXPECT_NEAR(c.lr_at(100), 1e-3, 1e-12);
  EXPECT_NEAR(c.lr_at(550), 1e-3 * (0.1 + 0.9 * 0.5), 1e-9);
  EXPECT_NEAR(c.lr_at(1000), 1e-4, 1e-12);
}

// The fused step equals the textbook Adam/AdamW update.
TEST(FusedAdam, MatchesReferenceUpdate) {
  for (double wd : {0.0, 0.1}) {
    AdamConfig ac;
    ac.weight_decay = wd;
    at::Tensor p = at::randn({1000});
    at::Tensor ref = p.clone().to(at::kDouble), m = at::zeros_like(ref), v = at::zeros_like(ref);
    FusedAdam adam(p, ac);
    for (int step = 1; step <= 5; ++step) {
      const at::Tensor g = at::randn({1000});
      adam.step(p, g, 0.01);
      const at::Tensor gd = g.to(at::kDouble);
      m = 0.9 * m + 0.1 * gd;
      v = 0.999 * v + 0.001 * gd * gd;
      const at::Tensor mhat = m / (1 - std::pow(0.9, step)), vhat = v / (1 - std::pow(0.999, step));
      ref = ref * (1 - 0.01 * wd) - 0.01 * mhat / (at::sqrt(vhat) + 1e-8);
    }
    EXPECT_TRUE(at::allclose(p.to(at::kDouble), ref, 1e-5, 1e-6));
  }
}

static std::vector<std::string> slurp_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Interrupting at step 30 of 60 and resuming ends with exactly the weights of an uninterrupted run.
static void expect_resume_equals_uninterrupted(const RunConfig& c, const std::string& name) {
  const std::string full = scratch_dir(name + "_full"), part = scratch_dir(name + "_part");
  train_run(c, full, false);
  std::atomic<bool> stop{false};
  TrainRunCallbacks cb;
  cb.on_progress = [&](const TrainProgress& p) {
    if (p.step == 30) stop = true;
  };
  const TrainRunResult r = train_run(c, part, false, cb, &stop);
  ASSERT_TRUE(r.interrupted);
  EXPECT_EQ(load_checkpoint(part).state.step, 30);
  train_run(resume_config(part), part, true);
  const Checkpoint a = load_checkpoint(full), b = load_checkpoint(part);
  EXPECT_EQ(b.state.step, 60);
  EXPECT_TRUE(at::equal(a.state.params, b.state.params));
  EXPECT_TRUE(at::equal(a.state.ema, b.state.ema));
  EXPECT_EQ(a.state.best_ema.defined(), b.state.best_ema.defined());
  if (a.state.best_ema.defined()) {
    EXPECT_TRUE(at::equal(a.state.best_ema, b.state.best_ema));
    EXPECT_EQ(a.state.best_step, b.state.best_step);
    EXPECT_EQ(a.state.since_best, b.state.since_best);
    EXPECT_EQ(slurp_lines(full + "/loss.csv"), slurp_lines(part + "/loss.csv"));
  }
  fs::remove_all(full);
  fs::remove_all(part);
}

TEST(TrainingRun, ResumeEqualsUninterrupted) {
  RunConfig c = small_run("moons", 60);
  c.train.batch_size = 128;  // 60 steps over 300 rows: many epochs, each with its own order
  c.data.size = 300;
  expect_resume_equals_uninterrupted(c, "resume");
}

// Dropout's masks come from the trainer's generator, which the checkpoint keeps.
TEST(TrainingRun, DropoutResumeEqualsUninterrupted) {
  RunConfig c = small_run("moons", 60);
  c.model.dropout = 0.2;
  c.data.size = 300;
  expect_resume_equals_uninterrupted(c, "dropout_resume");
}

// The same for a conditional run with condition dropout (the dropout draws are resumed too).
TEST(TrainingRun, ConditionalResumeEqualsUninterrupted) {
  const std::string dir = scratch_dir("cond_files");
  fs::create_directories(dir);
  at::Generator gen = make_generator(at::kCPU, 3);
  write_npy(dir + "/x.npy", at::randn({300, 2}, gen));
  write_npy(dir + "/y.npy", at::randn({300, 3}, gen));
  RunConfig c = small_run("moons", 60);
  c.data.dataset.clear();
  c.data.file = dir + "/x.npy";
  c.data.cond = dir + "/y.npy";
  c.train.cond_dropout = 0.3;
  c.train.batch_size = 128;
  expect_resume_equals_uninterrupted(c, "cond_resume");
  fs::remove_all(dir);
}

// With held-out rows the best weights, the validation bookkeeping and the log resume too.
TEST(TrainingRun, ValidatedResumeEqualsUninterrupted) {
  RunConfig c = small_run("moons", 60);
  c.data.size = 400;
  c.train.validation_fraction = 0.2;
  c.train.patience = 50;
  expect_resume_equals_uninterrupted(c, "val_resume");
}

namespace {

struct LogRow {
  int64_t step;
  double val_loss;
};

// The rows of loss.csv that carry a held-out loss.
std::vector<LogRow> validation_rows(const std::string& run_dir) {
  std::vector<LogRow> rows;
  const auto lines = slurp_lines(run_dir + "/loss.csv");
  EXPECT_EQ(lines.at(0), "step,loss,lr,val_loss");
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    const std::string val = l.substr(l.rfind(',') + 1);
    if (!val.empty()) rows.push_back({std::stoll(l.substr(0, l.find(','))), std::stod(val)});
  }
  return rows;
}

at::Tensor flat_weights(const Model& m) {
  std::vector<at::Tensor> w;
  for (const auto& p : m.net->parameters()) w.push_back(p.detach().reshape({-1}));
  return at::cat(w);
}

}  // namespace

// Held-out rows: their loss is logged at every log step, the checkpoint keeps the EMA weights of
// the best one, and the model loaded from the run is those weights.
TEST(Validation, HeldOutLossIsLoggedAndTheBestWeightsAreTheModel) {
  const std::string dir = scratch_dir("validation");
  RunConfig c = small_run("moons", 120);
  c.train.validation_fraction = 0.2;
  c.train.log_every = 20;
  train_run(c, dir, false);
  const std::vector<LogRow> rows = validation_rows(dir);
  ASSERT_EQ(rows.size(), 6u);
  const Checkpoint ck = load_checkpoint(dir);
  ASSERT_TRUE(ck.state.best_ema.defined());
  const auto best = std::min_element(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.val_loss < b.val_loss; });
  EXPECT_EQ(ck.state.best_step, best->step);
  EXPECT_NEAR(ck.state.best_loss, best->val_loss, 1e-5 * std::abs(best->val_loss));
  EXPECT_TRUE(at::equal(flat_weights(load_model(dir)), ck.state.best_ema));
  EXPECT_TRUE(at::equal(flat_weights(load_model(dir, false)), ck.state.params));
  fs::remove_all(dir);
}

// A small data set whose held-out loss stops improving well within 4000 steps, with patience 3.
RunConfig overfitting_run() {
  RunConfig c = small_run("moons", 4000);
  c.data.size = 120;
  c.model.width = 128;
  c.model.depth = 3;
  c.train.lr = 3e-3;
  c.train.validation_fraction = 0.25;
  c.train.patience = 3;
  return c;
}

// With patience P training stops P validations after the best one, and says so in the
// checkpoint; on a small data set the held-out loss stops improving well within the budget.
TEST(Validation, PatienceStopsTrainingAfterTheBest) {
  const std::string dir = scratch_dir("patience");
  RunConfig c = overfitting_run();
  c.train.log_every = 25;
  const TrainRunResult r = train_run(c, dir, false);
  EXPECT_FALSE(r.interrupted);
  EXPECT_LT(r.step, 4000);
  const Checkpoint ck = load_checkpoint(dir);
  EXPECT_EQ(ck.state.step, r.step);
  EXPECT_EQ(ck.state.since_best, 3);
  EXPECT_EQ(ck.state.step, ck.state.best_step + 3 * 25);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "samples.npy"));
  fs::remove_all(dir);
}

// Validations on their own schedule (train.validate_every, e.g. once an epoch): the log shows the
// latest, and the patience counts validations, not log steps.
TEST(Validation, ValidationIntervalIsIndependentOfTheLog) {
  const std::string dir = scratch_dir("validate_every");
  RunConfig c = overfitting_run();
  c.train.log_every = 20;
  c.train.validate_every = 7;
  const TrainRunResult r = train_run(c, dir, false);
  EXPECT_LT(r.step, 4000);
  const Checkpoint ck = load_checkpoint(dir);
  EXPECT_EQ(ck.state.best_step % 7, 0);
  EXPECT_EQ(ck.state.step, ck.state.best_step + 3 * 7);
  // Every logged held-out loss is one measured at a multiple of 7 since the previous row.
  for (const LogRow& row : validation_rows(dir)) EXPECT_TRUE(row.step % 20 == 0 || row.step == r.step) << row.step;
  fs::remove_all(dir);
}

TEST(TrainingRun, SameSeedSameWeights) {
  const std::string a = scratch_dir("seed_a"), b = scratch_dir("seed_b");
  const RunConfig c = small_run("swissroll", 20);
  train_run(c, a, false);
  train_run(c, b, false);
  EXPECT_TRUE(at::equal(load_checkpoint(a).state.params, load_checkpoint(b).state.params));
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(TrainingRun, WritesEverythingARunPromises) {
  const std::string dir = scratch_dir("files");
  train_run(small_run("bimodal1d", 20), dir, false);
  for (const char* f : {"checkpoint.safetensors", "config.toml", "loss.csv", "loss.png", "samples.npy", "samples.png"})
    EXPECT_TRUE(fs::exists(fs::path(dir) / f)) << f;
  EXPECT_EQ(read_npy(dir + "/samples.npy").sizes(), (std::vector<int64_t>{200, 1}));
  const Model m = load_model(dir);
  EXPECT_EQ(m.data_shape, std::vector<int64_t>{1});
  EXPECT_EQ(m.step, 20);
  fs::remove_all(dir);
}

// End to end: a fixed budget on the ring of 8 Gaussians covers every mode with its share, and
// the samples' mean log-density under the true mixture is close to that of true samples — for a
// score model sampled by Euler-Maruyama and a flow-matching model sampled by the ODE (the defaults),
// and for a network the user brings (a TorchScript MLP of the same size) in place of the built-in one.
namespace {
void expect_ring8_covered(const std::string& objective, std::shared_ptr<const std::string> script = nullptr) {
  const std::string dir = scratch_dir("ring8_" + objective + (script ? "_script" : ""));
  RunConfig c;
  c.data.dataset = "ring8";
  c.set("model.objective", objective);
  if (script) {
    c.model.kind = NetKind::TorchScript;
    c.model.script = std::move(script);
  }
  c.model.width = 128;
  c.model.depth = 3;
  c.train.steps = 4000;
  c.train.batch_size = 256;
  c.train.lr = 2e-3;
  c.train.ema_decay = 0.995;
  c.train.log_every = 500;
  c.train.checkpoint_every = 0;
  c.sample.n = 4000;
  if (objective == "score") c.sample.steps = 500;
  c.threads = 2;
  train_run(c, dir, false);
  const at::Tensor x = read_npy(dir + "/samples.npy").to(at::kDouble);
  const GaussianMixture ring = *toy_dataset_mixture("ring8");
  const at::Tensor shares = at::bincount(ring.responsibilities(x).argmax(1), {}, 8).to(at::kDouble) / x.size(0);
  for (int k = 0; k < 8; ++k) EXPECT_NEAR(shares[k].item<double>(), 0.125, 0.03) << objective << " mode " << k;
  const double model_lp = ring.log_prob(x).mean().item<double>();
  const double true_lp = ring.log_prob(ring.sample(20000, make_generator(at::kCPU, 1)).to(at::kDouble)).mean().item<double>();
  EXPECT_GT(model_lp, true_lp - 0.4) << objective << ", true samples: " << true_lp;
  fs::remove_all(dir);
}
}  // namespace

TEST(TrainingRun, Ring8SamplesCoverEveryMode) { expect_ring8_covered("score"); }
TEST(TrainingRun, FlowMatchingRing8SamplesCoverEveryMode) { expect_ring8_covered("flow"); }
TEST(TrainingRun, ScriptedNetworkRing8SamplesCoverEveryMode) {
  torch::jit::Module mlp = sbgm_test::scripted_mlp(2, 0, 128, 3, 0);
  expect_ring8_covered("score", std::make_shared<const std::string>(sbgm_test::saved(mlp)));
}

// train.skip_nonfinite: one NaN row among 256 spoils exactly one batch of 64 in every epoch; such a
// step changes nothing (weights, Adam's moments, EMA) and is counted, the others train, and the
// run ends with finite weights and loss. Without the option the same data makes the loss NaN.
TEST(Training, SkippedStepsPassOverBatchesThatAreNotFinite) {
  at::Tensor data = make_toy_dataset("moons", 256, 0);
  data[17].fill_(std::numeric_limits<float>::quiet_NaN());
  NetConfig nc;
  nc.width = 16;
  nc.depth = 2;
  TrainConfig tc;
  tc.steps = 40;  // ten epochs of four batches
  tc.batch_size = 64;
  tc.log_every = 20;
  for (const bool skip : {true, false}) {
    tc.skip_nonfinite = skip;
    Trainer trainer(make_score_net(nc, {2}), nullptr, make_sde(SDEConfig{}), nc.output, tc, data);
    int64_t skipped = 0;
    if (skip) {
      const TrainState start = trainer.state();
      for (int i = 0; i < 4; ++i) {  // the first epoch, step by step
        const TrainState before = trainer.state();
        if (trainer.step().defined()) continue;
        ++skipped;
        const TrainState after = trainer.state();
        EXPECT_TRUE(at::equal(before.params, after.params));
        EXPECT_TRUE(at::equal(before.ema, after.ema));
        EXPECT_TRUE(at::equal(before.exp_avg_sq, after.exp_avg_sq));
        EXPECT_EQ(after.step, before.step + 1);
      }
      EXPECT_EQ(skipped, 1);
      EXPECT_FALSE(at::equal(start.params, trainer.state().params));
    }
    std::vector<double> losses;
    TrainCallbacks cb;
    cb.on_progress = [&](const TrainProgress& p) {
      skipped += p.skipped;
      losses.push_back(p.loss);
    };
    trainer.run(cb);
    ASSERT_FALSE(losses.empty());
    const TrainState end = trainer.state();
    EXPECT_EQ(end.step, 40);
    if (skip) {
      EXPECT_EQ(skipped, 10);
      for (const double l : losses) EXPECT_TRUE(std::isfinite(l)) << l;
      EXPECT_TRUE(at::isfinite(end.params).all().item<bool>());
      EXPECT_TRUE(at::isfinite(end.ema).all().item<bool>());
    } else {
      EXPECT_EQ(skipped, 0);
      EXPECT_FALSE(std::isfinite(losses.back()));
      EXPECT_FALSE(at::isfinite(end.params).all().item<bool>());
    }
  }
}

// The MLP's manual backward gives autograd's gradients, for every activation, parameterisation
// (velocity: flow matching on the linear path, unweighted) and weighting, and with a condition input.
TEST(DSMLoss, ManualBackwardMatchesAutograd) {
  for (auto act : {Activation::ReLU, Activation::SiLU, Activation::GELU, Activation::Tanh})
    for (auto output : {Parameterization::Score, Parameterization::Noise, Parameterization::Velocity})
      for (auto weighting : {LossWeighting::Sigma2, LossWeighting::Likelihood}) {
        const bool flow = output == Parameterization::Velocity;
        if (flow && weighting != LossWeighting::Sigma2) continue;
        NetConfig nc;
        nc.width = 16;
        nc.depth = 3;
        nc.activation = act;
        nc.output = output;
        torch::manual_seed(0);
        auto net = make_score_net(nc, {3}, /*cond_dim=*/2);
        net->to(at::kDouble);
        ASSERT_TRUE(net->supports_manual_backward());
        SDEConfig sc;
        if (flow) sc.kind = SDEKind::Linear;
        std::shared_ptr<const SDE> sde = make_sde(sc);
        at::Generator gen = make_generator(at::kCPU, 2);
        const auto dbl = at::TensorOptions().dtype(at::kDouble);
        const at::Tensor x0 = at::normal(0.0, 1.0, {6, 3}, gen, dbl), y = at::normal(0.0, 1.0, {6, 2}, gen, dbl);
        const at::Tensor t = at::rand({6}, gen, dbl) * 0.9 + 0.05, z = at::normal(0.0, 1.0, {6, 3}, gen, dbl);
        const at::Tensor loss = dsm_loss(*net, output, *sde, weighting, x0, y, t, z);
        const auto params = net->parameters();
        const auto expected = torch::autograd::grad({loss}, params);
        const DSMManual m = dsm_loss_manual(*net, output, *sde, weighting, x0, y, t, z);
        net->backward_into_grads(m.grad_output);
        EXPECT_NEAR(m.loss.item<double>(), loss.item<double>(), 1e-12);
        for (size_t i = 0; i < params.size(); ++i)
          EXPECT_TRUE(at::allclose(params[i].grad(), expected[i], 1e-9, 1e-12))
              << to_string(act) << " " << to_string(output) << " param " << i;
      }
}

// train.time_sampling = logsnr draws t uniformly in log-SNR (density g^2 / sigma^2) and reweights
// each sample, so the objective is unchanged: over 200 batches the mean loss of a fixed network
// agrees with uniform t's within 4 standard errors, for both weightings; for the likelihood
// weighting, whose per-sample weight it makes constant, the batches' spread is smaller. The
// manual backward takes the weights as autograd does.
TEST(DSMLoss, LogSNRTimesKeepTheObjective) {
  NetConfig nc;
  nc.width = 16;
  nc.depth = 2;
  nc.activation = Activation::SiLU;
  nc.output = Parameterization::Noise;
  torch::manual_seed(0);
  auto net = make_score_net(nc, {2});
  net->to(at::kDouble);
  at::NoGradGuard no_grad;
  std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
  const auto dbl = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor x0 = make_toy_dataset("ring8", 256, 3).to(at::kDouble) / 2;
  for (auto weighting : {LossWeighting::Sigma2, LossWeighting::Likelihood}) {
    std::vector<double> mean(2), var(2);
    for (int k = 0; k < 2; ++k) {
      DSMConfig config;
      config.weighting = weighting;
      config.time_sampling = k == 0 ? TimeSampling::Uniform : TimeSampling::LogSNR;
      at::Generator gen = make_generator(at::kCPU, 10 + k);
      std::vector<double> losses;
      for (int b = 0; b < 200; ++b) losses.push_back(dsm_loss(*net, Parameterization::Noise, *sde, config, x0, at::Tensor(), gen).item<double>());
      const at::Tensor l = at::tensor(losses, dbl);
      mean[k] = l.mean().item<double>();
      var[k] = l.var().item<double>();
    }
    const double se = std::sqrt((var[0] + var[1]) / 200);
    EXPECT_LT(std::abs(mean[0] - mean[1]), 4 * se) << to_string(weighting) << " " << mean[0] << " vs " << mean[1];
    if (weighting == LossWeighting::Likelihood) EXPECT_LT(var[1], var[0] / 4) << var[0] << " vs " << var[1];
  }
  // The importance weights reach the manual gradient as they reach autograd's.
  at::Generator gen = make_generator(at::kCPU, 5);
  DSMConfig log_snr;
  log_snr.time_sampling = TimeSampling::LogSNR;
  const ProposedTimes times = times_from_uniform(*sde, at::rand({256}, gen, dbl), log_snr);
  ASSERT_TRUE(times.importance.defined());
  const at::Tensor z = at::normal(0.0, 1.0, x0.sizes(), gen, dbl);
  at::Tensor loss;
  std::vector<at::Tensor> expected;
  {
    at::AutoGradMode grad(true);
    loss = dsm_loss(*net, Parameterization::Noise, *sde, LossWeighting::Likelihood, x0, at::Tensor(), times.t, z, times.importance);
    expected = torch::autograd::grad({loss}, net->parameters());
  }
  for (auto& p : net->parameters()) p.mutable_grad() = at::Tensor();
  const DSMManual m = dsm_loss_manual(*net, Parameterization::Noise, *sde, LossWeighting::Likelihood, x0, at::Tensor(),
                                      times.t, z, times.importance);
  net->backward_into_grads(m.grad_output);
  EXPECT_NEAR(m.loss.item<double>(), loss.item<double>(), 1e-10);
  const auto params = net->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(at::allclose(params[i].grad(), expected[i], 1e-8, 1e-11)) << i;
  EXPECT_NE(error_of([] { time_sampling_from_string("beta"); }).find("uniform, logsnr"), std::string::npos);
  DSMConfig flow;
  flow.time_sampling = TimeSampling::LogSNR;
  EXPECT_NE(error_of([&] { check_loss_config(flow, Parameterization::Velocity, false); }).find("infinite at t = 1"),
            std::string::npos);
}

// EDM's noise levels: with time_sampling = lognormal, log(sigma / m) at the drawn times follows the
// normal truncated to the path's range — its mean and standard deviation against the truncated
// normal's closed form, on the VE path (closed-form inverse), VP (bisection) and the linear path
// (no upper bound) — and the draws carry no importance weight.
TEST(DSMLoss, LogNormalTimesDrawTheTruncatedNormalNoiseLevels) {
  const auto dbl = at::TensorOptions().dtype(at::kDouble);
  const auto phi = [](double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI); };
  const auto cdf = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  for (SDEKind kind : {SDEKind::VE, SDEKind::VP, SDEKind::Linear}) {
    SDEConfig sc;
    sc.kind = kind;
    const std::shared_ptr<const SDE> sde = make_sde(sc);
    DSMConfig config;
    config.time_sampling = TimeSampling::LogNormal;
    config.log_noise_mean = -1.0;
    config.log_noise_std = 1.5;
    at::Generator gen = make_generator(at::kCPU, 3);
    const ProposedTimes times = times_from_uniform(*sde, at::rand({200000}, gen, dbl), config);
    EXPECT_FALSE(times.importance.defined());
    ASSERT_GE(times.t.min().item<double>(), sde->t_eps());
    ASSERT_LE(times.t.max().item<double>(), sde->T());
    const at::Tensor log_r = (sde->marginal_std(times.t, times.t) / sde->mean_coeff(times.t, times.t)).log();
    // N(mu, s^2) truncated to [a, b]: mean mu + s (phi(alpha) - phi(beta)) / Z, variance s^2 (1 +
    // (alpha phi(alpha) - beta phi(beta)) / Z - ((phi(alpha) - phi(beta)) / Z)^2)
    const double mu = -1.0, s = 1.5, a = (std::log(sde->noise_to_signal(sde->t_eps())) - mu) / s;
    const double top = std::log(sde->noise_to_signal(sde->T()));
    const double b = std::isfinite(top) ? (top - mu) / s : 40.0;
    const double z = cdf(b) - cdf(a), d = (phi(a) - phi(b)) / z;
    const double mean = mu + s * d, sd = s * std::sqrt(1 + (a * phi(a) - b * phi(b)) / z - d * d);
    EXPECT_NEAR(log_r.mean().item<double>(), mean, 4 * sd / std::sqrt(200000.0)) << to_string(kind);
    EXPECT_NEAR(log_r.std().item<double>(), sd, 0.01 * sd) << to_string(kind);
    if (kind == SDEKind::VE) {
      // the closed-form inverse agrees with the bisection every path has
      for (double r : {1e-4, 0.03, 1.0, 20.0}) EXPECT_NEAR(sde->noise_to_signal(sde->time_of_noise_to_signal(r)), r, 1e-12 * (1 + r));
      EXPECT_DOUBLE_EQ(sde->time_of_noise_to_signal(1e6), sde->T());
    }
  }
  DSMConfig bad;
  bad.time_sampling = TimeSampling::LogNormal;
  bad.log_noise_std = 0;
  EXPECT_NE(error_of([&] { check_loss_config(bad, Parameterization::Noise, true); }).find("train.log_noise_std must be positive"),
            std::string::npos);
  bad.log_noise_std = 1;
  bad.log_noise_mean = std::nan("");
  EXPECT_NE(error_of([&] { check_loss_config(bad, Parameterization::Noise, true); }).find("train.log_noise_mean must be finite"),
            std::string::npos);
}

// A set's conditions (TrainConfig::cond_set) are drawn with each row's elements in an order of
// its own: every batch row holds its own elements, each whole, and the orders vary.
TEST(Trainer, ASetsElementsAreDrawnInRandomOrders) {
  const int64_t n = 16, elements = 3, width = 2;
  // row i's element e is (10 i + e, -(10 i + e)): whole, and telling its row and place apart
  const at::Tensor label = (at::arange(n, at::kFloat).unsqueeze(1) * 10 + at::arange(elements, at::kFloat)).unsqueeze(2);
  const at::Tensor cond = at::cat({label, -label}, 2).reshape({n, elements * width});
  NetConfig nc;
  nc.width = 8;
  nc.depth = 1;
  torch::manual_seed(0);
  TrainConfig tc;
  tc.steps = 6;
  tc.batch_size = 8;
  tc.cond_set = width;
  Trainer trainer(make_score_net(nc, {2}, cond.size(1)), nullptr, make_sde(SDEConfig{}), Parameterization::Noise, tc,
                  at::randn({n, 2}), cond);
  int64_t reordered = 0;
  for (int s = 0; s < 6; ++s) {
    trainer.step();
    const at::Tensor seen = trainer.last_batch_cond().reshape({8, elements, width});
    for (int64_t r = 0; r < 8; ++r) {
      const at::Tensor first = seen[r].select(1, 0);
      EXPECT_TRUE(at::equal(seen[r].select(1, 1), -first));                  // each element whole
      const int64_t row = static_cast<int64_t>(first.min().item<float>()) / 10;
      EXPECT_TRUE(at::equal(std::get<0>(first.sort()), label[row].flatten()));  // the row's own elements
      reordered += !at::equal(first, label[row].flatten());
    }
  }
  EXPECT_GT(reordered, 24);  // 5 of 6 orders are not the given one: about 40 of 48 rows
}
