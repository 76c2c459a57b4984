// Networks around networks. The one that sees x_t at unit variance (nets/scaled_input.hpp): on
// the VE path its output is the inner network's at x_t / sqrt(1 + sigma^2), its divergence and its
// weight gradients by the manual path agree with autograd; on the VP path (m^2 + sigma^2 = 1) it
// is the inner network. The ensemble (nets/ensemble.hpp): in evaluation the members' mean, with
// the mean divergence; in training each member on its own part of the batch, its manual
// gradients those of autograd; on the linear-Gaussian baseline every member starts at zero.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "sbgm/nets/ensemble.hpp"
#include "sbgm/nets/gaussian_baseline.hpp"
#include "sbgm/nets/mlp.hpp"
#include "sbgm/nets/scaled_input.hpp"
#include "sbgm/sde/sde.hpp"

using namespace sbgm;

namespace {

// A small ReLU MLP for 3 features and 2 condition features.
std::shared_ptr<MLPScoreNet> small_mlp() {
  NetConfig config;
  config.width = 16;
  config.depth = 2;
  return std::make_shared<MLPScoreNet>(config, 3, 2);
}

// In double precision, its weights moved off their initial values (an output layer may start at zero).
void perturbed(ScoreNet& net) {
  net.to(at::kDouble);
  at::NoGradGuard no_grad;
  for (auto& p : net.parameters()) p.add_(0.1 * at::randn_like(p));
}

// forward_with_divergence agrees with the value of forward and with autograd's trace.
void expect_divergence_of_autograd(ScoreNet& net, const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  ASSERT_TRUE(net.supports_divergence());
  const at::Tensor xg = x.detach().requires_grad_(true);
  const at::Tensor out = net.forward(xg, t, y);
  at::Tensor trace = at::zeros({x.size(0)}, at::kDouble);
  for (int64_t k = 0; k < x.size(1); ++k)
    trace += torch::autograd::grad({out.select(1, k).sum()}, {xg}, {}, /*retain_graph=*/true)[0].select(1, k);
  at::NoGradGuard no_grad;
  at::Tensor divergence;
  EXPECT_TRUE(at::allclose(net.forward_with_divergence(x, t, y, divergence), out.detach(), 1e-10, 1e-10));
  EXPECT_TRUE(at::allclose(divergence, trace, 1e-8, 1e-8)) << divergence << trace;
}

// The manual path's weight gradients for an upstream gradient agree with autograd's.
void expect_manual_gradients_of_autograd(ScoreNet& net, const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  ASSERT_TRUE(net.supports_manual_backward());
  const at::Tensor upstream = at::randn(x.sizes(), at::kDouble);
  const auto params = net.parameters();
  const at::Tensor out = net.forward(x, t, y);
  const auto expected = torch::autograd::grad({(out * upstream).sum()}, params);
  {
    at::NoGradGuard no_grad;
    EXPECT_TRUE(at::allclose(net.forward_for_backward(x, t, y), out.detach(), 1e-12, 1e-12));
    net.backward_into_grads(upstream);
  }
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(at::allclose(params[i].grad(), expected[i], 1e-10, 1e-10)) << i;
}

std::shared_ptr<ScaledInputNet> scaled(const std::shared_ptr<MLPScoreNet>& inner, SDEKind kind) {
  SDEConfig sde;
  sde.kind = kind;
  auto net = std::make_shared<ScaledInputNet>(inner, make_sde(sde));
  perturbed(*net);
  return net;
}

}  // namespace

TEST(ScaledInput, TheNetworkSeesUnitVarianceInputs) {
  torch::manual_seed(1);
  const auto inner = small_mlp();
  const auto ve = scaled(inner, SDEKind::VE);
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({6, 3}, at::kDouble) * 30, y = at::randn({6, 2}, at::kDouble);
  const at::Tensor t = at::linspace(0.05, 1.0, 6, at::kDouble);
  const at::Tensor sigma = make_sde(SDEConfig{SDEKind::VE})->marginal_std(t, x);
  EXPECT_TRUE(at::allclose(ve->forward(x, t, y), inner->forward(x / (1 + sigma * sigma).sqrt(), t, y), 1e-12, 1e-12));
  // m^2 + sigma^2 = 1 on VP: the same network.
  const auto vp_inner = small_mlp();
  const auto vp = scaled(vp_inner, SDEKind::VP);
  EXPECT_TRUE(at::allclose(vp->forward(x, t, y), vp_inner->forward(x, t, y), 1e-10, 1e-10));
}

