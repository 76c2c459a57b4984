#include "sbgm/score/observed_score.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <vector>

#include "sbgm/sde/sde.hpp"

namespace sbgm {

ObservedScore::ObservedScore(ScoreModel& prior, std::shared_ptr<const SDE> sde, Observation observation)
    : prior_(prior), sde_(std::move(sde)), obs_(std::move(observation)) {}

at::Tensor ObservedScore::score(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const int64_t b = x.size(0), d = x.numel() / b;
  const at::Tensor m = sde_->mean_coeff(t, x), var = sde_->marginal_std(t, x).pow(2);
  at::Tensor s, x0;
  std::vector<at::Tensor> jacobian_rows;  // d x0_k / d x_t, [B, D] each
  {
    at::AutoGradMode grad(true);
    const at::Tensor xg = x.detach().requires_grad_(true);
    s = prior_.score(xg, t, y);
    x0 = ((xg + var * s) / m).reshape({b, d});
    for (int64_t k = 0; k < d; ++k)
      jacobian_rows.push_back(
          torch::autograd::grad({x0.select(1, k).sum()}, {xg}, {}, /*retain_graph=*/k + 1 < d)[0].reshape({b, d}));
  }
  const at::Tensor J = at::stack(jacobian_rows, 1);  // [B, D, D], J[b, k, :] = d x0_k / d x
  at::Tensor cov = J * (var / m).reshape({b, 1, 1});  // Cov[x0 | x_t] = (sigma^2 / m) J
  cov = (cov + cov.transpose(1, 2)) * 0.5;  // symmetric for an exact score; a trained one is close
  const at::Tensor mask = obs_.mask.reshape({b, d}).to(x.scalar_type());
  const at::Tensor noise_var = obs_.noise_std.to(x.options()).expand_as(x).reshape({b, d}).pow(2);
  // Observed rows and columns of C plus sigma_y^2, the identity on unobserved features (whose
  // residual is zero, so they get zero weight).
  const at::Tensor gram = cov * mask.unsqueeze(2) * mask.unsqueeze(1) + at::diag_embed(noise_var * mask + (1 - mask));
  const at::Tensor residual = (mask * (obs_.values.reshape({b, d}).to(x.scalar_type()) - x0.detach())).unsqueeze(2);
  const at::Tensor weights = at::linalg_solve(gram, residual).squeeze(2);  // [B, D]
  const at::Tensor guidance = at::einsum("bkd,bk->bd", {J, weights});
  return (s.detach() + guidance.reshape(x.sizes()));
}

}  // namespace sbgm
