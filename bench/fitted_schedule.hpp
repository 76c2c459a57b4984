#pragma once
// A step schedule fitted to a model and to draws of its data, after "Align your steps" (Sabour et
// al. 2024) — measured in sbgm_bench_samplers (--fit-data) and not kept in the library
// (docs/samplers.md, "Tried and not kept: a fitted step schedule").
//
// A few-step solver of the plug-in reverse SDE holds the model's denoised estimate x0_hat fixed
// across each step; with it frozen at the step's start s, Girsanov's theorem bounds the
// divergence of the solver's path from the model's own SDE by the step costs
//   C(s, t) = integral from lambda_s to lambda_t of e^(2 lambda) E|x0_hat(x_l, l) - x0_hat(x_s, s)|^2 dl
// (times (1 - lambda/2)^2 / (1 - lambda), the same for every step; lambda here the half log-SNR,
// g^2 dt = -2 sigma^2 d lambda on every linear SDE turning the bound's g^2 m^2 / sigma^4 into
// e^(2 lambda)). The expectation is over data x0 and one noise draw z carried along the forward
// path x_l = m_l x0 + sigma_l z, as in that paper. The costs are measured once on a grid uniform
// in lambda (one evaluation per node and row); the schedule of K steps is the least-cost path of K
// steps through the grid (dynamic programming, exact on the grid), optionally with successive
// steps differing in length by at most a factor `ratio`.

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "sbgm/sample/multistep.hpp"
#include "sbgm/sde/sde.hpp"

namespace sbgm::bench {

struct StepCosts {
  std::vector<double> lambda;  // the grid's nodes, increasing: lambda(T) first, lambda(t_eps) last
  std::vector<double> cost;    // cost[a * nodes + b]: a step from node a to node b > a
  int64_t nodes() const { return static_cast<int64_t>(lambda.size()); }
  double at(int64_t a, int64_t b) const { return cost[static_cast<size_t>(a * nodes() + b)]; }
};

// The step costs of model on sde at `nodes` nodes from the rows x0 ([N, F], the model's space).
inline StepCosts measure_step_costs(ScoreModel& model, const SDE& sde, const at::Tensor& x0, int64_t nodes,
                                    at::Generator gen) {
  if (nodes < 3) throw std::runtime_error("the fitted schedule's grid needs at least 3 noise levels");
  if (!std::isfinite(sde.noise_to_signal(sde.T())))
    throw std::runtime_error("the fitted schedule spaces noise levels, which are infinite at t = T on this path");
  at::NoGradGuard no_grad;
  StepCosts out;
  const double top = -std::log(sde.noise_to_signal(sde.T())), bottom = -std::log(sde.noise_to_signal(sde.t_eps()));
  for (int64_t j = 0; j < nodes; ++j) out.lambda.push_back(top + (bottom - top) * double(j) / double(nodes - 1));
  const at::Tensor z = at::normal(0.0, 1.0, x0.sizes(), gen, x0.options());
  const at::Tensor t_buffer = at::empty({x0.size(0)}, x0.options());
  std::vector<at::Tensor> estimates;  // [N, F] in double at every node
  for (int64_t j = 0; j < nodes; ++j) {
    const double t = j == 0 ? sde.T() : j == nodes - 1 ? sde.t_eps() : sde.time_of_noise_to_signal(std::exp(-out.lambda[j]));
    const at::Tensor x = x0 * sde.mean_coeff(t) + z * sde.marginal_std(t);
    estimates.push_back(denoised_estimate(model, sde, x, at::Tensor(), t_buffer, t).flatten(1).to(at::kDouble));
  }
  const at::Tensor all = at::stack(estimates);
  out.cost.assign(static_cast<size_t>(nodes * nodes), 0.0);
  for (int64_t a = 0; a + 1 < nodes; ++a) {
    // e^(2 lambda) E|x0_hat - x0_hat_a|^2 at the nodes after a, integrated by the trapezoid rule.
    const at::Tensor squared =
        (all.narrow(0, a + 1, nodes - a - 1) - all[a]).pow(2).sum({1, 2}).div(static_cast<double>(x0.size(0))).contiguous();
    const double* e = squared.data_ptr<double>();
    double previous = 0, total = 0;
    for (int64_t b = a + 1; b < nodes; ++b) {
      const double value = std::exp(2 * out.lambda[b]) * e[b - a - 1];
      total += 0.5 * (previous + value) * (out.lambda[b] - out.lambda[b - 1]);
      previous = value;
      out.cost[static_cast<size_t>(a * nodes + b)] = total;
    }
  }
  return out;
}

// steps + 1 decreasing times from T to t_eps: the least-cost path of `steps` steps through the
// grid whose successive steps differ by at most `ratio` (infinite: any).
inline std::vector<double> fitted_step_times(const StepCosts& costs, const SDE& sde, int64_t steps, double ratio) {
  const int64_t nodes = costs.nodes();
  if (steps < 1 || steps > nodes - 1) throw std::runtime_error("the fitted schedule's grid has too few nodes");
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // best[c * nodes + b]: the least cost of reaching node c in k steps, the last from b; before[k]:
  // the node before b on that path.
  const auto index = [nodes](int64_t c, int64_t b) { return static_cast<size_t>(c * nodes + b); };
  std::vector<double> best(static_cast<size_t>(nodes * nodes), kInf), next(best.size());
  std::vector<std::vector<int32_t>> before(steps + 1);
  for (int64_t c = 1; c < nodes; ++c) best[index(c, 0)] = costs.at(0, c);
  for (int64_t k = 2; k <= steps; ++k) {
    std::fill(next.begin(), next.end(), kInf);
    before[k].assign(best.size(), -1);
    for (int64_t b = k - 1; b < nodes - 1; ++b)
      for (int64_t a = k - 2; a < b; ++a) {
        if (best[index(b, a)] == kInf) continue;
        const double h = costs.lambda[b] - costs.lambda[a];
        for (int64_t c = b + 1; c < nodes; ++c) {
          const double step = costs.lambda[c] - costs.lambda[b];
          if (step > ratio * h) break;
          if (step * ratio < h) continue;
          const double total = best[index(b, a)] + costs.at(b, c);
          if (total < next[index(c, b)]) {
            next[index(c, b)] = total;
            before[k][index(c, b)] = static_cast<int32_t>(a);
          }
        }
      }
    std::swap(best, next);
  }
  std::vector<int64_t> path(steps + 1);
  path[steps] = nodes - 1;
  double least = kInf;
  for (int64_t b = 0; b < nodes - 1; ++b)
    if (best[index(nodes - 1, b)] < least) least = best[index(nodes - 1, b)], path[steps - 1] = b;
  if (least == kInf) throw std::runtime_error("no path of that many steps keeps the step ratio");
  for (int64_t k = steps; k >= 2; --k) path[k - 2] = before[k][index(path[k], path[k - 1])];
  std::vector<double> times;
  for (int64_t k = 0; k <= steps; ++k) times.push_back(sde.time_of_noise_to_signal(std::exp(-costs.lambda[path[k]])));
  times.front() = sde.T();
  times.back() = sde.t_eps();
  return times;
}

}  // namespace sbgm::bench
