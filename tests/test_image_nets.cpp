// The image networks (UNet, DiT, MLP-Mixer) and their attention: shapes, batch independence,
// gradients reaching every parameter, determinism, conditioning, and a short training run whose
// loss falls.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <utility>
#include <torch/nn/module.h>
#include <torch/utils.h>

#include <cmath>

#include "sbgm/nets/attention.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/trainer.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;

namespace {

NetConfig small_config(NetKind kind) {
  NetConfig c;
  c.kind = kind;
  c.width = 16;
  c.depth = kind == NetKind::UNet ? 1 : 2;
  c.channel_mult = {1, 2};
  c.attention_res = {4, 8};
  c.heads = 2;
  c.patch_size = 2;
  c.mlp_ratio = 2;
  return c;
}

std::shared_ptr<ScoreNet> build(const NetConfig& c, const std::vector<int64_t>& shape, int64_t cond_dim = 0,
                                uint64_t seed = 0) {
  torch::manual_seed(seed);
  auto net = make_score_net(c, shape, cond_dim);
  net->eval();
  return net;
}

// Adds noise to every parameter, so that zero-initialised layers (output convolutions, adaLN
// modulations) stop hiding the gradient of everything before them.
void perturb_parameters(ScoreNet& net) {
  at::NoGradGuard no_grad;
  for (auto& p : net.parameters()) p.add_(at::randn_like(p) * 0.1);
}

struct Case {
  NetKind kind;
  std::vector<int64_t> shape;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (NetKind k : {NetKind::UNet, NetKind::DiT, NetKind::Mixer})
    for (const std::vector<int64_t>& s : {std::vector<int64_t>{1, 8, 8}, std::vector<int64_t>{3, 16, 12}}) out.push_back({k, s});
  return out;
}

std::string name(const Case& c) {
  return to_string(c.kind) + " [" + std::to_string(c.shape[0]) + "," + std::to_string(c.shape[1]) + "," +
         std::to_string(c.shape[2]) + "]";
}

at::Tensor batch_of(const std::vector<int64_t>& shape, int64_t b) {
  std::vector<int64_t> full{b};
  full.insert(full.end(), shape.begin(), shape.end());
  return at::randn(full);
}

}  // namespace

TEST(ImageNets, OutputIsShapedLikeTheInputAndRowsAreIndependent) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(name(c));
    auto net = build(small_config(c.kind), c.shape);
    perturb_parameters(*net);
    at::NoGradGuard no_grad;
    const at::Tensor x = batch_of(c.shape, 3), t = at::tensor({0.1f, 0.5f, 0.9f});
    const at::Tensor out = net->forward(x, t, at::Tensor());
    EXPECT_EQ(out.sizes(), x.sizes());
    EXPECT_TRUE(at::isfinite(out).all().item<bool>());
    for (int64_t i = 0; i < 3; ++i) {
      const at::Tensor alone = net->forward(x.narrow(0, i, 1), t.narrow(0, i, 1), at::Tensor());
      EXPECT_TRUE(at::allclose(alone[0], out[i], 1e-4, 1e-5)) << "row " << i;
    }
    // The time matters.
    const at::Tensor later = net->forward(x, t + 0.05, at::Tensor());
    EXPECT_GT((later - out).abs().max().item<double>(), 1e-4);
  }
}

TEST(ImageNets, GradientReachesEveryParameter) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(name(c));
    auto net = build(small_config(c.kind), c.shape, /*cond_dim=*/2);
    perturb_parameters(*net);
    const at::Tensor x = batch_of(c.shape, 2), t = at::tensor({0.3f, 0.7f}), y = at::randn({2, 2});
    net->forward(x, t, y).square().sum().backward();
    for (const auto& p : net->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
    }
  }
}

TEST(ImageNets, SameSeedSameNetworkAndTheConditionMatters) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(name(c));
    const NetConfig config = small_config(c.kind);
    auto a = build(config, c.shape, 3, 7), b = build(config, c.shape, 3, 7), other = build(config, c.shape, 3, 8);
    for (auto* n : {&a, &b, &other}) {
      torch::manual_seed(1);
      perturb_parameters(**n);
    }
    at::NoGradGuard no_grad;
    const at::Tensor x = batch_of(c.shape, 2), t = at::tensor({0.2f, 0.6f}), y = at::randn({2, 3});
    const at::Tensor out = a->forward(x, t, y);
    EXPECT_TRUE(at::equal(out, b->forward(x, t, y)));
    EXPECT_FALSE(at::allclose(out, other->forward(x, t, y)));
    EXPECT_GT((a->forward(x, t, y + 0.5) - out).abs().max().item<double>(), 1e-4);
  }
}

