// A score averaged over the orders of its condition's elements (score/order_averaged_score.hpp),
// against a closed form: Gaussian posteriors of one covariance whose mean weighs the elements
// unequally. Their scores averaged over orders are the score of the Gaussian with the mean of
// their means — over all orders, the elements' sum times the mean weight — at every time.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "sbgm/score/order_averaged_score.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;

namespace {

constexpr int64_t kElements = 3, kWidth = 2;  // three points of two features: y [B, 6]
const double kWeights[kElements] = {0.7, 0.2, -0.3};
constexpr double kPosteriorVar = 0.3;

// p(theta | y) = N(sum_k w_k y_k, v I) over 2-D theta, diffused by the SDE: an order-dependent model.
at::Tensor weighted_mean(const at::Tensor& y, const double* weights) {
  const at::Tensor points = y.reshape({y.size(0), kElements, kWidth});
  at::Tensor mean = at::zeros({y.size(0), kWidth}, y.options());
  for (int64_t k = 0; k < kElements; ++k) mean += weights[k] * points.select(1, k);
  return mean;
}

at::Tensor gaussian_score(const SDE& sde, const at::Tensor& x, const at::Tensor& t, const at::Tensor& mean) {
  const at::Tensor m = sde.mean_coeff(t, x), s = sde.marginal_std(t, x);
  return -(x - m * mean) / (m * m * kPosteriorVar + s * s);
}

class WeightedGaussian final : public ScoreModel {
 public:
  explicit WeightedGaussian(std::shared_ptr<const SDE> sde) : sde_(std::move(sde)) {}
  at::Tensor score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override {
    return gaussian_score(*sde_, x, t, weighted_mean(y, kWeights));
  }

 private:
  std::shared_ptr<const SDE> sde_;
};

std::shared_ptr<const SDE> vp() {
  SDEConfig c;
  c.kind = SDEKind::VP;
  return make_sde(c);
}

}  // namespace

TEST(ElementOrders, AllOrdersWhenThereAreNoMoreThanAsked) {
  const auto orders = element_orders(3, 10);
  ASSERT_EQ(orders.size(), 6u);
  EXPECT_EQ(orders.front(), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(std::set<std::vector<int64_t>>(orders.begin(), orders.end()).size(), 6u);
  EXPECT_EQ(element_orders(1, 5).size(), 1u);
}

TEST(ElementOrders, SomeDistinctOrdersTheSameEachTime) {
  const auto orders = element_orders(6, 7);
  ASSERT_EQ(orders.size(), 7u);
  EXPECT_EQ(orders.front(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(std::set<std::vector<int64_t>>(orders.begin(), orders.end()).size(), 7u);
  for (auto order : orders) {
    std::sort(order.begin(), order.end());
    EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  }
  EXPECT_EQ(element_orders(6, 7), orders);  // a request asked again averages the same orders
  // 20! overflows any count: some orders, not all
  EXPECT_EQ(element_orders(20, 3).size(), 3u);
  EXPECT_THROW(element_orders(0, 2), InvalidArgument);
  EXPECT_THROW(element_orders(3, 0), InvalidArgument);
}

TEST(OrderAveragedScore, OverAllOrdersIsTheScoreOfTheMeanOfTheMeans) {
  const auto sde = vp();
  OrderAveragedScore averaged(std::make_unique<WeightedGaussian>(sde), kElements, element_orders(kElements, 6));
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  const at::Tensor x = at::randn({5, kWidth}, gen, at::kDouble), y = at::randn({5, kElements * kWidth}, gen, at::kDouble);
  const at::Tensor t = at::tensor({0.01, 0.1, 0.3, 0.6, 1.0}, at::kDouble);
  const double mean_weight = (kWeights[0] + kWeights[1] + kWeights[2]) / kElements;
  const double equal[kElements] = {mean_weight, mean_weight, mean_weight};
  const at::Tensor expected = gaussian_score(*sde, x, t, weighted_mean(y, equal));
  EXPECT_TRUE(at::allclose(averaged.score(x, t, y), expected, 1e-12, 1e-12));
  // blind to the elements' order: the points given in another order score alike
  const at::Tensor swapped =
      y.reshape({5, kElements, kWidth}).index_select(1, at::tensor({2, 0, 1}, at::kLong)).reshape({5, -1});
  EXPECT_TRUE(at::allclose(averaged.score(x, t, swapped), expected, 1e-12, 1e-12));
  // the divergence averaged alike: -D / (m^2 v + sigma^2) for every order
  const auto with_divergence = averaged.score_and_divergence(x, t, y);
  const at::Tensor m = sde->mean_coeff(t, t), s = sde->marginal_std(t, t);
  EXPECT_TRUE(at::allclose(with_divergence.score, expected, 1e-10, 1e-10));
  EXPECT_TRUE(at::allclose(with_divergence.divergence, -double(kWidth) / (m * m * kPosteriorVar + s * s), 1e-8, 1e-8));
}

TEST(OrderAveragedScore, OneOrderIsTheModelItselfAndSomeOrdersTheirMean) {
  const auto sde = vp();
  WeightedGaussian plain(sde);
  const at::Tensor x = at::randn({4, kWidth}, at::kDouble), y = at::randn({4, kElements * kWidth}, at::kDouble);
  const at::Tensor t = at::full({4}, 0.2, at::kDouble);
  OrderAveragedScore one(std::make_unique<WeightedGaussian>(sde), kElements, element_orders(kElements, 1));
  EXPECT_TRUE(at::allclose(one.score(x, t, y), plain.score(x, t, y), 1e-14, 1e-14));
  // two orders: the mean of the two weightings
  const std::vector<std::vector<int64_t>> orders{{0, 1, 2}, {1, 2, 0}};
  OrderAveragedScore two(std::make_unique<WeightedGaussian>(sde), kElements, orders);
  // order {1, 2, 0} puts element 1 first: element k is weighted by w at its new place
  const double rotated[kElements] = {kWeights[2], kWeights[0], kWeights[1]};
  const double mixed[kElements] = {(kWeights[0] + rotated[0]) / 2, (kWeights[1] + rotated[1]) / 2,
                                   (kWeights[2] + rotated[2]) / 2};
  EXPECT_TRUE(at::allclose(two.score(x, t, y), gaussian_score(*sde, x, t, weighted_mean(y, mixed)), 1e-12, 1e-12));
  EXPECT_THROW(two.score(x, t, at::Tensor()), InvalidArgument);
  EXPECT_THROW(OrderAveragedScore(std::make_unique<WeightedGaussian>(sde), kElements, {{0, 1}}), InvalidArgument);
}
