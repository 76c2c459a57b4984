// Two-sample distances against scipy (energy distance in 1-D) and NumPy (MMD, energy distance in
// 2-D), and their defining properties.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_harness.hpp"
#include "sbgm/eval/metrics.hpp"
#include "sbgm/io/npy.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

TEST(Metrics, AgreeWithScipyAndNumPy) {
  const fs::path dir = scratch() / "metrics";
  fs::create_directories(dir);
  const at::Tensor a1 = at::randn({700, 1}, at::kDouble), b1 = at::randn({500, 1}, at::kDouble) * 1.3 + 0.2;
  const at::Tensor a2 = at::randn({900, 2}, at::kDouble), b2 = at::randn({1100, 2}, at::kDouble) + 0.3;
  write_npy((dir / "a1.npy").string(), a1);
  write_npy((dir / "b1.npy").string(), b1);
  write_npy((dir / "a2.npy").string(), a2);
  write_npy((dir / "b2.npy").string(), b2);
  std::ofstream(dir / "oracle.py") << "import numpy as np, sys\n"
                                      "from scipy.stats import energy_distance\n"
                                      "from scipy.spatial.distance import cdist\n"
                                      "d = sys.argv[1]\n"
                                      "L = lambda n: np.load(f'{d}/{n}.npy')\n"
                                      "a1, b1, a2, b2 = L('a1'), L('b1'), L('a2'), L('b2')\n"
                                      "e1 = energy_distance(a1[:, 0], b1[:, 0])\n"
                                      "e2 = np.sqrt(2 * cdist(a2, b2).mean() - cdist(a2, a2).mean() - cdist(b2, b2).mean())\n"
                                      "k = lambda u, v: np.exp(-cdist(u, v, 'sqeuclidean') / (2 * 0.7 ** 2))\n"
                                      "n, m = len(a2), len(b2)\n"
                                      "mmd = (k(a2, a2).sum() - n) / (n * (n - 1)) + (k(b2, b2).sum() - m) / (m * (m - 1)) - 2 * k(a2, b2).mean()\n"
                                      "np.save(f'{d}/want.npy', np.array([e1, e2, mmd]))\n";
  ASSERT_EQ(run_python((dir / "oracle.py").string() + " " + dir.string()), 0);
  const at::Tensor want = read_npy((dir / "want.npy").string(), true);
  EXPECT_NEAR(energy_distance(a1, b1), want[0].item<double>(), 1e-10);
  EXPECT_NEAR(energy_distance(a2, b2), want[1].item<double>(), 1e-10);
  EXPECT_NEAR(mmd_rbf(a2, b2, 0.7), want[2].item<double>(), 1e-10);
}

TEST(Metrics, Properties) {
  const at::Tensor x = at::randn({300, 3}, at::kDouble);
  // The distance is the square root of a difference of pair means of about 2, so rounding of
  // ~1e-13 in those means (their summation order varies with threads) shows as ~1e-6 in it:
  // compare its square.
  const auto squared = [](double d) { return d * d; };
  EXPECT_NEAR(squared(energy_distance(x, x)), 0.0, 1e-10);
  EXPECT_NEAR(squared(energy_distance(x, at::flip(x, {0}))), 0.0, 1e-10);  // order does not matter
  const double near = energy_distance(x, x + 0.1), far = energy_distance(x, x + 1.0);
  EXPECT_LT(near, far);
  EXPECT_GT(mmd_rbf(x, x + 1.0), mmd_rbf(x, x + 0.1));
  EXPECT_GT(mmd_rbf(x, x + 0.5), 0.0);  // bandwidth from the median heuristic
  EXPECT_THROW(energy_distance(x, at::randn({10, 2})), std::exception);
}
