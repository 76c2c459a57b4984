#pragma once
// Posterior sampling with an unconditional model for a linear observation of some features,
// y = x + sigma_y n on the features where a mask is 1: inpainting (some features, sigma_y >= 0)
// and denoising (every feature, sigma_y > 0). Two methods:
//
// - Moments (Tweedie moment projection, Boys et al. 2023): the score of p_t(x_t | y), taking
//   p(x_0 | x_t) as the Gaussian with Tweedie's mean x0(x_t) = (x_t + sigma^2 s) / m and
//   covariance C = (sigma^2 / m) d x0 / d x_t. Then y | x_t ~ N(A x0, A C A^T + sigma_y^2 I) and
//   grad log p(y | x_t) = J^T A^T (A C A^T + sigma_y^2 I)^{-1} (y - A x0), J = d x0 / d x_t.
//   Exact for Gaussian data (then p(x_0 | x_t) is that Gaussian); it costs D reverse passes per
//   score evaluation for the Jacobian, so it suits vector data. Works with every sampler.
// - Replace (Song et al. 2021, controllable generation): Euler-Maruyama on the unconditional
//   reverse SDE, with the observed features replaced after every step by a fresh draw of the
//   diffused observation, m(s) y + sigma(s) z (y itself at the end). Cheap for any data size but
//   approximate: exact when observed and unobserved features are independent, biased otherwise
//   (posterior mean 0.51 for 0.80 on a unit Gaussian with correlation 0.8, measured).
// - NoiseLevel (denoising only, every feature observed with the same sigma_y in the model's
//   space): m(t*) y with sigma(t*) / m(t*) = sigma_y is distributed exactly as x_t* given x_0,
//   so the reverse process started there at t* samples p(x_0 | y) exactly, for any data, at the
//   cost of plain sampling from t* (see run/inpaint.cpp).

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <string>

#include "sbgm/sample/sampler.hpp"
#include "sbgm/score/observed_score.hpp"

namespace sbgm {

enum class InverseMethod { Moments, Replace, NoiseLevel };
std::string to_string(InverseMethod m);
InverseMethod inverse_method_from_string(const std::string& s);

// Euler-Maruyama in `steps` steps with the observed features replaced after every step.
at::Tensor sample_by_replacement(ScoreModel& prior, const SDE& sde, const Observation& observation, at::Tensor x,
                                 const at::Tensor& y, int64_t steps, at::Generator gen, const StepFn& on_step = {});

}  // namespace sbgm
