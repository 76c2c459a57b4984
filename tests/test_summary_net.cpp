// Summary networks for the condition (nets/summary_net.hpp): shapes and the errors of bad
// series, a set's summary ignores its elements' order, the wrapper is the score network on the summary, its divergence is the score
// network's (checked with autograd), condition dropout keeps an absent condition at zero, and
// the summary's weights receive gradients.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "sbgm/nets/condition.hpp"
#include "sbgm/nets/summary_net.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;

namespace {

NetConfig summary_config(SummaryKind kind, int64_t channels = 1) {
  NetConfig c;
  c.width = 32;
  c.depth = 2;
  c.activation = Activation::SiLU;
  c.summary = kind;
  c.summary_dim = 6;
  c.summary_channels = channels;
  return c;
}

// A score network that records the condition it was given.
class RecordingNet final : public ScoreNet {
 public:
  at::Tensor forward(const at::Tensor& x, const at::Tensor&, const at::Tensor& y) override {
    seen = y;
    return x;
  }
  at::Tensor seen;
};

}  // namespace

TEST(SummaryNet, ShapesOfTheMLPAndTheCNN) {
  torch::manual_seed(0);
  SummaryNet mlp(summary_config(SummaryKind::MLP), 40);
  EXPECT_EQ(mlp.forward(at::randn({5, 40})).sizes(), (at::IntArrayRef{5, 6}));
  SummaryNet cnn(summary_config(SummaryKind::CNN, 2), 2 * 25);  // two series of 25 steps
  EXPECT_EQ(cnn.forward(at::randn({5, 50})).sizes(), (at::IntArrayRef{5, 6}));
  // the cnn reads the features channel after channel: swapping the two series changes the summary
  const at::Tensor y = at::randn({3, 50});
  const at::Tensor swapped = at::cat({y.narrow(1, 25, 25), y.narrow(1, 0, 25)}, 1);
  EXPECT_FALSE(at::allclose(cnn.forward(y), cnn.forward(swapped)));
}

// A set's summary is the same for every order of its elements and changes with an element's
// features, which stay together: element after element, set_element features each.
TEST(SummaryNet, TheSetSummaryIgnoresTheElementsOrder) {
  torch::manual_seed(5);
  SummaryNet set(summary_config(SummaryKind::Set), 4 * 2, /*set_element=*/2);  // four points in the plane
  const at::Tensor y = at::randn({3, 8});
  const at::Tensor points = y.reshape({3, 4, 2});
  const at::Tensor reordered = points.index_select(1, at::tensor({2, 0, 3, 1}, at::kLong)).reshape({3, 8});
  const at::Tensor s = set.forward(y);
  EXPECT_EQ(s.sizes(), (at::IntArrayRef{3, 6}));
  EXPECT_TRUE(at::allclose(s, set.forward(reordered), 1e-5, 1e-6));
  // swapping the two coordinates of one point is another set
  const at::Tensor flipped = at::cat({points.narrow(1, 0, 1).flip(2), points.narrow(1, 1, 3)}, 1).reshape({3, 8});
  EXPECT_FALSE(at::allclose(s, set.forward(flipped), 1e-3, 1e-4));
  // and each row is its own set: the batch's rows do not mix
  EXPECT_TRUE(at::allclose(set.forward(y.narrow(0, 1, 1)), s.narrow(0, 1, 1), 1e-5, 1e-6));
}

TEST(SummaryNet, BadSeriesAreRefused) {
  EXPECT_THROW(SummaryNet(summary_config(SummaryKind::CNN, 3), 40), InvalidArgument);  // 40 is not 3 series
  EXPECT_THROW(SummaryNet(summary_config(SummaryKind::CNN, 1), 3), InvalidArgument);   // too short to pool twice
  EXPECT_THROW(SummaryNet(summary_config(SummaryKind::MLP), 0), InvalidArgument);      // no condition
  EXPECT_THROW(SummaryNet(summary_config(SummaryKind::Set), 7, 2), InvalidArgument);   // 7 is not points of 2
  EXPECT_THROW(SummaryNet(summary_config(SummaryKind::Set), 8), InvalidArgument);      // no element width
  NetConfig c = summary_config(SummaryKind::MLP);
  c.summary_dim = 0;
  EXPECT_THROW(c.validate(), InvalidArgument);
  c = summary_config(SummaryKind::MLP);
  c.kind = NetKind::UNet;
  c.cond_channels = 1;
  EXPECT_THROW(c.validate(), InvalidArgument);
}

