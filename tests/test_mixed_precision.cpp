// bfloat16 autocast: the scope itself, gradients against float32 for every network family, and
// training that learns as well as float32 does. On CPU here; the same code runs on CUDA.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "sbgm/data/toy.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/dsm_loss.hpp"
#include "sbgm/train/trainer.hpp"
#include "sbgm/util/autocast.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

TEST(MixedPrecision, AutocastScopeRunsProductsInBfloat16AndRestores) {
  const at::Tensor a = at::randn({4, 4});
  EXPECT_EQ(at::mm(a, a).scalar_type(), at::kFloat);
  {
    const AutocastScope outer(c10::DeviceType::CPU, Precision::BFloat16);
    EXPECT_EQ(at::mm(a, a).scalar_type(), at::kBFloat16);
    {
      const AutocastScope inner(c10::DeviceType::CPU, Precision::BFloat16);
      EXPECT_EQ(at::mm(a, a).scalar_type(), at::kBFloat16);
    }
    EXPECT_EQ(at::mm(a, a).scalar_type(), at::kBFloat16) << "closing the inner scope must keep the outer one";
    EXPECT_EQ((a + a).scalar_type(), at::kFloat) << "elementwise work stays float32";
  }
  EXPECT_EQ(at::mm(a, a).scalar_type(), at::kFloat);
  {
    const AutocastScope off(c10::DeviceType::CPU, Precision::Float32);
    EXPECT_EQ(at::mm(a, a).scalar_type(), at::kFloat);
  }
  EXPECT_EQ(precision_from_string("bf16"), Precision::BFloat16);
  EXPECT_EQ(precision_from_string(to_string(Precision::Float32)), Precision::Float32);
  EXPECT_THROW(precision_from_string("float16"), InvalidArgument);
}

namespace {

double cosine(const at::Tensor& a, const at::Tensor& b) {
  return (a * b).sum().item<double>() / (a.norm().item<double>() * b.norm().item<double>());
}

at::Tensor flat_grads(ScoreNet& net) {
  std::vector<at::Tensor> g;
  for (const auto& p : net.parameters()) g.push_back(p.grad().reshape({-1}));
  return at::cat(g);
}

}  // namespace

// Under autocast the loss is float32, every gradient reaches the float32 weights, and the
// gradient points where float32's does (bfloat16 keeps 8 bits of mantissa: a few 1e-3 relative
// per product).
TEST(MixedPrecision, Bfloat16GradientsAgreeWithFloat32ForEveryNetwork) {
  struct Case {
    NetKind kind;
    std::vector<int64_t> shape;
  };
  for (const Case& c : {Case{NetKind::MLP, {3}}, Case{NetKind::ResNet, {3}}, Case{NetKind::UNet, {1, 8, 8}},
                        Case{NetKind::DiT, {1, 8, 8}}, Case{NetKind::Mixer, {1, 8, 8}}}) {
    NetConfig nc;
    nc.kind = c.kind;
    nc.width = 32;
    nc.depth = 2;
    nc.activation = Activation::SiLU;
    nc.channel_mult = {1, 2};
    nc.attention_res = {4};
    torch::manual_seed(0);
    auto net = make_score_net(nc, c.shape, /*cond_dim=*/2);
    // Zero-initialised output layers would make most gradients vanish; start from random ones.
    {
      at::NoGradGuard no_grad;
      for (auto& p : net->parameters()) p.normal_(0.0, 0.2);
    }
    std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
    at::Generator gen = make_generator(at::kCPU, 1);
    std::vector<int64_t> shape{16};
    shape.insert(shape.end(), c.shape.begin(), c.shape.end());
    const at::Tensor x0 = at::normal(0.0, 1.0, shape, gen), z = at::normal(0.0, 1.0, shape, gen);
    const at::Tensor y = at::normal(0.0, 1.0, {16, 2}, gen), t = at::rand({16}, gen) * 0.9 + 0.05;
    auto loss_and_grads = [&](Precision precision) {
      net->zero_grad();
      at::Tensor loss;
      {
        const AutocastScope autocast(c10::DeviceType::CPU, precision);
        loss = dsm_loss(*net, Parameterization::Noise, *sde, LossWeighting::Sigma2, x0, y, t, z);
      }
      torch::autograd::backward({loss});
      return std::make_pair(loss.detach(), flat_grads(*net).clone());
    };
    const auto [loss32, grad32] = loss_and_grads(Precision::Float32);
    const auto [loss16, grad16] = loss_and_grads(Precision::BFloat16);
    const std::string name = to_string(c.kind);
    EXPECT_EQ(loss16.scalar_type(), at::kFloat) << name;
    EXPECT_EQ(grad16.scalar_type(), at::kFloat) << name;
    EXPECT_TRUE(grad16.isfinite().all().item<bool>()) << name;
    EXPECT_NE(loss16.item<double>(), loss32.item<double>()) << name << ": autocast changed nothing";
    EXPECT_NEAR(loss16.item<double>() / loss32.item<double>(), 1.0, 2e-2) << name;
    EXPECT_GT(cosine(grad16, grad32), 0.99) << name;
    for (const auto& p : net->parameters()) EXPECT_EQ(p.scalar_type(), at::kFloat) << name;
  }
}

