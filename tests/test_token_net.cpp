// The transformer over vector features (model.type = transformer): shapes, independent rows, a
// zero start, gradients reaching every parameter, the condition's tokens mattering, the contract
// of zero_output (the Gaussian baseline's residual), and a conditional run that learns a
// linear-Gaussian posterior.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>
#include <unistd.h>

#include <filesystem>

#include "sbgm/io/npy.hpp"
#include "scratch_dir.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/training_run.hpp"
#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

NetConfig small_config() {
  NetConfig c;
  c.kind = NetKind::Transformer;
  c.width = 16;
  c.depth = 2;
  c.heads = 2;
  c.mlp_ratio = 2;
  return c;
}

std::shared_ptr<ScoreNet> build(const std::vector<int64_t>& shape, int64_t cond_dim, uint64_t seed = 0) {
  torch::manual_seed(seed);
  auto net = make_score_net(small_config(), shape, cond_dim);
  net->eval();
  return net;
}

// Noise on every parameter, so that the zero-initialised output and adaLN modulations stop
// hiding everything before them.
void perturb_parameters(ScoreNet& net) {
  at::NoGradGuard no_grad;
  for (auto& p : net.parameters()) p.add_(at::randn_like(p) * 0.1);
}

}  // namespace

TEST(TokenNet, StartsAtZeroShapedLikeTheInputWithIndependentRows) {
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{5}, std::vector<int64_t>{2, 3}}) {
    auto net = build(shape, 4);
    std::vector<int64_t> full{3};
    full.insert(full.end(), shape.begin(), shape.end());
    at::NoGradGuard no_grad;
    const at::Tensor x = at::randn(full), t = at::tensor({0.1f, 0.5f, 0.9f}), y = at::randn({3, 4});
    EXPECT_TRUE(at::equal(net->forward(x, t, y), at::zeros_like(x)));
    perturb_parameters(*net);
    const at::Tensor out = net->forward(x, t, y);
    EXPECT_EQ(out.sizes(), x.sizes());
    EXPECT_TRUE(at::isfinite(out).all().item<bool>());
    for (int64_t i = 0; i < 3; ++i) {
      const at::Tensor alone = net->forward(x.narrow(0, i, 1), t.narrow(0, i, 1), y.narrow(0, i, 1));
      EXPECT_TRUE(at::allclose(alone[0], out[i], 1e-4, 1e-5)) << "row " << i;
    }
    EXPECT_GT((net->forward(x, t + 0.05, y) - out).abs().max().item<double>(), 1e-4) << "the time matters";
  }
}

TEST(TokenNet, GradientReachesEveryParameterAndEveryConditionFeatureMatters) {
  auto net = build({3}, 2);
  perturb_parameters(*net);
  const at::Tensor x = at::randn({2, 3}), t = at::tensor({0.3f, 0.7f});
  const at::Tensor y = at::randn({2, 2}).requires_grad_(true);
  net->forward(x, t, y).square().sum().backward();
  for (const auto& p : net->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
  for (int64_t j = 0; j < 2; ++j) EXPECT_GT(y.grad().select(1, j).abs().sum().item<double>(), 0.0) << "y " << j;
}

TEST(TokenNet, UnconditionalAndSeededLikeTheOtherNetworks) {
  auto a = build({4}, 0, 7), b = build({4}, 0, 7), other = build({4}, 0, 8);
  for (auto* n : {&a, &b, &other}) {
    torch::manual_seed(1);
    perturb_parameters(**n);
  }
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({2, 4}), t = at::tensor({0.2f, 0.6f});
  const at::Tensor out = a->forward(x, t, at::Tensor());
  EXPECT_TRUE(at::equal(out, b->forward(x, t, at::Tensor())));
  EXPECT_FALSE(at::allclose(out, other->forward(x, t, at::Tensor())));
}

TEST(TokenNet, ZeroOutputZeroesTheReadOutAndChecksItsSize) {
  auto net = build({3}, 2);
  perturb_parameters(*net);
  EXPECT_THROW(net->zero_output(4), InvalidArgument);
  net->zero_output(3);
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({4, 3});
  EXPECT_TRUE(at::equal(net->forward(x, at::full({4}, 0.5f), at::randn({4, 2})), at::zeros_like(x)));
}

TEST(TokenNet, HeadsMustDivideTheWidth) {
  NetConfig c = small_config();
  c.heads = 3;
  EXPECT_THROW(make_score_net(c, {3}, 2), InvalidArgument);
}

// theta ~ N(0, I_3), x = H theta + N(0, 0.25 I_2): the posterior is Gaussian with covariance
// (I + H^T H / 0.25)^-1 and mean cov H^T x / 0.25. A short run of the transformer on 4,000 pairs
// of 1,200 steps (the run's defaults for a posterior: VE, unit inputs; the Gaussian baseline left out)
// reproduces its means and standard deviations at two observations.
TEST(TokenNet, LearnsALinearGaussianPosterior) {
  const fs::path dir = scratch_dir("token");
  fs::create_directories(dir);
  const auto kDouble = at::TensorOptions().dtype(at::kDouble);
  at::Generator gen = make_generator(at::kCPU, 5);
  const at::Tensor H = at::tensor({1.0, 0.5, 0.0, 0.0, -1.0, 1.5}, kDouble).reshape({2, 3});
  const at::Tensor theta = at::randn({4000, 3}, gen, kDouble);
  const at::Tensor x = theta.matmul(H.t()) + 0.5 * at::randn({4000, 2}, gen, kDouble);
  write_npy((dir / "theta.npy").string(), theta);
  write_npy((dir / "x.npy").string(), x);
  RunConfig c;
  c.data.file = (dir / "theta.npy").string();
  c.data.cond = (dir / "x.npy").string();
  c.model.kind = NetKind::Transformer;
  c.model.width = 32;
  c.model.depth = 2;
  c.model.baseline = Baseline::None;
  c.train.steps = 1200;
  c.train.batch_size = 128;
  c.train.checkpoint_every = 0;
  c.sample.n = 10;
  c.threads = 2;
  train_run(c, (dir / "run").string(), false);
  Model model = load_model((dir / "run").string());
  const at::Tensor cov = at::linalg_inv(at::eye(3, kDouble) + H.t().matmul(H) / 0.25);
  const at::Tensor obs = at::tensor({1.0, -0.5, -1.0, 2.0}, kDouble).reshape({2, 2});
  EulerMaruyama em({200, true});
  const at::Tensor draws = sample_model_given(model, em, obs, 1000, 1);
  for (int64_t i = 0; i < 2; ++i) {
    const at::Tensor mean = cov.matmul(H.t().matmul(obs[i])) / 0.25;
    for (int64_t k = 0; k < 3; ++k) {
      const double sd = std::sqrt(cov[k][k].item<double>());
      EXPECT_NEAR(draws[i].select(1, k).mean().item<double>(), mean[k].item<double>(), 0.25 * sd) << i << "," << k;
      EXPECT_NEAR(draws[i].select(1, k).std().item<double>(), sd, 0.2 * sd) << i << "," << k;
    }
  }
  fs::remove_all(dir);
}
