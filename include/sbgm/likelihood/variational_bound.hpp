#pragma once
// The evidence lower bound of the plug-in reverse SDE (Huang, Lim & Courville 2021, thm. 3;
// the likelihood-weighted bound of Song, Durkan et al. 2021): for the generative SDE
// dx = [f - g^2 s] dt + g dw run from the prior at T down to t_eps,
//   log p(x) >= E[log pi(x_T)] - int_{t_eps}^T E_{x_t ~ p(x_t | x)}[ g^2 |s|^2 / 2 + g^2 div s - f D ] dt,
// with x_t = m(t) x + sigma(t) z. It is tight when s is the score of the diffused data (the ODE's
// log-likelihood and the bound then agree), and below the SDE's own density otherwise — the
// quantity diffusion models are trained against. By Stein's lemma, E[div s(x_t)] = E[s . z] /
// sigma, the same bound is, row for row,
//   log p(x) >= E[log pi(x_T)] + D log(sigma(T) / sigma(t_eps)) - int E[ g^2 |s + z / sigma|^2 / 2 ] dt
// (Song, Durkan et al.'s denoising form; g^2 / sigma^2 + 2 f = d log sigma^2 / dt), which needs no
// divergence. LikelihoodMethod::ELBO estimates the divergence form (exact or Hutchinson divergence,
// fresh probes each draw), ELBODenoising the denoising form. Which has less variance depends: at
// low noise the marginal score tends to the data's, so the divergence form's integrand vanishes
// while the denoising form's tends to |z|^2, whose mean the analytic term cancels but whose spread
// remains (1.1-1.6x the divergence form's standard error on a 2-D mixture with its exact score);
// in high dimension the exact divergence costs D backward passes and Hutchinson's adds its own
// spread, and the denoising form, one evaluation a draw, is the one to use. The prior term is
// analytic (x_T is Gaussian given x); the time integral is a Monte-Carlo average over `draws` pairs (t, z) per row, with t
// uniform or, by default, uniform in lambda = log(m / sigma): density proportional to g^2 /
// sigma^2, under which the denoising integrand is (lambda_max - lambda_min) |sigma s + z|^2, the
// noise-prediction error, bounded at both ends.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "sbgm/likelihood/log_likelihood.hpp"

namespace sbgm {

// The bound per row of x ([N, ...], the model's space), its Monte-Carlo standard error per row,
// and the evaluations taken (stats.function_evals, row_evals). InvalidArgument for an SDE without
// a reverse SDE (the linear path of flow matching). The rows are a RowChunks of config.chunk_size,
// shared by the ranks of comm as log_likelihood's are (each chunk draws its times, noise and
// probes from its own seed), and every rank gets every row.
LikelihoodResult variational_bound(ScoreModel& model, const SDE& sde, const at::Tensor& x, const at::Tensor& y,
                                   const LikelihoodConfig& config, at::Generator gen, const ProgressFn& progress = {},
                                   const Communicator& comm = Communicator());

}  // namespace sbgm