// An image condition (model.cond_channels) enters as input channels: the output depends on y's
// pixels, near where they change (the UNet and the patch networks are local at the input), the
// gradient reaches y, and with condition dropout the present flag matters too.
TEST(ImageNets, ImageConditionsAreTakenAsChannels) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(name(c));
    NetConfig config = small_config(c.kind);
    config.cond_channels = 2;
    const int64_t pixels = 2 * c.shape[1] * c.shape[2];
    for (const bool flag : {false, true}) {
      auto net = build(config, c.shape, pixels + (flag ? 1 : 0));
      perturb_parameters(*net);
      const at::Tensor x = batch_of(c.shape, 2), t = at::tensor({0.3f, 0.7f});
      at::Tensor y = at::randn({2, pixels + (flag ? 1 : 0)}).requires_grad_(true);
      const at::Tensor out = net->forward(x, t, y);
      EXPECT_EQ(out.sizes(), x.sizes());
      out.square().sum().backward();
      EXPECT_GT(y.grad().narrow(1, 0, pixels).abs().sum().item<double>(), 0.0);
      if (flag) EXPECT_NE(y.grad()[0][pixels].item<double>(), 0.0);
      at::NoGradGuard no_grad;
      at::Tensor changed = y.detach().clone();
      changed[1][0] += 3.0;  // the top-left pixel of y's first channel, in row 1 only
      const at::Tensor diff = (net->forward(x, t, changed) - net->forward(x, t, y.detach())).abs();
      EXPECT_EQ(diff[0].max().item<double>(), 0.0);  // row 0 untouched
      EXPECT_GT(diff[1].max().item<double>(), 1e-4);
    }
    // Conditions of another size than the data's images are refused, naming both.
    try {
      make_score_net(config, c.shape, pixels / 2);
      ADD_FAILURE() << "accepted a half-size image condition";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(pixels) + " features per row"), std::string::npos) << e.what();
    }
  }
  NetConfig mlp;
  mlp.cond_channels = 1;
  EXPECT_THROW(make_score_net(mlp, {4}, 4), InvalidArgument);  // vector networks take vector conditions
}

TEST(ImageNets, ShapesTheyCannotTakeAreRefusedClearly) {
  NetConfig unet = small_config(NetKind::UNet);
  unet.channel_mult = {1, 2, 2};
  EXPECT_THROW(make_score_net(unet, {1, 6, 6}), InvalidArgument);  // 6 does not halve twice
  EXPECT_THROW(make_score_net(unet, {36}), InvalidArgument);        // not an image
  NetConfig dit = small_config(NetKind::DiT);
  dit.patch_size = 3;
  EXPECT_THROW(make_score_net(dit, {1, 8, 8}), InvalidArgument);
  dit.patch_size = 2;
  dit.heads = 3;  // 16 features do not split into 3 heads
  EXPECT_THROW(dit.validate(), InvalidArgument);
  try {
    make_score_net(unet, {1, 6, 6});
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("multiples of 4"), std::string::npos) << e.what();
  }
}

TEST(Attention, WrittenOutMatchesTheDefinitionAndTheFusedKernel) {
  const at::Tensor q = at::randn({2, 3, 5, 4}, at::kDouble), k = at::randn({2, 3, 7, 4}, at::kDouble),
                   v = at::randn({2, 3, 7, 4}, at::kDouble);
  const at::Tensor out = attention(q, k, v, AttentionKernel::Explicit);
  ASSERT_EQ(out.sizes(), q.sizes());
  // Row by row: out[b, h, i] = sum_j softmax_j(q_i . k_j / 2) v_j.
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t i = 0; i < 5; ++i) {
        const at::Tensor w = at::softmax(at::mv(k[b][h], q[b][h][i]) / 2.0, 0);
        EXPECT_TRUE(at::allclose(out[b][h][i], at::mv(v[b][h].t(), w), 1e-10, 1e-12));
      }
  if (fused_attention_available()) {
    EXPECT_TRUE(at::allclose(attention(q, k, v, AttentionKernel::Fused), out, 1e-8, 1e-10));
  } else {
    EXPECT_THROW(attention(q, k, v, AttentionKernel::Fused), InvalidArgument);
  }
}

TEST(ImageNets, ShortTrainingRunLowersTheLoss) {
  // Images of one bright bar, horizontal or vertical, at a random position: structure a network
  // can learn in a few dozen steps.
  torch::manual_seed(0);
  const int64_t n = 256;
  at::Tensor data = at::full({n, 1, 8, 8}, -1.0f);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pos = i % 8;
    if (i % 2) data[i][0].select(0, pos).fill_(1.0f);
    else data[i][0].select(1, pos).fill_(1.0f);
  }
  // Score matching on VP and flow matching on the linear path.
  for (const auto& [output, path] : {std::pair{Parameterization::Noise, SDEKind::VP},
                                     std::pair{Parameterization::Velocity, SDEKind::Linear}})
  for (NetKind kind : {NetKind::UNet, NetKind::DiT, NetKind::Mixer}) {
    SCOPED_TRACE(to_string(kind) + " " + to_string(output));
    torch::manual_seed(0);
    auto net = make_score_net(small_config(kind), {1, 8, 8});
    TrainConfig tc;
    tc.steps = 80;
    tc.batch_size = 32;
    tc.lr = 2e-3;
    tc.warmup_steps = 5;
    tc.ema_decay = 0;
    SDEConfig sc;
    sc.kind = path;
    Trainer trainer(net, nullptr, make_sde(sc), output, tc, data);
    double first = 0, last = 0;
    for (int64_t s = 0; s < tc.steps; ++s) {
      const double loss = trainer.step().item<double>();
      if (s < 20) first += loss / 20;
      if (s >= tc.steps - 20) last += loss / 20;
    }
    EXPECT_LT(last, 0.8 * first) << "first 20 steps " << first << ", last 20 " << last;
  }
}
