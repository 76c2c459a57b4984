// The linear-Gaussian baseline (nets/gaussian_baseline.hpp): its least-squares fit recovers a
// linear-Gaussian model (weighing exchangeable elements alike where asked), its output is the
// exact diffused score of the fitted Gaussian in every parameterisation (the exact velocity for
// flow matching), and its divergence agrees with autograd.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "sbgm/nets/gaussian_baseline.hpp"
#include "sbgm/nets/mlp.hpp"
#include "sbgm/score/mixture_score.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;

namespace {

// theta [N, 3] given x [N, 2]: theta = W x + b + N(0, C).
struct Pairs {
  at::Tensor W = at::tensor({0.5, -1.0, 0.2, 0.3, 0.0, 1.5}, at::kDouble).reshape({3, 2});
  at::Tensor b = at::tensor({0.1, -0.4, 2.0}, at::kDouble);
  at::Tensor C = at::tensor({0.3, 0.1, 0.0, 0.1, 0.2, -0.05, 0.0, -0.05, 0.1}, at::kDouble).reshape({3, 3});
  at::Tensor theta, x;
  explicit Pairs(int64_t n) {
    at::manual_seed(3);
    x = at::randn({n, 2}, at::kDouble) * 2;
    theta = at::matmul(x, W.t()) + b + at::matmul(at::randn({n, 3}, at::kDouble), at::linalg_cholesky(C).t());
  }
};

// A network that outputs zeros (so the wrapper's output is the baseline's alone).
class ZeroNet final : public ScoreNet {
 public:
  at::Tensor forward(const at::Tensor& x, const at::Tensor&, const at::Tensor&) override { return at::zeros_like(x); }
};

at::Tensor buffer(GaussianBaselineNet& net, const std::string& name) {
  for (const auto& item : net.named_buffers(/*recurse=*/false))
    if (item.key() == name) return item.value();
  throw std::runtime_error("no buffer " + name);
}

}  // namespace

TEST(GaussianBaseline, FitRecoversALinearGaussianModel) {
  const Pairs p(40000);
  const std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
  GaussianBaselineNet net(std::make_shared<ZeroNet>(), sde, Parameterization::Score, 3, 2);
  net.to(at::kDouble);
  net.fit(p.theta, p.x);
  EXPECT_TRUE(at::allclose(buffer(net, "baseline_weight"), p.W, 0, 0.01)) << buffer(net, "baseline_weight");
  EXPECT_TRUE(at::allclose(buffer(net, "baseline_bias"), p.b, 0, 0.01));
  const at::Tensor U = buffer(net, "baseline_vectors"), values = buffer(net, "baseline_values");
  EXPECT_TRUE(at::allclose(at::matmul(U * values, U.t()), p.C, 0, 0.01));
  EXPECT_THROW(net.fit(p.theta.narrow(0, 0, 3), p.x.narrow(0, 0, 3)), InvalidArgument);
}

// With exchangeable elements (a set summary's condition) the fit is least squares over the rows
// with their elements in every order: each element weighed alike.
TEST(GaussianBaseline, AFitOverExchangeableElementsIsTheFitOverEveryOrder) {
  at::manual_seed(4);
  const int64_t n = 500;
  const at::Tensor y = at::randn({n, 3, 2}, at::kDouble);  // three elements of two features
  const at::Tensor theta = at::matmul(y.sum(1), at::tensor({1.0, 0.5, -0.3, 2.0}, at::kDouble).reshape({2, 2})) +
                           0.3 * at::randn({n, 2}, at::kDouble) + at::randn({n, 1}, at::kDouble) * y.select(1, 0);
  const std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
  GaussianBaselineNet tied(std::make_shared<ZeroNet>(), sde, Parameterization::Score, 2, 6);
  GaussianBaselineNet every_order(std::make_shared<ZeroNet>(), sde, Parameterization::Score, 2, 6);
  tied.to(at::kDouble);
  every_order.to(at::kDouble);
  tied.fit(theta, y.reshape({n, 6}), /*elements=*/3);
  std::vector<at::Tensor> ys, thetas;
  for (const auto& order : std::vector<std::vector<int64_t>>{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}) {
    ys.push_back(y.index_select(1, at::tensor(order, at::kLong)).reshape({n, 6}));
    thetas.push_back(theta);
  }
  every_order.fit(at::cat(thetas), at::cat(ys));
  const at::Tensor W = buffer(tied, "baseline_weight");
  EXPECT_TRUE(at::allclose(W, buffer(every_order, "baseline_weight"), 1e-6, 1e-8)) << W;
  EXPECT_TRUE(at::allclose(buffer(tied, "baseline_bias"), buffer(every_order, "baseline_bias"), 1e-6, 1e-8));
  EXPECT_TRUE(at::allclose(W.narrow(1, 0, 2), W.narrow(1, 4, 2), 0, 1e-12));
  EXPECT_THROW(tied.fit(theta, y.reshape({n, 6}), 4), InvalidArgument);  // 6 features are not 4 elements
}

