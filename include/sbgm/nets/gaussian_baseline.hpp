#pragma once
// A network that learns only what a linear-Gaussian fit of its data does not explain. The fit,
// p(x | y) = N(W y + b, C) by least squares over the training pairs (W = 0 for unconditional
// data: the data's mean and covariance), has a closed-form score after diffusion,
//   s_G(x_t, t | y) = -(m^2 C + sigma^2 I)^-1 (x_t - m (W y + b)),
// and the network's output is added to it (in the output's units: the score, -sigma s_G for a
// noise-predicting network, or the fit's exact velocity m' E[x_0 | x_t] + sigma' E[z | x_t] for
// a flow-matching one). Where the posterior is Gaussian, as in linear models, the fit is
// already right and the network has nothing to learn, so it cannot over-fit it; where it is not,
// the fit carries the large noise levels and the network the fine structure. The network's
// output layer starts at zero, so training starts from the fit. The fit is kept in the module's
// buffers, so checkpoints carry it with the weights.

#include <ATen/core/Tensor.h>

#include <memory>

#include "sbgm/nets/score_net.hpp"

namespace sbgm {

class SDE;

class GaussianBaselineNet final : public WrappedScoreNet {
 public:
  // dim features of a sample, cond_dim of a condition (0: unconditional).
  GaussianBaselineNet(std::shared_ptr<ScoreNet> net, std::shared_ptr<const SDE> sde, Parameterization output,
                      int64_t dim, int64_t cond_dim);
  // Fits W, b and C to rows x [N, ...] with conditions y [N, cond_dim] (undefined when
  // unconditional), in the space the network is trained in. elements > 1: y is that many
  // exchangeable elements, one after another (data.cond_set), and W weighs them alike: the fit
  // is linear in their mean, which is least squares over the rows with the elements in every order.
  void fit(const at::Tensor& x, const at::Tensor& y, int64_t elements = 1);
  // The baseline's output alone for x_t [B, ...] at times t [B] (what forward adds to the network's).
  at::Tensor baseline(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) const;

  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  at::Tensor forward_with_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                     at::Tensor& divergence) override;
  at::Tensor forward_for_backward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;

 private:
  // The baseline's output is U diag(gain) U^T (x - m mean) + shift mean: m and shift as [B, 1],
  // gain [B, D] (for the score -1 / (m^2 lambda_k + sigma^2); its sum is the divergence).
  struct Coefficients {
    at::Tensor m, shift, gain;
  };
  Coefficients coefficients(const at::Tensor& t, const at::Tensor& like) const;

  std::shared_ptr<const SDE> sde_;
  Parameterization output_;
  // The fit: weight W [D, C], bias b [D], and C = U diag(lambda) U^T as values [D], vectors [D, D].
  at::Tensor weight_, bias_, values_, vectors_;
};

}  // namespace sbgm
