// The test for conditions whose elements are exchangeable given θ (data/exchangeable_elements.hpp)
// and the run's use of it (data.cond_set = auto): on iid points the statistic follows its
// chi-squared (calibrated p-values) and the smallest exchangeable width is found; elements that
// differ in mean, spread or dependence on θ are told apart; too few rows leave it untested.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "error_of.hpp"
#include "sbgm/data/exchangeable_elements.hpp"
#include "sbgm/run/run_defaults.hpp"
#include "sbgm/run/training_data.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {

struct Pairs {
  at::Tensor theta, x;
};

// θ ~ N(0, I_2) and x four points in the plane, point e drawn from N(scale_e θ, sd_e² Σ) with Σ
// correlated, so that its two coordinates differ (the width-1 elements are no set).
Pairs points(int64_t n, uint64_t seed, std::vector<double> scale = {1, 1, 1, 1}, std::vector<double> sd = {1, 1, 1, 1}) {
  const at::Generator gen = make_generator(at::kCPU, seed);
  Pairs p;
  p.theta = at::randn({n, 2}, gen, at::kDouble);
  const at::Tensor root = at::tensor({1.0, 0.0, 0.6, 0.5}, at::kDouble).reshape({2, 2});  // Σ = root rootᵀ
  std::vector<at::Tensor> elements;
  for (size_t e = 0; e < scale.size(); ++e)
    elements.push_back(scale[e] * p.theta + sd[e] * at::matmul(at::randn({n, 2}, gen, at::kDouble), root.t()));
  p.x = at::cat(elements, 1);
  return p;
}

}  // namespace

// Exchangeable points: over 40 draws of 2,000 pairs the statistic averages its degrees of freedom
// and the p-values are spread as uniform ones are; width 1 (the coordinates) is rejected.
TEST(ExchangeableElements, IidPointsPassWithCalibratedPValues) {
  double scaled = 0, below_05 = 0, mean_p = 0;
  const int draws = 40;
  for (int s = 0; s < draws; ++s) {
    const Pairs p = points(2000, 100 + s);
    const ExchangeabilityTest test = test_exchangeable_elements(p.theta, p.x, 2);
    ASSERT_TRUE(test.tested);
    // Per element after the first: 2 features, 3 products, 4 products with θ (27); the neighbour
    // pairs' products (a, b) and (b, a) share their diagonal, so the three other pairs add 4 each
    // and the first pair's two orders 1 (13).
    EXPECT_EQ(test.moments, 27 + 13);
    scaled += test.statistic / static_cast<double>(test.moments) / draws;
    below_05 += (test.p_value < 0.05) / static_cast<double>(draws);
    mean_p += test.p_value / draws;
    const ExchangeabilityTest coordinates = test_exchangeable_elements(p.theta, p.x, 1);
    ASSERT_TRUE(coordinates.tested);
    EXPECT_LT(coordinates.p_value, 1e-6);
  }
  EXPECT_NEAR(scaled, 1.0, 0.1);     // the statistic's mean is its chi-squared's
  EXPECT_LT(below_05, 0.15);         // 5% expected (0.15: about 3 sd above it)
  EXPECT_NEAR(mean_p, 0.5, 0.12);    // uniform p-values average 0.5 (sd 0.046 over 40)
}

TEST(ExchangeableElements, FindsTheSmallestExchangeableWidth) {
  const Pairs p = points(3000, 7);
  const ExchangeabilityTest found = find_set_elements(p.theta, p.x);
  EXPECT_EQ(found.width, 2);
  EXPECT_TRUE(found.exchangeable());
  // Two of the points again, so that the pairs of points are the elements (width 4).
  const Pairs q = points(3000, 8, {1, 2, 1, 2}, {1, 1, 1, 1});
  EXPECT_EQ(find_set_elements(q.theta, q.x).width, 4);
}

