#include "sbgm/data/exchangeable_elements.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

// Columns standardised by the statistics of dims (constant columns only centred).
at::Tensor standardised(const at::Tensor& t, at::IntArrayRef dims) {
  const at::Tensor sd = t.std(dims, /*unbiased=*/false, /*keepdim=*/true);
  return (t - t.mean(dims, /*keepdim=*/true)) / at::where(sd > 0, sd, at::ones_like(sd));
}

// The upper tail of chi-squared(k) at x by Wilson and Hilferty's cube-root normal.
double chi_squared_tail(double x, int64_t k) {
  const double v = 2.0 / (9.0 * static_cast<double>(k));
  const double z = (std::cbrt(x / static_cast<double>(k)) - (1.0 - v)) / std::sqrt(v);
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

// The pairs of elements whose products are compared: each with the next, both ways round,
// cyclically (for two elements just the two orders).
std::vector<std::pair<int64_t, int64_t>> neighbour_pairs(int64_t k) {
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t a = 0; a < (k == 2 ? 1 : k); ++a) {
    pairs.emplace_back(a, (a + 1) % k);
    pairs.emplace_back((a + 1) % k, a);
  }
  return pairs;
}

}  // namespace

ExchangeabilityTest test_exchangeable_elements(const at::Tensor& data, const at::Tensor& cond, int64_t width) {
  if (width < 1) throw InvalidArgument("a set's elements must have at least one feature");
  if (data.size(0) != cond.size(0)) throw InvalidArgument("the exchangeability test needs one condition per row");
  ExchangeabilityTest test;
  test.width = width;
  const int64_t rows = cond.size(0), features = cond.numel() / std::max<int64_t>(rows, 1);
  const int64_t k = features / width;
  if (rows < 2 || features % width != 0 || k < 2) return test;
  const int64_t d = data.numel() / rows;
  // How many differences the test compares: per element but the first its features, their
  // products and their products with θ's; per compared pair but the first its products.
  const int64_t per_element = width + width * (width + 1) / 2 + d * width;
  const int64_t pairs = static_cast<int64_t>(neighbour_pairs(k).size());
  const int64_t compared = (k - 1) * per_element + (pairs - 1) * width * width;
  const int64_t stride = (rows + kMostSetTestRows - 1) / kMostSetTestRows;
  const int64_t n = (rows + stride - 1) / stride;
  if (compared > kMostSetMoments || n < kRowsPerSetMoment * compared) return test;

  const at::Tensor every = at::arange(0, rows, stride, at::kLong);
  const at::Tensor z = standardised(cond.reshape({rows, k, width}).index_select(0, every).to(at::kCPU, at::kDouble), {0, 1});
  const at::Tensor theta = standardised(data.reshape({rows, d}).index_select(0, every).to(at::kCPU, at::kDouble), {0});
  const at::Tensor upper = at::triu_indices(width, width, 0, at::kLong);
  const at::Tensor squares = (z.unsqueeze(3) * z.unsqueeze(2)).reshape({n, k, width * width});
  const at::Tensor products = squares.index_select(2, upper[0] * width + upper[1]);
  const at::Tensor with_theta = (theta.unsqueeze(1).unsqueeze(3) * z.unsqueeze(2)).reshape({n, k, d * width});
  const at::Tensor element = at::cat({z, products, with_theta}, 2);  // [n, k, per_element]
  std::vector<at::Tensor> pair_products;
  for (const auto& [a, b] : neighbour_pairs(k))
    pair_products.push_back((z.select(1, a).unsqueeze(2) * z.select(1, b).unsqueeze(1)).reshape({n, width * width}));
  const at::Tensor pair = at::stack(pair_products, 1);  // [n, pairs, width²]
  const at::Tensor differences =
      at::cat({(element.narrow(1, 1, k - 1) - element.narrow(1, 0, 1)).reshape({n, -1}),
               (pair.narrow(1, 1, pairs - 1) - pair.narrow(1, 0, 1)).reshape({n, -1})},
              1);

  const at::Tensor mean = differences.mean(0);
  const at::Tensor centred = differences - mean;
  const at::Tensor covariance = at::matmul(centred.t(), centred) / static_cast<double>(n - 1);
  auto [values, vectors] = at::linalg_eigh(covariance);
  const double largest = values.max().item<double>();
  if (!(largest > 0)) return test;  // the elements are identical in every row
  const at::Tensor kept = values > 1e-9 * largest;
  const int64_t rank = kept.sum().item<int64_t>();
  if (n <= rank) return test;
  const at::Tensor projected = at::matmul(mean, vectors).masked_select(kept);
  const double t2 = static_cast<double>(n) * (projected.square() / values.masked_select(kept)).sum().item<double>();
  test.tested = true;
  test.moments = rank;
  // Hotelling: T² (n - r) / (r (n - 1)) is F(r, n - r), which r times is chi-squared(r) for n >> r.
  test.statistic = t2 * static_cast<double>(n - rank) / static_cast<double>(n - 1);
  test.p_value = chi_squared_tail(test.statistic, rank);
  return test;
}

ExchangeabilityTest find_set_elements(const at::Tensor& data, const at::Tensor& cond) {
  const int64_t rows = cond.size(0), features = rows > 0 ? cond.numel() / rows : 0;
  for (int64_t width = 1; 2 * width <= features; ++width) {
    if (features % width != 0) continue;
    const ExchangeabilityTest test = test_exchangeable_elements(data, cond, width);
    if (test.exchangeable()) return test;
  }
  return ExchangeabilityTest{};
}

}  // namespace sbgm
