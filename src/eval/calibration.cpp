#include "sbgm/eval/calibration.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "sbgm/util/error.hpp"

namespace sbgm {

at::Tensor sbc_ranks(const at::Tensor& samples, const at::Tensor& truth) {
  if (samples.dim() != 3 || truth.dim() != 2 || samples.size(0) != truth.size(0) || samples.size(2) != truth.size(1))
    throw InvalidArgument("SBC needs samples [S, L, D] and truths [S, D] of the same S and D");
  return samples.lt(truth.unsqueeze(1)).sum(1).to(at::kLong);
}

at::Tensor rank_fractions(const at::Tensor& ranks, int64_t L) {
  return (ranks.to(at::kDouble) + 0.5) / static_cast<double>(L + 1);
}

namespace {

// P(K > lambda) for the Kolmogorov distribution: the alternating series converges fast for large
// lambda, the theta-function form for small.
double kolmogorov_survival(double lambda) {
  if (lambda <= 0) return 1.0;
  if (lambda < 1.18) {
    const double pi2 = M_PI * M_PI, y = -pi2 / (8 * lambda * lambda);
    double sum = 0;
    for (int k = 1; k <= 20; ++k) sum += std::exp(y * (2 * k - 1) * (2 * k - 1));
    return std::clamp(1.0 - std::sqrt(2 * M_PI) / lambda * sum, 0.0, 1.0);
  }
  double sum = 0;
  for (int k = 1; k <= 100; ++k) {
    const double term = std::exp(-2.0 * k * k * lambda * lambda);
    sum += (k % 2 == 1 ? term : -term);
    if (term < 1e-16) break;
  }
  return std::clamp(2 * sum, 0.0, 1.0);
}

}  // namespace

UniformityTest ks_uniform(const at::Tensor& u) {
  const int64_t n = u.numel();
  if (n < 1) throw InvalidArgument("a uniformity test needs at least one value");
  const at::Tensor sorted = std::get<0>(u.to(at::kDouble).reshape({-1}).sort());
  const at::Tensor i = at::arange(n, sorted.options());
  const double above = (((i + 1) / static_cast<double>(n)) - sorted).max().item<double>();
  const double below = (sorted - i / static_cast<double>(n)).max().item<double>();
  UniformityTest test;
  test.statistic = std::max(above, below);
  const double root = std::sqrt(static_cast<double>(n));
  test.p_value = kolmogorov_survival((root + 0.12 + 0.11 / root) * test.statistic);
  return test;
}

std::vector<double> expected_coverage(const at::Tensor& u, const std::vector<double>& levels) {
  const at::Tensor v = u.to(at::kDouble).reshape({-1});
  std::vector<double> coverage;
  for (double a : levels) coverage.push_back(v.lt(a).to(at::kDouble).mean().item<double>());
  return coverage;
}

at::Tensor hpd_fractions(const at::Tensor& log_p_samples, const at::Tensor& log_p_truth) {
  if (log_p_samples.dim() != 2 || log_p_truth.dim() != 1 || log_p_samples.size(0) != log_p_truth.size(0))
    throw InvalidArgument("HPD coverage needs log-densities of samples [S, L] and of truths [S]");
  const at::Tensor truth = log_p_truth.to(at::kDouble).unsqueeze(1), samples = log_p_samples.to(at::kDouble);
  return (samples.gt(truth).to(at::kDouble) + 0.5 * samples.eq(truth).to(at::kDouble)).mean(1);
}

at::Tensor tarp_fractions(const at::Tensor& samples, const at::Tensor& truth, at::Generator gen) {
  if (samples.dim() != 3 || truth.dim() != 2 || samples.size(0) != truth.size(0) || samples.size(2) != truth.size(1))
    throw InvalidArgument("TARP needs samples [S, L, D] and truths [S, D] of the same S and D");
  const at::Tensor t = truth.to(at::kDouble), s = samples.to(at::kDouble);
  // Features on one scale, so that no parameter's units decide the distances.
  const at::Tensor centre = t.mean(0), spread = t.std(0).clamp_min(1e-12);
  const at::Tensor tn = (t - centre) / spread, sn = (s - centre) / spread;
  const at::Tensor lo = std::get<0>(tn.min(0)), hi = std::get<0>(tn.max(0));
  const at::Tensor reference = lo + (hi - lo) * at::rand(tn.sizes(), gen, tn.options());
  const at::Tensor truth_distance = (tn - reference).norm(2, {1}).unsqueeze(1);       // [S, 1]
  const at::Tensor sample_distance = (sn - reference.unsqueeze(1)).norm(2, {2});     // [S, L]
  return sample_distance.lt(truth_distance).to(at::kDouble).mean(1);
}

std::vector<double> coverage_levels() {
  std::vector<double> levels;
  for (int i = 1; i <= 19; ++i) levels.push_back(0.05 * i);
  levels.push_back(0.99);
  return levels;
}

at::Tensor central_fractions(const at::Tensor& u) { return (2 * u.to(at::kDouble) - 1).abs(); }

CalibrationCheck calibration_check(const std::string& name, const at::Tensor& u, const at::Tensor& c) {
  CalibrationCheck check;
  check.name = name;
  check.test = ks_uniform(u);
  const std::vector<double> levels = coverage_levels();
  check.coverage = expected_coverage(c, levels);
  double gap = 0;
  for (size_t i = 0; i < levels.size(); ++i) gap += check.coverage[i] - levels[i];
  check.mean_gap = gap / static_cast<double>(levels.size());
  return check;
}

std::string verdict(const CalibrationCheck& check, double alpha) {
  if (check.test.p_value >= alpha) return "calibrated";
  if (check.mean_gap < -0.02) return "overconfident";
  if (check.mean_gap > 0.02) return "underconfident";
  return "miscalibrated";
}

}  // namespace sbgm