// Elements that differ only in their dependence on θ, or only in their spread, are no set; with
// no width left to try, none is found.
TEST(ExchangeableElements, ElementsThatDifferAreNoSet) {
  const Pairs mean = points(3000, 9, {1, 1, 1, 1.3});
  EXPECT_LT(test_exchangeable_elements(mean.theta, mean.x, 2).p_value, 1e-6);
  const ExchangeabilityTest none = find_set_elements(mean.theta, mean.x);
  EXPECT_EQ(none.width, 0);
  EXPECT_FALSE(none.tested);
  const Pairs spread = points(3000, 10, {1, 1, 1, 1}, {1, 1, 1, 1.3});
  EXPECT_LT(test_exchangeable_elements(spread.theta, spread.x, 2).p_value, 1e-6);
  EXPECT_EQ(find_set_elements(spread.theta, spread.x).width, 0);
}

// Not whole elements, one element, or fewer rows than five per moment compared: untested.
TEST(ExchangeableElements, UntestedWhereTheRowsCannotTell) {
  const Pairs p = points(3000, 11);
  EXPECT_FALSE(test_exchangeable_elements(p.theta, p.x, 3).tested);
  EXPECT_FALSE(test_exchangeable_elements(p.theta, p.x, 8).tested);
  const Pairs few = points(150, 12);  // width 2 compares 55 differences (275 rows), width 4 38 (190)
  EXPECT_FALSE(test_exchangeable_elements(few.theta, few.x, 2).tested);
  EXPECT_EQ(find_set_elements(few.theta, few.x).width, 0);
  EXPECT_EQ(error_of([&] { test_exchangeable_elements(p.theta, p.x, 0); }),
            "a set's elements must have at least one feature");
  EXPECT_THROW(test_exchangeable_elements(p.theta.narrow(0, 0, 10), p.x, 2), InvalidArgument);
}

// A posterior's run settles data.cond_set = auto by the test and says so; a width given, or 0, is
// kept; an unconditional run settles it to 0.
TEST(ExchangeableElements, APosteriorRunSettlesTheSetItsPairsShow) {
  const Pairs p = points(2000, 13);
  TrainingData rows;
  rows.data = p.theta;
  rows.cond = p.x;
  rows.data_name = "theta.npy";
  rows.cond_name = "x.npy";
  RunConfig c;
  c.data.file = "theta.npy";
  c.data.cond = "x.npy";
  c.threads = 1;
  EXPECT_EQ(c.get("data.cond_set"), "auto");
  const PreparedData d = prepare_training_data(config_for_rows(c, rows), rows);
  EXPECT_EQ(d.config.data.cond_set, 2);
  EXPECT_EQ(d.train.cond_set, 2);  // rows drawn in random orders
  bool said = false;
  for (const std::string& m : d.found) said = said || m.rfind("data.cond_set: the conditions' 8 features are 4 elements of 2", 0) == 0;
  EXPECT_TRUE(said);
  c.set("data.cond_set", "0");
  EXPECT_EQ(prepare_training_data(config_for_rows(c, rows), rows).config.data.cond_set, 0);
  c.set("data.cond_set", "4");
  EXPECT_EQ(prepare_training_data(config_for_rows(c, rows), rows).config.data.cond_set, 4);
  // Elements that differ: 0.
  const Pairs other = points(2000, 14, {1, 1, 1, 1.3});
  rows.data = other.theta;
  rows.cond = other.x;
  c.set("data.cond_set", "auto");
  const PreparedData none = prepare_training_data(config_for_rows(c, rows), rows);
  EXPECT_EQ(none.config.data.cond_set, 0);
  for (const std::string& m : none.found) EXPECT_EQ(m.find("data.cond_set"), std::string::npos) << m;
  RunConfig u;
  u.data.dataset = "ring8";
  EXPECT_EQ(settle_auto_keys(u, DataFacts{1000, 0}).data.cond_set, 0);
  EXPECT_EQ(settle_auto_keys(c, DataFacts{1000, 8, false, {}, 2}).data.cond_set, 2);
  c.set("data.cond_set", "-2");
  EXPECT_EQ(error_of([&] { c.validate(); }), "data.cond_set must be auto or in [0, 65536]");
}
