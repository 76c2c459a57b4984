// ODE solvers: convergence orders, tolerances met on problems with known solutions, and agreement
// with scipy's solve_ivp as an independent oracle.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "sbgm/io/npy.hpp"
#include "scratch_dir.hpp"
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
  const fs::path dir = scratch_dir("ode");
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

// A field nearly still at t0 that is not defined past t1 (as a VE path's velocity at t_eps, whose
// coefficients overflow beyond T): the starting step's trial stays inside [t0, t1].
// y' = 1e-9 exp(5 t) on [0, 1], infinite beyond 1.
TEST(AdaptiveSolvers, TheStartingStepStaysInsideTheInterval) {
  const ODEFunction f = [](double t, const at::Tensor& y) {
    return at::full_like(y, t <= 1.0 + 1e-12 ? 1e-9 * std::exp(5 * t) : INFINITY);
  };
  SolverConfig c;
  const at::Tensor y0 = at::ones({1, 1}, kDouble);
  const at::Tensor y = odeint(f, y0, 0.0, 1.0, c);
  EXPECT_NEAR(y.item<double>(), 1.0 + 1e-9 * (std::exp(5.0) - 1) / 5, 1e-8);  // within rtol of y
  const at::Tensor back = odeint([&f](double t, const at::Tensor& z) { return f(1.0 - t, z); }, y0, 0.0, 1.0, c);
  EXPECT_TRUE(back.isfinite().all().item<bool>());
}

// Forced Van der Pol oscillators, one per row with its own stiffness mu: rows that need very
// different steps, and a right-hand side that depends on each row's own time.
at::Tensor forced_van_der_pol(const at::Tensor& t, const at::Tensor& y, const at::Tensor& mu) {
  const at::Tensor a = y.select(1, 0), b = y.select(1, 1);
  return at::stack({b, mu * (1 - a * a) * b - a + 0.5 * at::sin(t)}, 1);
}

TEST(RowwiseSolvers, EachRowTakesTheStepsItWouldTakeAlone) {
  const at::Tensor mu = at::tensor({0.5, 1.0, 4.0, 8.0, 2.0}, kDouble);
  const at::Tensor y0 = at::tensor({2.0, 0.0, 1.0, -1.0, -0.5, 0.3, 0.1, 0.1, 0.5, 0.5}, kDouble).reshape({5, 2});
  for (auto kind : {SolverKind::Dopri5, SolverKind::Tsit5, SolverKind::Bosh3}) {
    for (auto control : {StepControl::PI, StepControl::Integral}) {
      for (auto [t0, t1] : {std::pair{0.0, 6.0}, {1.5, 0.0}}) {
        SolverConfig c;
        c.kind = kind;
        c.control = control;
        c.rtol = c.atol = 1e-6;
        SolveStats together;
        const at::Tensor y = odeint_rowwise(
            [&](const at::Tensor& t, const at::Tensor& x, const at::Tensor& rows) {
              EXPECT_EQ(t.sizes(), rows.sizes());
              return forced_van_der_pol(t, x, mu.index_select(0, rows));
            },
            y0, t0, t1, c, &together);
        SolveStats sum;
        int64_t most_evals = 0;
        for (int64_t i = 0; i < y0.size(0); ++i) {
          SolveStats alone;
          const at::Tensor yi = odeint(
              [&](double t, const at::Tensor& x) {
                return forced_van_der_pol(at::full({1}, t, kDouble), x, mu.narrow(0, i, 1));
              },
              y0.narrow(0, i, 1), t0, t1, c, &alone);
          EXPECT_TRUE(at::allclose(y.narrow(0, i, 1), yi, 1e-10, 1e-10)) << to_string(kind) << " row " << i;
          sum.accepted += alone.accepted;
          sum.rejected += alone.rejected;
          sum.row_evals += alone.row_evals;
          most_evals = std::max(most_evals, alone.function_evals);
        }
        const std::string what = to_string(kind) + " " + to_string(control) + " from " + std::to_string(t0);
        EXPECT_EQ(together.accepted, sum.accepted) << what;
        EXPECT_EQ(together.rejected, sum.rejected) << what;
        EXPECT_EQ(together.row_evals, sum.row_evals) << what;
        // One batched call per stage of the row that needs the most: the stiff rows set the
        // number of calls, but the easy ones have left the batch long before.
        EXPECT_EQ(together.function_evals, most_evals) << what;
        EXPECT_LT(together.row_evals, y0.size(0) * most_evals) << what;
      }
    }
  }
}

TEST(RowwiseSolvers, FixedStepsAndErrorsAreOdeints) {
  const at::Tensor y0 = at::tensor({1.0, 0.5, -0.3, 2.0}, kDouble).reshape({2, 2});
  auto linear = [](const at::Tensor&, const at::Tensor& y, const at::Tensor&) { return linear_rhs(0, y); };
  SolverConfig c;
  c.kind = SolverKind::RK4;
  c.steps = 20;
  SolveStats stats;
  EXPECT_TRUE(at::allclose(odeint_rowwise(linear, y0, 0.0, 2.0, c, &stats), odeint(linear_rhs, y0, 0.0, 2.0, c)));
  EXPECT_EQ(stats.function_evals, 80);
  EXPECT_EQ(stats.row_evals, 160);
  c = SolverConfig{};
  c.max_steps = 3;
  c.rtol = c.atol = 1e-10;
  try {
    odeint_rowwise(linear, y0, 0.0, 10.0, c);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("max_steps"), std::string::npos) << e.what();
  }
  EXPECT_THROW(odeint_rowwise(linear, at::ones({}, kDouble), 0.0, 1.0, SolverConfig{}), InvalidArgument);
  auto blows_up = [](const at::Tensor&, const at::Tensor& y, const at::Tensor&) { return y * y * 1e300; };
  EXPECT_THROW(odeint_rowwise(blows_up, y0, 0.0, 1.0, SolverConfig{}), std::runtime_error);
}
