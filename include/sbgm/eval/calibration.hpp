#pragma once
// Is a posterior estimator calibrated? The checks SBI users run on held-out simulations
// (theta_s, x_s), s = 1..S, each with L posterior samples drawn given x_s. Every check reduces a
// simulation to one number that is uniform on [0, 1] exactly when the estimator is calibrated
// for that statistic, then compares those numbers with the uniform:
//  - simulation-based calibration (Talts et al. 2018): the rank of theta_s,d among the samples'
//    coordinate d, per parameter;
//  - highest-density coverage: the fraction of samples whose log-density exceeds theta_s's;
//  - TARP (Lemos et al. 2023): the fraction of samples closer than theta_s to a random
//    reference point, a joint check that needs no density.
// Expected coverage at credible level a is the fraction of simulations whose number is below a;
// a calibrated estimator has coverage a at every a, an overconfident one (too narrow) less.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace sbgm {

// ranks[s, d] = #{l : samples[s, l, d] < truth[s, d]}, in 0..L: samples [S, L, D], truth [S, D].
// Returns int64 [S, D].
at::Tensor sbc_ranks(const at::Tensor& samples, const at::Tensor& truth);

// The fractions (rank + 1/2) / (L + 1) of ranks in 0..L: what is uniform on (0, 1) for a
// calibrated estimator (up to the ranks' discreteness, 1 / (2 (L + 1)) at most).
at::Tensor rank_fractions(const at::Tensor& ranks, int64_t L);

// The one-sample Kolmogorov-Smirnov statistic of values u [N] against the uniform on [0, 1] and
// its asymptotic p-value (Stephens' correction for finite N).
struct UniformityTest {
  double statistic = 0, p_value = 1;
};
UniformityTest ks_uniform(const at::Tensor& u);

// Expected coverage of values u [N] in [0, 1]: the fraction of u below each credible level.
std::vector<double> expected_coverage(const at::Tensor& u, const std::vector<double>& levels);

// The highest-density statistic: per simulation, the fraction of samples whose log-density is
// above the truth's (ties count half), from log_p_samples [S, L] and log_p_truth [S]. The truth
// lies in the highest-density region of credible level a exactly when this is below a.
at::Tensor hpd_fractions(const at::Tensor& log_p_samples, const at::Tensor& log_p_truth);

// TARP's statistic with one reference point per simulation drawn uniformly in the bounding box
// of truth [S, D] (features scaled by the truths' spread first, as TARP does): the fraction of
// samples [S, L, D] nearer the reference than the truth. Returns [S].
at::Tensor tarp_fractions(const at::Tensor& samples, const at::Tensor& truth, at::Generator gen);

// The credible levels the coverage curves are read at: 0.05, 0.10, ..., 0.95, and 0.99.
std::vector<double> coverage_levels();

// For rank fractions u, the statistic whose coverage is that of central credible intervals:
// the truth lies in the central interval of level a exactly when |2u - 1| < a.
at::Tensor central_fractions(const at::Tensor& u);

// One check's verdict for a report: the uniformity test of u, the coverage curve of c (u itself,
// or the central statistic of SBC ranks) and its mean signed gap to the levels (negative:
// overconfident, too narrow; positive: underconfident, too wide).
struct CalibrationCheck {
  std::string name;  // "sbc theta_0", "hpd", "tarp", ...
  UniformityTest test;
  std::vector<double> coverage;  // at coverage_levels()
  double mean_gap = 0;
};
CalibrationCheck calibration_check(const std::string& name, const at::Tensor& u, const at::Tensor& c);

// In words: "calibrated" when the test's p-value is at least alpha, otherwise "overconfident"
// or "underconfident" when the coverage gap says which (beyond 0.02), else "miscalibrated".
std::string verdict(const CalibrationCheck& check, double alpha = 0.01);

}  // namespace sbgm
