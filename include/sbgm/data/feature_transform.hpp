#pragma once
// A logarithm for positive, right-skewed features, chosen by the run where the rows call for it
// (log_symmetrises), on either side of a posterior p(θ | x):
//
// - The conditions x (data.cond_transform), before they are standardised. Simulators often return
//   positive, heavy-tailed summaries (counts of populations, rates, noise that is log-normal),
//   whose standardised values crowd near zero with a few far outliers: the network then cannot
//   tell most observations apart. On lotka_volterra at 10^4 pairs their log took the C2ST from
//   0.962 to 0.861 (docs/sbi.md). A model whose conditions are logs refuses a condition that is
//   not positive, naming it.
// - The data θ (data.transform): positive parameters that a Gaussian describes better in log
//   space (log_fits_better: a log-normal prior, sbibm's sir and lotka_volterra, or a Gamma's) are
//   modelled as log θ, so that the network sees a Gaussian-like prior, no sample falls at or
//   below 0 and every density carries the log's Jacobian. It is the bounds' map of a lower bound
//   0 on every feature (data/bounds.hpp; run/model.hpp, model_box).
//
// Either transform applies to every feature or none.
#include <ATen/core/Tensor.h>

#include <string>

namespace sbgm {

enum class FeatureTransform { Auto, None, Log };
std::string to_string(FeatureTransform v);
FeatureTransform feature_transform_from_string(const std::string& s);

// Rows [N, C] of finite values: true when every value is positive, the features (those that
// vary) have a mean absolute skewness above 1, and their logarithms less than half of it. A
// log-normal feature passes (skewness 1.75 at σ = 0.5, 0 after the log); a normal, uniform or
// exponential one does not (the log turns an exponential's right tail, skewness 2, into a left
// one of 1.14).
bool log_symmetrises(const at::Tensor& rows);

// Rows [N, D] of finite values: true when every value is positive and a Gaussian fitted to each
// varying feature's log (the log's Jacobian included) has a higher likelihood than a Gaussian
// fitted to the feature, by Vuong's (1989) test for non-nested models: the rows' differences of
// log-density, summed over the features, have a mean above kLogFitsBetter standard errors. In 200
// draws each of 500, 1000 and 10^4 rows: sir's and lotka_volterra's log-normal priors (σ = 0.5
// and 0.2) pass in all, as do exponential and Gamma(2) features; normal N(10, 1), uniform U(1, 2)
// and U(0, 1) features in none; where the two fits are nearly alike (Gamma(10), log-normal with
// σ = 0.1) in half to nine tenths at 500–1000 rows, all at 10^4.
bool log_fits_better(const at::Tensor& rows);
constexpr double kLogFitsBetter = 1.96;
// Vuong's statistic of log_fits_better (the mean difference over its standard error), or -inf
// where the rows are not all positive or nothing varies.
double log_fit_statistic(const at::Tensor& rows);

// Rows [N, ...]: the first value that is not positive (NaN included) described for an error
// ("row 3, feature 2 = -1"), or "" when every value is positive.
std::string first_not_positive(const at::Tensor& rows);

// Conditions [N, C] as the network's standardisation sees them: their logarithm for Log, themselves
// otherwise (Auto here means a run settled before this key existed: no transform). InvalidArgument
// naming the first value that is not positive for Log.
at::Tensor transform_conditions(FeatureTransform transform, const at::Tensor& rows);

}  // namespace sbgm
