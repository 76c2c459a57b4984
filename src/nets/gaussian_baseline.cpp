#include "sbgm/nets/gaussian_baseline.hpp"

#include <ATen/ATen.h>

#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

GaussianBaselineNet::GaussianBaselineNet(std::shared_ptr<ScoreNet> net, std::shared_ptr<const SDE> sde,
                                         Parameterization output, int64_t dim, int64_t cond_dim)
    : WrappedScoreNet(std::move(net)), sde_(std::move(sde)), output_(output) {
  weight_ = register_buffer("baseline_weight", at::zeros({dim, cond_dim}));
  bias_ = register_buffer("baseline_bias", at::zeros({dim}));
  values_ = register_buffer("baseline_values", at::ones({dim}));
  vectors_ = register_buffer("baseline_vectors", at::eye(dim));
  // The network starts at zero, so the model starts as the fit (every member of an ensemble).
  net_->zero_output(dim);
}

void GaussianBaselineNet::fit(const at::Tensor& x, const at::Tensor& y, int64_t elements) {
  const int64_t n = x.size(0), d = bias_.size(0);
  if (elements < 1 || weight_.size(1) % elements != 0)
    throw InvalidArgument("the baseline's condition is not whole elements");
  const int64_t c = weight_.size(1) / elements;  // the features the fit regresses on
  if (n < c + 2) throw InvalidArgument("a Gaussian baseline needs more rows than condition features");
  const at::Tensor xs = x.reshape({n, -1}).to(at::kCPU, at::kDouble);
  if (xs.size(1) != d) throw InvalidArgument("the baseline's rows have another width than the network's");
  const at::Tensor x_mean = xs.mean(0), xc = xs - x_mean;
  at::Tensor weight = at::zeros({d, c}, at::kDouble), bias = x_mean, residual = xc;
  if (c > 0) {
    const at::Tensor ys = y.reshape({n, elements, c}).to(at::kCPU, at::kDouble).mean(1);
    const at::Tensor y_mean = ys.mean(0), yc = ys - y_mean;
    // Least squares W = X_c^T Y_c (Y_c^T Y_c)^-1, with a whisper of ridge for collinear conditions.
    at::Tensor gram = at::matmul(yc.t(), yc);
    gram = gram + (1e-9 * gram.trace().item<double>() / static_cast<double>(c) + 1e-12) * at::eye(c, at::kDouble);
    weight = at::linalg_solve(gram, at::matmul(yc.t(), xc)).t();
    bias = x_mean - at::matmul(weight, y_mean);
    residual = xc - at::matmul(yc, weight.t());
  }
  const double dof = static_cast<double>(std::max<int64_t>(1, n - c - 1));
  at::Tensor cov = at::matmul(residual.t(), residual) / dof;
  const double floor = 1e-6 * std::max(cov.trace().item<double>() / static_cast<double>(d), 1e-12);
  cov = 0.5 * (cov + cov.t()) + floor * at::eye(d, at::kDouble);
  auto [values, vectors] = at::linalg_eigh(cov);
  at::NoGradGuard no_grad;
  weight_.copy_(weight.repeat({1, elements}) / static_cast<double>(elements));  // W y = weight · mean(y's elements)
  bias_.copy_(bias);
  values_.copy_(values.clamp_min(floor));
  vectors_.copy_(vectors);
}

GaussianBaselineNet::Coefficients GaussianBaselineNet::coefficients(const at::Tensor& t, const at::Tensor& like) const {
  Coefficients k;
  k.m = sde_->mean_coeff(t, like);
  const at::Tensor sigma = sde_->marginal_std(t, like), values = values_.to(like.scalar_type());
  const at::Tensor inverse = (k.m.pow(2) * values + sigma.pow(2)).reciprocal();
  switch (output_) {
    case Parameterization::Score: k.gain = -inverse; break;
    case Parameterization::Noise: k.gain = sigma * inverse; break;
    case Parameterization::Velocity: {
      // m' E[x0 | x] + sigma' E[z | x] with E[x0 | x] = mean + m C P (x - m mean), E[z | x] = sigma P (x - m mean).
      const at::Tensor dm = sde_->mean_coeff_rate(t, like);
      k.gain = (dm * k.m * values + sde_->marginal_std_rate(t, like) * sigma) * inverse;
      k.shift = dm;
      break;
    }
  }
  return k;
}

at::Tensor GaussianBaselineNet::baseline(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) const {
  const int64_t b = x.size(0);
  const at::Tensor flat = x.reshape({b, -1});
  const auto type = flat.scalar_type();
  at::Tensor mean = bias_.to(type).unsqueeze(0);
  if (weight_.size(1) > 0) {
    if (!y.defined() || y.numel() != b * weight_.size(1))
      throw InvalidArgument("the Gaussian baseline takes the condition it was fitted with");
    mean = mean + at::matmul(y.reshape({b, -1}).to(type), weight_.to(type).t());
  }
  const Coefficients k = coefficients(t, flat);
  const at::Tensor vectors = vectors_.to(type);
  at::Tensor out = at::matmul(at::matmul(flat - k.m * mean, vectors) * k.gain, vectors.t());
  if (k.shift.defined()) out = out + k.shift * mean;
  return out.reshape(x.sizes());
}

at::Tensor GaussianBaselineNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  return net_->forward(x, t, y).to(x.scalar_type()) + baseline(x, t, y);
}

at::Tensor GaussianBaselineNet::forward_with_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                                        at::Tensor& divergence) {
  at::Tensor out = net_->forward_with_divergence(x, t, y, divergence) + baseline(x, t, y);
  // The baseline's Jacobian is U diag(gain) U^T.
  divergence = divergence + coefficients(t, x.reshape({x.size(0), -1})).gain.sum(1);
  return out;
}

at::Tensor GaussianBaselineNet::forward_for_backward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  return net_->forward_for_backward(x, t, y) + baseline(x, t, y);
}

}  // namespace sbgm
