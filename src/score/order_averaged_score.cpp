#include "sbgm/score/order_averaged_score.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>
#include <utility>

#include "sbgm/util/error.hpp"

namespace sbgm {

std::vector<std::vector<int64_t>> element_orders(int64_t elements, int64_t count) {
  if (elements < 1) throw InvalidArgument("a set's elements must number at least 1");
  if (count < 1) throw InvalidArgument("the orders of a set's elements must number at least 1");
  std::vector<int64_t> order(elements);
  std::iota(order.begin(), order.end(), 0);
  // elements! when it is at most count (or overflow is near), else more than count.
  int64_t all = 1;
  for (int64_t k = 2; k <= elements && all <= count; ++k) all *= k;
  std::vector<std::vector<int64_t>> orders;
  if (all <= count) {  // every order, the identity first
    do orders.push_back(order);
    while (std::next_permutation(order.begin(), order.end()));
    return orders;
  }
  std::set<std::vector<int64_t>> seen{order};
  orders.push_back(order);
  std::mt19937_64 gen(0x5eedull);  // fixed: the same request averages the same orders
  while (static_cast<int64_t>(orders.size()) < count) {
    std::shuffle(order.begin(), order.end(), gen);
    if (seen.insert(order).second) orders.push_back(order);
  }
  return orders;
}

OrderAveragedScore::OrderAveragedScore(std::unique_ptr<ScoreModel> inner, int64_t elements,
                                       std::vector<std::vector<int64_t>> orders)
    : inner_(std::move(inner)), elements_(elements), orders_(std::move(orders)) {
  if (orders_.empty()) throw InvalidArgument("the orders of a set's elements must number at least 1");
  for (const auto& order : orders_)
    if (static_cast<int64_t>(order.size()) != elements_)
      throw InvalidArgument("an order of a set's elements must name each of its " + std::to_string(elements_));
  for (const auto& order : orders_) indices_.push_back(at::tensor(order, at::kLong));
}

at::Tensor OrderAveragedScore::reordered(const at::Tensor& y, int64_t k) const {
  if (!y.defined()) throw InvalidArgument("averaging over a set's orders needs the condition");
  const int64_t rows = y.size(0), width = y.numel() / std::max<int64_t>(rows, 1) / elements_;
  return y.reshape({rows, elements_, width}).index_select(1, indices_[k].to(y.device())).reshape(y.sizes());
}

template <typename Fn>
at::Tensor OrderAveragedScore::mean_over_orders(const at::Tensor& y, Fn fn) const {
  at::Tensor sum = fn(reordered(y, 0)).clone();  // a copy: the inner model may keep what it returns
  for (size_t k = 1; k < orders_.size(); ++k) sum.add_(fn(reordered(y, static_cast<int64_t>(k))));
  return sum.div_(static_cast<double>(orders_.size()));
}

at::Tensor OrderAveragedScore::score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  return mean_over_orders(y, [&](const at::Tensor& yk) { return inner_->score(x, t, yk); });
}

at::Tensor OrderAveragedScore::velocity(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y, const SDE& sde) {
  return mean_over_orders(y, [&](const at::Tensor& yk) { return inner_->velocity(x, t, yk, sde); });
}

ScoreModel::WithDivergence OrderAveragedScore::score_and_divergence(const at::Tensor& x, const at::Tensor& t,
                                                                   const at::Tensor& y) {
  at::Tensor divergence;
  at::Tensor score = mean_over_orders(y, [&](const at::Tensor& yk) {
    WithDivergence part = inner_->score_and_divergence(x, t, yk);
    divergence = divergence.defined() ? divergence.add_(part.divergence) : part.divergence.clone();
    return part.score;
  });
  return {score, divergence.div_(static_cast<double>(orders_.size()))};
}

ScoreModel::VelocityWithDivergence OrderAveragedScore::velocity_and_divergence(const at::Tensor& x,
                                                                               const at::Tensor& t,
                                                                               const at::Tensor& y, const SDE& sde) {
  at::Tensor divergence;
  at::Tensor velocity = mean_over_orders(y, [&](const at::Tensor& yk) {
    VelocityWithDivergence part = inner_->velocity_and_divergence(x, t, yk, sde);
    divergence = divergence.defined() ? divergence.add_(part.divergence) : part.divergence.clone();
    return part.velocity;
  });
  return {velocity, divergence.div_(static_cast<double>(orders_.size()))};
}

}  // namespace sbgm