TEST(ScaledInput, DivergenceAndManualGradientsMatchAutograd) {
  torch::manual_seed(1);
  const auto net = scaled(small_mlp(), SDEKind::VE);
  const at::Tensor x = at::randn({20, 3}, at::kDouble) * 5, y = at::randn({20, 2}, at::kDouble);
  const at::Tensor t = at::linspace(0.0, 1.0, 20, at::kDouble);
  expect_divergence_of_autograd(*net, x, t, y);
  expect_manual_gradients_of_autograd(*net, x, t, y);
}

TEST(Ensemble, EvaluatesTheMeanAndTrainsEachMemberOnItsPart) {
  torch::manual_seed(2);
  const std::vector<std::shared_ptr<MLPScoreNet>> nets{small_mlp(), small_mlp(), small_mlp()};
  const auto ensemble = std::make_shared<EnsembleNet>(std::vector<std::shared_ptr<ScoreNet>>(nets.begin(), nets.end()));
  perturbed(*ensemble);
  const at::Tensor x = at::randn({10, 3}, at::kDouble), y = at::randn({10, 2}, at::kDouble);
  const at::Tensor t = at::linspace(0.01, 1.0, 10, at::kDouble);
  ensemble->eval();
  {
    at::NoGradGuard no_grad;
    const at::Tensor mean = (nets[0]->forward(x, t, y) + nets[1]->forward(x, t, y) + nets[2]->forward(x, t, y)) / 3;
    EXPECT_TRUE(at::allclose(ensemble->forward(x, t, y), mean, 1e-12, 1e-12));
  }
  expect_divergence_of_autograd(*ensemble, x, t, y);
  // Training: rows 0-3 to the first member, 4-6 to the second, 7-9 to the third.
  ensemble->train();
  {
    at::NoGradGuard no_grad;
    const at::Tensor parts = ensemble->forward(x, t, y);
    EXPECT_TRUE(at::allclose(parts.narrow(0, 0, 4), nets[0]->forward(x.narrow(0, 0, 4), t.narrow(0, 0, 4), y.narrow(0, 0, 4)), 1e-12, 1e-12));
    EXPECT_TRUE(at::allclose(parts.narrow(0, 7, 3), nets[2]->forward(x.narrow(0, 7, 3), t.narrow(0, 7, 3), y.narrow(0, 7, 3)), 1e-12, 1e-12));
  }
  expect_manual_gradients_of_autograd(*ensemble, x, t, y);
}

// A network on the linear-Gaussian fit starts at zero, so that the model starts as the fit: under
// an ensemble, every member's output layer is zeroed (not only the last one registered).
TEST(Ensemble, OnTheGaussianBaselineEveryMemberStartsAtZero) {
  torch::manual_seed(3);
  const std::vector<std::shared_ptr<MLPScoreNet>> nets{small_mlp(), small_mlp(), small_mlp()};
  const auto ensemble = std::make_shared<EnsembleNet>(std::vector<std::shared_ptr<ScoreNet>>(nets.begin(), nets.end()));
  const at::Tensor x = at::randn({10, 3}), y = at::randn({10, 2}), t = at::linspace(0.01, 1.0, 10);
  at::NoGradGuard no_grad;
  for (const auto& member : nets) EXPECT_GT(member->forward(x, t, y).abs().max().item<double>(), 0);
  GaussianBaselineNet baseline(ensemble, make_sde(SDEConfig{}), Parameterization::Noise, 3, 2);
  for (const auto& member : nets) EXPECT_EQ(member->forward(x, t, y).abs().max().item<double>(), 0);
}