TEST(GaussianBaseline, OutputIsTheFittedGaussiansDiffusedScore) {
  const Pairs p(5000);
  for (const SDEKind kind : {SDEKind::VP, SDEKind::VE, SDEKind::Linear}) {
    SDEConfig config;
    config.kind = kind;
    const std::shared_ptr<const SDE> sde = make_sde(config);
    for (const Parameterization output : {Parameterization::Score, Parameterization::Noise, Parameterization::Velocity}) {
      if (kind == SDEKind::Linear && output != Parameterization::Velocity) continue;  // no score at t = 1 to compare
      GaussianBaselineNet net(std::make_shared<ZeroNet>(), sde, output, 3, 2);
      net.to(at::kDouble);
      net.fit(p.theta, p.x);
      const at::Tensor U = buffer(net, "baseline_vectors"), values = buffer(net, "baseline_values");
      const GaussianMixture fitted(at::ones({1}, at::kDouble), buffer(net, "baseline_bias").unsqueeze(0),
                                   at::matmul(U * values, U.t()).unsqueeze(0), buffer(net, "baseline_weight").unsqueeze(0));
      GaussianMixtureScore exact(fitted, sde);
      at::manual_seed(9);
      const at::Tensor x = at::randn({50, 3}, at::kDouble), y = at::randn({50, 2}, at::kDouble);
      for (double t : {0.01, 0.3, 1.0}) {
        const at::Tensor tt = at::full({50}, t, at::kDouble);
        at::Tensor want = output == Parameterization::Velocity ? exact.velocity(x, tt, y, *sde) : exact.score(x, tt, y);
        if (output == Parameterization::Noise) want = -sde->marginal_std(tt, x) * want;
        EXPECT_TRUE(at::allclose(net.forward(x, tt, y), want, 1e-9, 1e-9)) << to_string(kind) << " t " << t;
      }
    }
  }
}

TEST(GaussianBaseline, DivergenceMatchesAutograd) {
  const Pairs p(2000);
  const std::shared_ptr<const SDE> sde = make_sde(SDEConfig{});
  NetConfig config;
  config.width = 16;
  config.depth = 2;
  for (const Parameterization output : {Parameterization::Score, Parameterization::Noise, Parameterization::Velocity}) {
    torch::manual_seed(1);
    GaussianBaselineNet net(std::make_shared<MLPScoreNet>(config, 3, 2), sde, output, 3, 2);
    net.to(at::kDouble);
    net.fit(p.theta, p.x);
    ASSERT_TRUE(net.supports_divergence());
    const at::Tensor x = at::randn({20, 3}, at::kDouble).requires_grad_(true), y = at::randn({20, 2}, at::kDouble);
    const at::Tensor t = at::full({20}, 0.2, at::kDouble);
    // It starts as the fit alone (the network's output layer is zero)...
    EXPECT_TRUE(at::allclose(net.forward(x, t, y), net.baseline(x, t, y), 0, 1e-12));
    {
      at::NoGradGuard no_grad;
      for (auto& w : net.parameters()) w.add_(0.1 * at::randn_like(w));  // ...and is trained away from it
    }
    const at::Tensor out = net.forward(x, t, y);
    at::Tensor trace = at::zeros({20}, at::kDouble);
    for (int64_t k = 0; k < 3; ++k)
      trace += torch::autograd::grad({out.select(1, k).sum()}, {x}, {}, /*retain_graph=*/true)[0].select(1, k);
    at::Tensor divergence;
    at::NoGradGuard no_grad;
    const at::Tensor same = net.forward_with_divergence(x.detach(), t, y, divergence);
    EXPECT_TRUE(at::allclose(same, out.detach(), 1e-10, 1e-10));
    EXPECT_TRUE(at::allclose(divergence, trace, 1e-8, 1e-8)) << divergence << trace;
  }
}
