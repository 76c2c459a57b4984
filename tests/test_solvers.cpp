// ODE solvers: convergence orders, tolerances met on problems with known solutions, and agreement
// with scipy's solve_ivp as an independent oracle.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "sbgm/io/npy.hpp"
#include "sbgm/solvers/ode.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;

namespace {

const auto kDouble = at::TensorOptions().dtype(at::kDouble);

// y' = A y with A a rotation plus decay; y(t) = expm(A t) y0, here in closed form.
at::Tensor linear_rhs(double, const at::Tensor& y) {
  // A = [[-0.5, -2], [2, -0.5]] applied to rows of y [B, 2].
  return at::stack({-0.5 * y.select(1, 0) - 2.0 * y.select(1, 1), 2.0 * y.select(1, 0) - 0.5 * y.select(1, 1)}, 1);
}
at::Tensor linear_exact(const at::Tensor& y0, double t) {
  const double d = std::exp(-0.5 * t), c = std::cos(2 * t), s = std::sin(2 * t);
  return at::stack({d * (c * y0.select(1, 0) - s * y0.select(1, 1)), d * (s * y0.select(1, 0) + c * y0.select(1, 1))}, 1);
}

double error_with_steps(SolverKind kind, int64_t steps) {
  SolverConfig c;
  c.kind = kind;
  c.steps = steps;
  const at::Tensor y0 = at::tensor({1.0, 0.5, -0.3, 2.0}, kDouble).reshape({2, 2});
  const at::Tensor y = odeint(linear_rhs, y0, 0.0, 2.0, c);
  return (y - linear_exact(y0, 2.0)).abs().max().item<double>();
}

}  // namespace

TEST(FixedStepSolvers, ConvergeAtTheirOrder) {
  for (auto [kind, order] : {std::pair{SolverKind::Euler, 1}, {SolverKind::Heun, 2}, {SolverKind::RK4, 4}}) {
    const double e1 = error_with_steps(kind, 200), e2 = error_with_steps(kind, 400);
    const double observed = std::log2(e1 / e2);
    EXPECT_NEAR(observed, order, 0.15) << to_string(kind) << " errors " << e1 << " " << e2;
  }
}

TEST(FixedStepSolvers, IntegrateBackwardInTime) {
  SolverConfig c;
  c.kind = SolverKind::RK4;
  c.steps = 400;
  const at::Tensor y2 = linear_exact(at::ones({1, 2}, kDouble), 2.0);
  const at::Tensor y0 = odeint(linear_rhs, y2, 2.0, 0.0, c);
  EXPECT_TRUE(at::allclose(y0, at::ones({1, 2}, kDouble), 1e-8, 1e-8));
}

// The error of an adaptive solve scales with its tolerance, and meets it up to a small factor.
TEST(AdaptiveSolvers, MeetTheirTolerance) {
  for (auto [kind, evals_per_step] : {std::pair{SolverKind::Dopri5, 6}, {SolverKind::Tsit5, 6}, {SolverKind::Bosh3, 3}}) {
    const at::Tensor y0 = at::tensor({1.0, 0.5, -0.3, 2.0}, kDouble).reshape({2, 2});
    double previous = 1;
    for (double tol : {1e-4, 1e-6, 1e-8}) {
      SolverConfig c;
      c.kind = kind;
      c.rtol = c.atol = tol;
      SolveStats stats;
      const at::Tensor y = odeint(linear_rhs, y0, 0.0, 3.0, c, &stats);
      const double err = (y - linear_exact(y0, 3.0)).abs().max().item<double>();
      EXPECT_LT(err, 20 * tol) << to_string(kind) << " tol " << tol;
      EXPECT_LT(err, previous);
      EXPECT_GT(stats.accepted, 0);
      EXPECT_GE(stats.function_evals, evals_per_step * stats.accepted);
      previous = err;
    }
  }
}

// A nonlinear problem against scipy: DOP853 at tight tolerances for the solution, and RK45 and
// RK23 at a loose one, which the integral controller must reproduce step for step (same evaluations).
TEST(AdaptiveSolvers, AgreeWithScipy) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("sbgm_ode_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string out = (dir / "scipy.npy").string();
  const std::string script =
      "import numpy as np\n"
      "from scipy.integrate import solve_ivp\n"
      "f = lambda t, y: [y[1], (1 - y[0]**2) * y[1] - y[0]]\n"
      "r = solve_ivp(f, (0, 4), [2.0, 0.0], method='DOP853', rtol=1e-12, atol=1e-12)\n"
      "np.save('" + out + "', r.y[:, -1])\n"
      "for m in ('RK45', 'RK23'):\n"
      "    r = solve_ivp(f, (0, 4), [2.0, 0.0], method=m, rtol=1e-5, atol=1e-5)\n"
      "    np.save('" + (dir / "").string() + "' + m + '.npy', np.concatenate([r.y[:, -1], [r.nfev, r.t.size - 1]]))\n";
  std::ofstream(dir / "oracle.py") << script;
  ASSERT_EQ(std::system((std::string(SBGM_PYTHON) + " " + (dir / "oracle.py").string()).c_str()), 0);
  const at::Tensor expected = read_npy(out, true);
  auto van_der_pol = [](double, const at::Tensor& y) {
    const at::Tensor a = y.select(1, 0), b = y.select(1, 1);
    return at::stack({b, (1 - a * a) * b - a}, 1);
  };
  const at::Tensor y0 = at::tensor({2.0, 0.0}, kDouble).reshape({1, 2});
  for (auto kind : {SolverKind::Dopri5, SolverKind::Tsit5, SolverKind::Bosh3}) {
    SolverConfig c;
    c.kind = kind;
    c.rtol = c.atol = 1e-9;
    const at::Tensor y = odeint(van_der_pol, y0, 0.0, 4.0, c);
    EXPECT_TRUE(at::allclose(y.reshape({2}), expected, 1e-6, 1e-6)) << to_string(kind) << y << expected;
  }
  // Dormand-Prince is scipy's RK45 and Bogacki-Shampine its RK23.
  for (auto [kind, method] : {std::pair{SolverKind::Dopri5, "RK45"}, {SolverKind::Bosh3, "RK23"}}) {
    const at::Tensor scipy = read_npy((dir / (std::string(method) + ".npy")).string(), true);
    SolverConfig c;
    c.kind = kind;
    c.control = StepControl::Integral;
    c.rtol = c.atol = 1e-5;
    SolveStats stats;
    const at::Tensor y = odeint(van_der_pol, y0, 0.0, 4.0, c, &stats);
    EXPECT_EQ(stats.function_evals, scipy[2].item<double>()) << method;
    EXPECT_EQ(stats.accepted, scipy[3].item<double>()) << method;
    EXPECT_TRUE(at::allclose(y.reshape({2}), scipy.narrow(0, 0, 2), 1e-12, 1e-12)) << method << y << scipy;
  }
  fs::remove_all(dir);
}

TEST(AdaptiveSolvers, MaxStepsAndBadTolerancesAreClearErrors) {
  SolverConfig c;
  c.max_steps = 3;
  c.rtol = c.atol = 1e-10;
  const at::Tensor y0 = at::ones({1, 2}, kDouble);
  try {
    odeint(linear_rhs, y0, 0.0, 10.0, c);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("max_steps"), std::string::npos);
  }
  c = SolverConfig{};
  c.rtol = 0;
  EXPECT_THROW(odeint(linear_rhs, y0, 0.0, 1.0, c), InvalidArgument);
  EXPECT_THROW(solver_kind_from_string("rk45"), InvalidArgument);
  EXPECT_THROW(step_control_from_string("p"), InvalidArgument);
}
