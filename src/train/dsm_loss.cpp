#include "sbgm/train/dsm_loss.hpp"

#include <ATen/ATen.h>

#include "sbgm/nets/score_net.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/enum_names.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<LossWeighting, 2> kWeightingNames{
    {{LossWeighting::Sigma2, "sigma2"}, {LossWeighting::Likelihood, "likelihood"}}};
}

std::string to_string(LossWeighting w) { return enum_to_string(w, kWeightingNames); }
LossWeighting loss_weighting_from_string(const std::string& s) {
  return enum_from_string(s, kWeightingNames, "loss weighting");
}

at::Tensor sample_times(const SDE& sde, int64_t batch, bool stratified, at::Generator gen,
                        const at::TensorOptions& opts) {
  at::Tensor u = at::rand({batch}, gen, opts);
  if (stratified) u = (at::arange(batch, opts) + u) / static_cast<double>(batch);
  return u * (sde.T() - sde.t_eps()) + sde.t_eps();
}

at::Tensor dsm_loss(ScoreNet& net, Parameterization output, const SDE& sde, LossWeighting weighting,
                    const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t, const at::Tensor& z) {
  const at::Tensor sigma = sde.marginal_std(t, x0);
  const at::Tensor xt = sde.mean_coeff(t, x0) * x0 + sigma * z;
  const at::Tensor out = net.forward(xt, t, y);
  // sigma s + z, written so that neither parameterisation divides by sigma.
  const at::Tensor residual = output == Parameterization::Score ? at::addcmul(z, sigma, out) : z - out;
  at::Tensor per_sample = residual.pow(2).reshape({x0.size(0), -1}).sum(1);
  if (weighting == LossWeighting::Likelihood) {
    const at::Tensor s2 = sigma.reshape({-1}).pow(2);
    per_sample = per_sample * sde.diffusion_sq(t, per_sample) / s2;
  }
  return per_sample.mean();
}

at::Tensor dsm_loss(ScoreNet& net, Parameterization output, const SDE& sde, const DSMConfig& config,
                    const at::Tensor& x0, const at::Tensor& y, at::Generator gen) {
  const at::Tensor t = sample_times(sde, x0.size(0), config.stratified_time, gen, x0.options());
  const at::Tensor z = at::normal(0.0, 1.0, x0.sizes(), gen, x0.options());
  return dsm_loss(net, output, sde, config.weighting, x0, y, t, z);
}

}  // namespace sbgm