namespace {

struct TrainedOnMoons {
  std::shared_ptr<ScoreNet> net;
  double first_loss, final_loss;  // the first step's, and the trained network's on fixed draws in float32
};

TrainedOnMoons train_on_moons(Precision precision) {
  const at::Tensor data = make_toy_dataset("moons", 4000, 0);
  std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
  NetConfig nc;
  nc.width = 64;
  nc.depth = 2;
  torch::manual_seed(0);
  auto net = make_score_net(nc, {2});
  TrainConfig tc;
  tc.steps = 400;
  tc.batch_size = 128;
  tc.lr = 2e-3;
  tc.ema_decay = 0;
  tc.precision = precision;
  Trainer trainer(net, nullptr, sde, nc.output, tc, data);
  const at::Tensor first = trainer.step();
  EXPECT_EQ(first.scalar_type(), at::kFloat);
  trainer.run();
  at::Generator gen = make_generator(at::kCPU, 9);
  const at::Tensor x0 = data.narrow(0, 0, 2000), z = at::normal(0.0, 1.0, x0.sizes(), gen);
  const at::Tensor t = at::rand({2000}, gen) * (sde->T() - sde->t_eps()) + sde->t_eps();
  at::NoGradGuard no_grad;
  const double loss = dsm_loss(*net, nc.output, *sde, LossWeighting::Sigma2, x0, {}, t, z).item<double>();
  return {net, first.item<double>(), loss};
}

}  // namespace

// 400 steps on two moons with bfloat16 autocast reach the float32 run's loss (evaluated in
// float32 on fixed draws), and the trainer takes the autograd path the manual MLP backward
// cannot (it is written for float32).
TEST(MixedPrecision, Bfloat16TrainingLearnsAsFloat32Does) {
  const TrainedOnMoons a = train_on_moons(Precision::Float32), b = train_on_moons(Precision::BFloat16);
  EXPECT_LT(a.final_loss, a.first_loss);
  EXPECT_LT(b.final_loss, b.first_loss);
  EXPECT_LT(b.final_loss, a.final_loss * 1.05 + 0.01) << "float32 reached " << a.final_loss;
}

// Sampling with the network under bfloat16 autocast: the same noise gives nearly the same
// samples as float32, returned in float32; the divergence (likelihoods) stays full precision.
TEST(MixedPrecision, Bfloat16SamplingStaysCloseAndDivergenceStaysExact) {
  const TrainedOnMoons trained = train_on_moons(Precision::Float32);
  std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
  NetworkScore full(trained.net, sde, Parameterization::Noise), reduced(trained.net, sde, Parameterization::Noise, {}, 0,
                                                                         Precision::BFloat16);
  EulerMaruyama sampler({200, true});
  DrawConfig draw;
  draw.n = 2000;
  auto samples = [&](ScoreModel& score) {
    return draw_samples(sampler, score, *sde, {2}, draw, {}, make_generator(at::kCPU, 4), at::kFloat);
  };
  const at::Tensor x32 = samples(full), x16 = samples(reduced);
  EXPECT_EQ(x16.scalar_type(), at::kFloat);
  EXPECT_FALSE(at::equal(x16, x32)) << "autocast changed nothing";
  const double typical = (x16 - x32).abs().median().item<double>(), spread = x32.std().item<double>();
  EXPECT_LT(typical, 0.02 * spread) << "median |difference| " << typical << ", data std " << spread;
  EXPECT_NEAR(x16.mean().item<double>(), x32.mean().item<double>(), 0.02 * spread);

  const at::Tensor x = at::randn({64, 2}), t = at::rand({64}) * 0.9 + 0.05;
  const auto a = full.score_and_divergence(x, t, {}), b = reduced.score_and_divergence(x, t, {});
  EXPECT_TRUE(at::equal(a.score, b.score));
  EXPECT_TRUE(at::equal(a.divergence, b.divergence));
  EXPECT_FALSE(at::equal(reduced.score(x, t, {}), full.score(x, t, {}))) << "score() itself uses bfloat16";
}