TEST(SummaryNet, TheWrapperIsTheScoreNetworkOnTheSummary) {
  torch::manual_seed(1);
  const NetConfig config = summary_config(SummaryKind::MLP);
  auto summary = std::make_shared<SummaryNet>(config, 20);
  auto inner = make_score_net(config, {3}, config.summary_dim);
  SummarizedConditionNet net(summary, inner, /*droppable=*/false);
  const at::Tensor x = at::randn({4, 3}), t = at::rand({4}) * 0.9 + 0.05, y = at::randn({4, 20});
  EXPECT_TRUE(at::allclose(net.forward(x, t, y), inner->forward(x, t, summary->forward(y))));
  EXPECT_THROW(net.forward(x, t, at::Tensor()), InvalidArgument);

  // divergence: the summary does not depend on x, so it is the score network's, d out_k / d x_k
  ASSERT_TRUE(net.supports_divergence());
  net.to(at::kDouble);
  at::Tensor divergence;
  const at::Tensor out = net.forward_with_divergence(x.to(at::kDouble), t.to(at::kDouble), y.to(at::kDouble), divergence);
  const at::Tensor xd = x.to(at::kDouble).requires_grad_(true);
  const at::Tensor o = net.forward(xd, t.to(at::kDouble), y.to(at::kDouble));
  at::Tensor expected = at::zeros({4}, at::kDouble);
  for (int64_t k = 0; k < 3; ++k) {
    const at::Tensor g = torch::autograd::grad({o.select(1, k).sum()}, {xd}, {}, /*retain_graph=*/true)[0];
    expected = expected + g.select(1, k);
  }
  EXPECT_TRUE(at::allclose(divergence, expected, 1e-8, 1e-8)) << divergence << expected;
  EXPECT_EQ(out.sizes(), x.sizes());
}

TEST(SummaryNet, ConditionDropoutKeepsAnAbsentConditionAtZero) {
  torch::manual_seed(2);
  const NetConfig config = summary_config(SummaryKind::MLP);
  const ConditionInput input{20, /*droppable=*/true};
  auto inner = std::make_shared<RecordingNet>();
  SummarizedConditionNet net(std::make_shared<SummaryNet>(config, 20), inner, true);
  const at::Tensor x = at::randn({4, 3}), t = at::full({4}, 0.5);
  const at::Tensor keep = at::tensor({1.0f, 0.0f, 1.0f, 0.0f});
  net.forward(x, t, input.dropped(at::randn({4, 20}), keep));
  ASSERT_EQ(inner->seen.sizes(), (at::IntArrayRef{4, config.summary_dim + 1}));
  EXPECT_TRUE(at::equal(inner->seen.select(1, config.summary_dim), keep));  // the flag passes through
  EXPECT_EQ(inner->seen[1].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(inner->seen[3].abs().sum().item<float>(), 0.0f);
  EXPECT_GT(inner->seen[0].abs().sum().item<float>(), 0.0f);
}

TEST(SummaryNet, TheSummaryIsTrainedWithTheScoreNetwork) {
  torch::manual_seed(3);
  const NetConfig config = summary_config(SummaryKind::CNN);
  auto summary = std::make_shared<SummaryNet>(config, 16);
  SummarizedConditionNet net(summary, make_score_net(config, {2}, config.summary_dim), false);
  EXPECT_FALSE(net.supports_manual_backward());
  net.forward(at::randn({8, 2}), at::full({8}, 0.3), at::randn({8, 16})).pow(2).sum().backward();
  for (const auto& p : summary->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_GT(p.grad().abs().sum().item<float>(), 0.0f);
  }
}

// Outside training the summary of an unchanged condition is computed once and reused; a changed
// (or another) condition is summarised again, and training never reuses one.
TEST(SummaryNet, ASamplersUnchangedConditionIsSummarisedOnce) {
  torch::manual_seed(4);
  const NetConfig config = summary_config(SummaryKind::MLP);
  auto inner = std::make_shared<RecordingNet>();
  SummarizedConditionNet net(std::make_shared<SummaryNet>(config, 20), inner, false);
  net.eval();
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({4, 3}), t = at::full({4}, 0.5);
  at::Tensor y = at::randn({4, 20});
  net.forward(x, t, y.reshape({4, 20}));
  const at::Tensor first = inner->seen;
  net.forward(x, t, y.reshape({4, 20}));  // another view of the same numbers: the cached summary
  EXPECT_TRUE(inner->seen.is_same(first));
  y.mul_(2);  // changed in place: summarised again
  net.forward(x, t, y);
  EXPECT_FALSE(inner->seen.is_same(first));
  EXPECT_FALSE(at::allclose(inner->seen, first));
  const at::Tensor doubled = inner->seen;
  net.forward(x, t, at::randn({4, 20}));  // another condition
  EXPECT_FALSE(at::allclose(inner->seen, doubled));
  net.train();  // training: never from the cache
  const at::Tensor fixed = at::randn({4, 20});
  net.forward(x, t, fixed);
  const at::Tensor trained = inner->seen;
  net.forward(x, t, fixed);
  EXPECT_FALSE(inner->seen.is_same(trained));
}
