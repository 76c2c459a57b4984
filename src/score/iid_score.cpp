#include "sbgm/score/iid_score.hpp"

#include <ATen/ATen.h>

#include "sbgm/sde/sde.hpp"
#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<IIDMethod, 2> kMethods{{{IIDMethod::Factorized, "factorized"}, {IIDMethod::Gauss, "gauss"}}};
}  // namespace

std::string to_string(IIDMethod method) { return enum_to_string(method, kMethods); }
IIDMethod iid_method_from_string(const std::string& name) { return enum_from_string(name, kMethods, "iid method"); }

IIDScore::IIDScore(std::shared_ptr<ScoreModel> posterior, std::shared_ptr<ScoreModel> prior,
                   std::shared_ptr<const SDE> sde, at::Tensor observations, IIDMethod method,
                   const at::Tensor& posterior_covs, const at::Tensor& prior_cov)
    : posterior_(std::move(posterior)),
      prior_(std::move(prior)),
      sde_(std::move(sde)),
      observations_(observations.reshape({observations.size(0), -1})),
      method_(method) {
  const int64_t n = observations_.size(0);
  if (n < 1) throw InvalidArgument("iid sampling needs at least one observation");
  if (method_ != IIDMethod::Gauss) return;
  if (!posterior_covs.defined() || !prior_cov.defined() || posterior_covs.dim() != 3 || posterior_covs.size(0) != n ||
      prior_cov.dim() != 2 || prior_cov.size(0) != posterior_covs.size(1))
    throw InvalidArgument("the gauss iid method needs one posterior covariance per observation and the prior's");
  precisions_ = at::linalg_inv(posterior_covs.to(at::kDouble));
  prior_precision_ = at::linalg_inv(prior_cov.to(at::kDouble));
  const at::Tensor combined = precisions_.sum(0) + (1.0 - static_cast<double>(n)) * prior_precision_;
  std::tie(combined_values_, combined_vectors_) = at::linalg_eigh(0.5 * (combined + combined.t()));
  if (!(combined_values_.min().item<double>() > 0) || !at::isfinite(combined_values_).all().item<bool>())
    throw InvalidArgument("the Gaussian approximations of the " + std::to_string(n) +
                          " posteriors and the prior give their product no positive precision (the prior is "
                          "narrower than a posterior?): use the factorized iid method");
}

at::Tensor IIDScore::score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  if (y.defined()) throw InvalidArgument("an iid posterior takes its observations when built, not per row");
  const int64_t b = x.size(0), n = observations_.size(0);
  const at::Tensor flat = x.reshape({b, -1});
  const int64_t d = flat.size(1);
  // Every row against every observation in one batch of b * n rows.
  std::vector<int64_t> repeated_shape(x.sizes().begin(), x.sizes().end());
  repeated_shape[0] = b * n;
  const at::Tensor y_rows = observations_.to(x.device(), x.scalar_type()).repeat({b, 1});
  const at::Tensor each =
      posterior_->score(x.repeat_interleave(n, 0).reshape(repeated_shape), t.repeat_interleave(n, 0), y_rows)
          .reshape({b, n, d});
  const at::Tensor prior = prior_->score(x, t, at::Tensor()).reshape({b, d});
  const double prior_weight = 1.0 - static_cast<double>(n);
  if (method_ == IIDMethod::Factorized) return (each.sum(1) + prior_weight * prior).reshape(x.sizes());

  // With r = m^2 / sigma^2: sum_i L_i s_i + (1 - n) L_p s_p = sum_i P_i s_i + (1 - n) P_p s_p + r (sum_i s_i +
  // (1 - n) s_p), and the matrix to solve with is sum_i P_i + (1 - n) P_p + r I, diagonal in its eigenbasis.
  const auto opts = x.options();
  const at::Tensor r = (sde_->mean_coeff(t, flat) / sde_->marginal_std(t, flat)).pow(2);  // [b, 1]
  const at::Tensor precisions = precisions_.to(opts), prior_precision = prior_precision_.to(opts);
  const at::Tensor weighted = at::einsum("nij,bnj->bi", {precisions, each}) + prior_weight * at::matmul(prior, prior_precision.t());
  const at::Tensor summed = each.sum(1) + prior_weight * prior;
  const at::Tensor numerator = weighted + r * summed;
  const at::Tensor vectors = combined_vectors_.to(opts), values = combined_values_.to(opts);
  const at::Tensor in_basis = at::matmul(numerator, vectors) / (values.unsqueeze(0) + r);
  return at::matmul(in_basis, vectors.t()).reshape(x.sizes());
}

}  // namespace sbgm
