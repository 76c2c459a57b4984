// Networks around networks. The one that sees x_t at unit variance (nets/scaled_input.hpp): on
// the VE path its output is the inner network's at x_t / sqrt(1 + sigma^2), its divergence and its
// weight gradients by the manual path agree with autograd; on the VP path (m^2 + sigma^2 = 1) it
// is the inner network. The ensemble (nets/ensemble.hpp): in evaluation the members' mean, with
// the mean divergence; in training each member on its own part of the batch, its manual
// gradients those of autograd.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "sbgm/nets/ensemble.hpp"
#include "sbgm/nets/mlp.hpp"
#include "sbgm/nets/scaled_input.hpp"
#include "sbgm/sde/sde.hpp"

using namespace sbgm;

namespace {

struct Wrapped {
  std::shared_ptr<MLPScoreNet> inner;
  std::shared_ptr<ScaledInputNet> net;
};

Wrapped wrapped(SDEKind kind) {
  NetConfig config;
  config.width = 16;
  config.depth = 2;
  torch::manual_seed(1);
  Wrapped w;
  w.inner = std::make_shared<MLPScoreNet>(config, 3, 2);
  SDEConfig sde;
  sde.kind = kind;
  w.net = std::make_shared<ScaledInputNet>(w.inner, make_sde(sde));
  w.net->to(at::kDouble);
  at::NoGradGuard no_grad;
  for (auto& p : w.net->parameters()) p.add_(0.1 * at::randn_like(p));  // the output layer starts at zero
  return w;
}

}  // namespace

TEST(ScaledInput, TheNetworkSeesUnitVarianceInputs) {
  const Wrapped ve = wrapped(SDEKind::VE);
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({6, 3}, at::kDouble) * 30, y = at::randn({6, 2}, at::kDouble);
  const at::Tensor t = at::linspace(0.05, 1.0, 6, at::kDouble);
  const auto sde = make_sde(SDEConfig{SDEKind::VE});
  const at::Tensor sigma = sde->marginal_std(t, x);
  EXPECT_TRUE(at::allclose(ve.net->forward(x, t, y), ve.inner->forward(x / (1 + sigma * sigma).sqrt(), t, y), 1e-12, 1e-12));
  // m^2 + sigma^2 = 1 on VP: the same network.
  const Wrapped vp = wrapped(SDEKind::VP);
  EXPECT_TRUE(at::allclose(vp.net->forward(x, t, y), vp.inner->forward(x, t, y), 1e-10, 1e-10));
}

TEST(ScaledInput, DivergenceAndManualGradientsMatchAutograd) {
  const Wrapped w = wrapped(SDEKind::VE);
  ASSERT_TRUE(w.net->supports_divergence());
  const at::Tensor x = (at::randn({20, 3}, at::kDouble) * 5).requires_grad_(true), y = at::randn({20, 2}, at::kDouble);
  const at::Tensor t = at::linspace(0.0, 1.0, 20, at::kDouble);
  const at::Tensor out = w.net->forward(x, t, y);
  at::Tensor trace = at::zeros({20}, at::kDouble);
  for (int64_t k = 0; k < 3; ++k)
    trace += torch::autograd::grad({out.select(1, k).sum()}, {x}, {}, /*retain_graph=*/true)[0].select(1, k);
  {
    at::NoGradGuard no_grad;
    at::Tensor divergence;
    const at::Tensor same = w.net->forward_with_divergence(x.detach(), t, y, divergence);
    EXPECT_TRUE(at::allclose(same, out.detach(), 1e-10, 1e-10));
    EXPECT_TRUE(at::allclose(divergence, trace, 1e-8, 1e-8)) << divergence << trace;
  }
  ASSERT_TRUE(w.net->supports_manual_backward());
  const at::Tensor upstream = at::randn({20, 3}, at::kDouble);
  const auto params = w.net->parameters();
  const auto expected = torch::autograd::grad({(w.net->forward(x.detach(), t, y) * upstream).sum()}, params);
  {
    at::NoGradGuard no_grad;
    w.net->forward_for_backward(x.detach(), t, y);
    w.net->backward_into_grads(upstream);
  }
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(at::allclose(params[i].grad(), expected[i], 1e-10, 1e-10)) << i;
}

