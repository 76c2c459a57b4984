#include "sbgm/sample/inverse_problem.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<InverseMethod, 3> kMethodNames{
    {{InverseMethod::Moments, "moments"}, {InverseMethod::Replace, "replace"}, {InverseMethod::NoiseLevel, "noise-level"}}};
}

std::string to_string(InverseMethod m) { return enum_to_string(m, kMethodNames); }
InverseMethod inverse_method_from_string(const std::string& s) { return enum_from_string(s, kMethodNames, "inverse-problem method"); }

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

at::Tensor sample_by_replacement(ScoreModel& prior, const SDE& sde, const Observation& observation, at::Tensor x,
                                 const at::Tensor& y, int64_t steps, at::Generator gen, const StepFn& on_step) {
  if (steps < 1) throw InvalidArgument("sampler steps must be at least 1");
  at::NoGradGuard no_grad;
  const at::Tensor t_buffer = at::empty({x.size(0)}, x.options());
  const at::Tensor mask = observation.mask.to(x.options());
  const at::Tensor values = observation.values.to(x.options());
  at::Tensor noise = at::empty_like(x), known = at::empty_like(x);
  for_each_reverse_step(sde, steps, [&](double t, double s, bool last) {
    reverse_euler_maruyama_step(prior, sde, x, y, t_buffer, t, t - s, noise, !last, gen);
    // The observed features: the observation diffused to time s (itself after the last step).
    known.copy_(values);
    if (!last) known.mul_(sde.mean_coeff(s)).add_(noise.normal_(0.0, 1.0, gen), sde.marginal_std(s));
    x.mul_(1 - mask).add_(known * mask);
    if (on_step) on_step(s, x);
  });
  return x;
}

}  // namespace sbgm
