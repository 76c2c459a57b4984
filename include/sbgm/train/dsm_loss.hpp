#pragma once
// Denoising score matching: x_t = m(t) x0 + sigma(t) z, loss lambda(t) || s(x_t, t) + z / sigma(t) ||^2
// summed over features and averaged over the batch. For a velocity network (Parameterization::
// Velocity) the same draws give conditional flow matching (Lipman et al. 2023): loss
// || v(x_t, t) - (m'(t) x0 + sigma'(t) z) ||^2, on the linear path || v - (z - x0) ||^2; its
// minimiser is the marginal velocity E[m' x0 + sigma' z | x_t], the probability-flow ODE's drift.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <string>

#include "sbgm/nets/net_config.hpp"

namespace sbgm {

class SDE;
class ScoreNet;

enum class LossWeighting {
  Sigma2,      // lambda = sigma^2: || sigma s + z ||^2 (the standard choice; flow matching's only one)
  Likelihood,  // lambda = g^2 (Song, Durkan et al. 2021): bounds the negative log-likelihood
};
std::string to_string(LossWeighting w);
LossWeighting loss_weighting_from_string(const std::string& s);

// How training draws t: uniform on [t_eps, T], or uniform in the half log-SNR lambda, i.e. with
// density proportional to g^2 / sigma^2 — the importance-sampling proposal of Song, Durkan et al.
// (2021) and Huang et al. (2021) for the likelihood weighting, under which that weighting's
// per-sample weight is constant (the same objective as with uniform t, with less variance).
// Every sample is weighted by (uniform density) / (proposal density), so the objective of each
// weighting is the same under both. LogNormal is EDM's noise-level distribution (Karras et al.
// 2022; on the linear path of flow matching, the logit-normal t of Esser et al. 2024): the noise
// level sigma / m drawn log-normal, truncated to the path's range, and not reweighted — it changes
// the objective, putting the training where the noise is comparable to the data's structure.
enum class TimeSampling { Uniform, LogSNR, LogNormal };
std::string to_string(TimeSampling s);
TimeSampling time_sampling_from_string(const std::string& s);

struct DSMConfig {
  LossWeighting weighting = LossWeighting::Sigma2;
  TimeSampling time_sampling = TimeSampling::Uniform;
  bool stratified_time = false;  // one t per stratum of [t_eps, T] instead of i.i.d. uniform
  // TimeSampling::LogNormal: log(sigma / m) ~ N(mean, std^2) (EDM's P_mean and P_std).
  double log_noise_mean = -1.2, log_noise_std = 1.2;
  // Flow matching of unconditional data: pair each batch's rows with its noise by minibatch
  // optimal transport (train/optimal_transport.hpp) instead of independently.
  bool ot_coupling = false;
};

// Throws InvalidArgument naming the config key when config cannot train a network of this output
// (on conditional data or not): the likelihood weighting and minibatch OT belong to one objective.
void check_loss_config(const DSMConfig& config, Parameterization output, bool conditional);

// Times from u ~ U[0, 1) by config's time_sampling (u itself may be stratified) and each one's
// importance weight, the uniform density over the proposal's ([B]; undefined for the uniform and
// log-normal draws, which are not reweighted).
struct ProposedTimes {
  at::Tensor t, importance;
};
ProposedTimes times_from_uniform(const SDE& sde, const at::Tensor& u, const DSMConfig& config);

// The loss for a batch x0 (and conditions y, or undefined) with the given times and noise; each
// sample's term times importance[b] when that is defined (times_from_uniform).
at::Tensor dsm_loss(ScoreNet& net, Parameterization output, const SDE& sde, LossWeighting weighting,
                    const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t, const at::Tensor& z,
                    const at::Tensor& importance = {});

// The loss and its gradient with respect to the network's output, computed without autograd by
// the networks that support a manual backward (ScoreNet::supports_manual_backward). out must come
// from net.forward_for_backward on the same x_t.
struct DSMManual {
  at::Tensor loss, grad_output;
};
DSMManual dsm_loss_manual(ScoreNet& net, Parameterization output, const SDE& sde, LossWeighting weighting,
                          const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t, const at::Tensor& z,
                          const at::Tensor& importance = {});

// Draws t and z from gen, then dsm_loss.
at::Tensor dsm_loss(ScoreNet& net, Parameterization output, const SDE& sde, const DSMConfig& config,
                    const at::Tensor& x0, const at::Tensor& y, at::Generator gen);

}  // namespace sbgm