namespace {

struct Members {
  std::vector<std::shared_ptr<MLPScoreNet>> nets;
  std::shared_ptr<EnsembleNet> ensemble;
};

Members ensemble_of(int64_t k) {
  NetConfig config;
  config.width = 16;
  config.depth = 2;
  torch::manual_seed(2);
  Members m;
  std::vector<std::shared_ptr<ScoreNet>> members;
  for (int64_t i = 0; i < k; ++i) {
    m.nets.push_back(std::make_shared<MLPScoreNet>(config, 3, 2));
    members.push_back(m.nets.back());
  }
  m.ensemble = std::make_shared<EnsembleNet>(members);
  m.ensemble->to(at::kDouble);
  at::NoGradGuard no_grad;
  for (auto& p : m.ensemble->parameters()) p.add_(0.1 * at::randn_like(p));
  return m;
}

}  // namespace

TEST(Ensemble, EvaluatesTheMeanAndTrainsEachMemberOnItsPart) {
  const Members m = ensemble_of(3);
  const at::Tensor x = at::randn({10, 3}, at::kDouble).requires_grad_(true), y = at::randn({10, 2}, at::kDouble);
  const at::Tensor t = at::linspace(0.01, 1.0, 10, at::kDouble);
  m.ensemble->eval();
  const at::Tensor mean = (m.nets[0]->forward(x, t, y) + m.nets[1]->forward(x, t, y) + m.nets[2]->forward(x, t, y)) / 3;
  const at::Tensor out = m.ensemble->forward(x, t, y);
  EXPECT_TRUE(at::allclose(out, mean, 1e-12, 1e-12));
  ASSERT_TRUE(m.ensemble->supports_divergence());
  at::Tensor trace = at::zeros({10}, at::kDouble);
  for (int64_t k = 0; k < 3; ++k)
    trace += torch::autograd::grad({out.select(1, k).sum()}, {x}, {}, /*retain_graph=*/true)[0].select(1, k);
  {
    at::NoGradGuard no_grad;
    at::Tensor divergence;
    EXPECT_TRUE(at::allclose(m.ensemble->forward_with_divergence(x.detach(), t, y, divergence), out.detach(), 1e-10, 1e-10));
    EXPECT_TRUE(at::allclose(divergence, trace, 1e-8, 1e-8)) << divergence << trace;
  }
  // Training: rows 0-3 to the first member, 4-6 to the second, 7-9 to the third.
  m.ensemble->train();
  const at::Tensor parts = m.ensemble->forward(x.detach(), t, y);
  EXPECT_TRUE(at::allclose(parts.narrow(0, 0, 4), m.nets[0]->forward(x.narrow(0, 0, 4), t.narrow(0, 0, 4), y.narrow(0, 0, 4)), 1e-12, 1e-12));
  EXPECT_TRUE(at::allclose(parts.narrow(0, 7, 3), m.nets[2]->forward(x.narrow(0, 7, 3), t.narrow(0, 7, 3), y.narrow(0, 7, 3)), 1e-12, 1e-12));
  ASSERT_TRUE(m.ensemble->supports_manual_backward());
  const at::Tensor upstream = at::randn({10, 3}, at::kDouble);
  const auto params = m.ensemble->parameters();
  const auto expected = torch::autograd::grad({(m.ensemble->forward(x.detach(), t, y) * upstream).sum()}, params);
  {
    at::NoGradGuard no_grad;
    EXPECT_TRUE(at::allclose(m.ensemble->forward_for_backward(x.detach(), t, y), parts.detach(), 1e-12, 1e-12));
    m.ensemble->backward_into_grads(upstream);
  }
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(at::allclose(params[i].grad(), expected[i], 1e-10, 1e-10)) << i;
}
