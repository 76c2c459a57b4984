#include "sbgm/data/feature_transform.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

constexpr EnumNames<FeatureTransform, 3> kNames{
    {{FeatureTransform::Auto, "auto"}, {FeatureTransform::None, "none"}, {FeatureTransform::Log, "log"}}};

// A right tail this heavy (a log-normal's with σ = 0.5 has skewness 1.75) is what the log is for;
// a normal or uniform feature (skewness 0) keeps its values.
constexpr double kSkewed = 1.0;

// Mean over the varying features of |skewness| (columns of a [N, C] float64 tensor), or 0 when
// none varies.
double mean_abs_skewness(const at::Tensor& x) {
  const at::Tensor centred = x - x.mean(0);
  const at::Tensor var = centred.pow(2).mean(0);
  const at::Tensor varies = var > 0;
  if (!varies.any().item<bool>()) return 0.0;
  const at::Tensor skew = centred.pow(3).mean(0) / at::where(varies, var, at::ones_like(var)).pow(1.5);
  return skew.abs().masked_select(varies).mean().item<double>();
}

}  // namespace

std::string to_string(FeatureTransform v) { return enum_to_string(v, kNames); }
FeatureTransform feature_transform_from_string(const std::string& s) { return enum_from_string(s, kNames, "transform"); }

bool log_symmetrises(const at::Tensor& rows) {
  if (!rows.defined() || rows.size(0) < 3) return false;
  // Checked before the float64 copy: most conditions (any with a zero or a negative value, such as
  // images' pixels) stop here without one.
  if (!(rows > 0).all().item<bool>()) return false;
  const at::Tensor x = rows.reshape({rows.size(0), -1}).to(at::kDouble);
  const double raw = mean_abs_skewness(x);
  return raw > kSkewed && mean_abs_skewness(at::log(x)) < raw / 2;
}

std::string first_not_positive(const at::Tensor& rows) {
  const at::Tensor flat = rows.reshape({rows.size(0), -1});
  const at::Tensor bad = (flat <= 0).logical_or(at::isnan(flat)).nonzero();
  if (bad.size(0) == 0) return "";
  const int64_t row = bad[0][0].item<int64_t>(), feature = bad[0][1].item<int64_t>();
  std::ostringstream msg;
  msg << "row " << row << ", feature " << feature << " = " << flat[row][feature].item<double>();
  return msg.str();
}

bool log_fits_better(const at::Tensor& rows) { return log_fit_statistic(rows) > kLogFitsBetter; }

double log_fit_statistic(const at::Tensor& rows) {
  constexpr double kNone = -std::numeric_limits<double>::infinity();
  if (!rows.defined() || rows.size(0) < 3) return kNone;
  if (!(rows > 0).all().item<bool>()) return kNone;
  const at::Tensor x = rows.reshape({rows.size(0), -1}).to(at::kDouble), u = at::log(x);
  // Each feature's Gaussian fit (maximum likelihood) and its log-density per row, constants cancelled.
  const auto log_density = [](const at::Tensor& v, const at::Tensor& varies) {
    const at::Tensor var = at::where(varies, v.var(0, /*unbiased=*/false), at::ones({v.size(1)}, v.options()));
    return -0.5 * at::log(var) - 0.5 * (v - v.mean(0)).square() / var;
  };
  const at::Tensor varies = (x.var(0, false) > 0) & (u.var(0, false) > 0);
  if (!varies.any().item<bool>()) return kNone;
  const at::Tensor d = ((log_density(u, varies) - u) - log_density(x, varies)).masked_fill(~varies, 0).sum(1);
  const double sd = d.std().item<double>();
  if (!(sd > 0)) return kNone;
  return d.mean().item<double>() / (sd / std::sqrt(static_cast<double>(d.size(0))));
}

at::Tensor transform_conditions(FeatureTransform transform, const at::Tensor& rows) {
  if (transform != FeatureTransform::Log) return rows;
  const std::string bad = first_not_positive(rows);
  if (!bad.empty())
    throw InvalidArgument("condition " + bad + " is not positive, but the model takes the log of its conditions (data.cond_transform = log)");
  return at::log(rows);
}

}  // namespace sbgm
