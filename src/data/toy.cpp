#include "sbgm/data/toy.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {
namespace {

constexpr double kRingRadius = 2.0, kRingStd = 0.2;
constexpr double kBimodalMean = 2.0, kBimodalStd = 0.5;

at::Tensor circle_points(int64_t k, double radius) {
  const at::Tensor a = at::arange(k, at::kDouble) * (2 * M_PI / k);
  return at::stack({at::cos(a), at::sin(a)}, 1) * radius;
}

}  // namespace

const std::vector<std::string>& toy_dataset_names() {
  static const std::vector<std::string> names{"circle8", "ring8", "swissroll", "moons", "checkerboard", "bimodal1d"};
  return names;
}

std::optional<GaussianMixture> toy_dataset_mixture(const std::string& name) {
  const auto dbl = at::TensorOptions().dtype(at::kDouble);
  if (name == "ring8") {
    return GaussianMixture(at::full({8}, 1.0 / 8, dbl), circle_points(8, kRingRadius),
                           at::eye(2, dbl).expand({8, 2, 2}) * (kRingStd * kRingStd));
  }
  if (name == "bimodal1d") {
    return GaussianMixture(at::full({2}, 0.5, dbl), at::tensor({-kBimodalMean, kBimodalMean}, dbl).reshape({2, 1}),
                           at::full({2, 1, 1}, kBimodalStd * kBimodalStd, dbl));
  }
  return std::nullopt;
}

at::Tensor make_toy_dataset(const std::string& name, int64_t n, uint64_t seed) {
  if (n < 1) throw InvalidArgument("dataset size must be at least 1");
  at::Generator gen = make_generator(at::kCPU, seed);
  const auto dbl = at::TensorOptions().dtype(at::kDouble);
  if (name == "circle8") return circle_points(8, 1.0).to(at::kFloat);
  if (auto mixture = toy_dataset_mixture(name)) return mixture->sample(n, gen);
  if (name == "swissroll") {
    const at::Tensor t = (1 + 2 * at::rand({n}, gen, dbl)) * (1.5 * M_PI);
    const at::Tensor x = at::stack({t * at::cos(t), t * at::sin(t)}, 1) / 5.0;
    return (x + 0.05 * at::normal(0.0, 1.0, {n, 2}, gen, dbl)).to(at::kFloat);
  }
  if (name == "moons") {
    const at::Tensor upper = at::rand({n}, gen, dbl) < 0.5;
    const at::Tensor a = at::rand({n}, gen, dbl) * M_PI;
    const at::Tensor x = at::where(upper, at::cos(a), 1 - at::cos(a));
    const at::Tensor y = at::where(upper, at::sin(a), 0.5 - at::sin(a));
    return (at::stack({x - 0.5, y - 0.25}, 1) * 2 + 0.1 * at::normal(0.0, 1.0, {n, 2}, gen, dbl)).to(at::kFloat);
  }
  if (name == "checkerboard") {
    // Pick a cell among the 8 dark ones of a 4x4 board (row + column even), then a point in it.
    const at::Tensor cell = at::randint(0, 8, {n}, gen, at::TensorOptions().dtype(at::kLong));
    const at::Tensor row = at::floor_divide(cell, 2);
    const at::Tensor col = 2 * at::remainder(cell, 2) + at::remainder(row, 2);
    const at::Tensor u = at::rand({n, 2}, gen, dbl);
    return (at::stack({col, row}, 1).to(at::kDouble) + u - 2.0).to(at::kFloat);
  }
  std::string names;
  for (const auto& s : toy_dataset_names()) names += (names.empty() ? "" : ", ") + s;
  throw InvalidArgument("unknown dataset '" + name + "' (expected one of: " + names + ")");
}

}  // namespace sbgm
