#pragma once
// log p(x) under a score model through the probability-flow ODE (Song et al. 2021, app. D):
// integrate the augmented state [x, Delta] from t_eps to T with dx/dt = f~(x, t) and
// dDelta/dt = div f~(x, t); then log p_{t_eps}(x) = log p_T(x_T) + Delta(T), with p_T replaced by
// the SDE's prior. The divergence is exact (ScoreModel::score_and_divergence: forward tangents
// for an MLP, one vector-Jacobian product per feature otherwise) or Hutchinson's estimate with P
// probes held fixed through the solve.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "sbgm/dist/communicator.hpp"
#include "sbgm/solvers/ode.hpp"
#include "sbgm/util/progress.hpp"

namespace sbgm {

class SDE;
class ScoreModel;

enum class DivergenceKind { Exact, Hutchinson };
enum class ProbeNoise { Rademacher, Gaussian };
std::string to_string(DivergenceKind v);
std::string to_string(ProbeNoise v);
DivergenceKind divergence_from_string(const std::string& s);
ProbeNoise probe_noise_from_string(const std::string& s);

// How log p is had: through the probability-flow ODE (exact up to the solver), or as the
// variational lower bound of the plug-in reverse SDE (likelihood/variational_bound.hpp), a
// Monte-Carlo estimate with its standard error, in its divergence form (ELBO, with the exact or
// Hutchinson divergence) or its denoising form (ELBODenoising): one bound, two estimators.
enum class LikelihoodMethod { ODE, ELBO, ELBODenoising };
std::string to_string(LikelihoodMethod v);  // ode, elbo, elbo-dsm
LikelihoodMethod likelihood_method_from_string(const std::string& s);
// Where the bound's Monte-Carlo times are drawn: uniform in t, or uniform in the half log-SNR
// lambda, i.e. with density proportional to g^2 / sigma^2 (the variance-reducing proposal: 5-6x
// smaller standard errors for the denoising form, 2x for the divergence form on the cosine
// schedule, 1.2x larger for the divergence form on VP; tests/test_variational_bound.cpp).
enum class TimeProposal { Uniform, LogSNR };
std::string to_string(TimeProposal v);
TimeProposal time_proposal_from_string(const std::string& s);

struct LikelihoodConfig {
  LikelihoodMethod method = LikelihoodMethod::ODE;
  SolverConfig solver;  // default: Dopri5 at rtol = atol = 1e-5
  DivergenceKind divergence = DivergenceKind::Exact;
  int64_t probes = 1;   // Hutchinson probes
  ProbeNoise noise = ProbeNoise::Rademacher;
  int64_t chunk_size = 1000;  // rows solved together
  int64_t draws = 100;        // ELBO: Monte-Carlo draws of (t, x_t) per row
  TimeProposal time = TimeProposal::LogSNR;  // ELBO

  void validate() const;
};

struct LikelihoodResult {
  at::Tensor log_prob;    // [N] nats, float64 (ELBO: the bound)
  at::Tensor std_error;   // [N] standard error of the Hutchinson (ELBO: Monte-Carlo) estimate; zeros when exact
  at::Tensor x_T;         // [N, ...] the points at t = T (ODE only)
  // Where rows share an error (a model's support normalises them by one estimate per condition;
  // run/model.hpp): that part of std_error per row, and each row's group [N] (int64); undefined
  // otherwise.
  at::Tensor shared_error, shared_group;
  SolveStats stats;       // summed over chunks
};

// Hutchinson's probes of the configured noise (Rademacher or Gaussian), shaped [P, rows, D].
at::Tensor draw_probes(const LikelihoodConfig& config, at::IntArrayRef shape, at::Generator gen,
                       const at::TensorOptions& options);

// x: [N, ...] in the model's space; y: conditions or undefined. config.method ELBO computes
// variational_bound instead. The rows are a RowChunks (dist/row_chunks.hpp) of config.chunk_size:
// the ranks of comm share the chunks, each chunk's Hutchinson probes come from its own generator
// (seeded from gen), so the result does not depend on the number of ranks, and every rank gets
// all of it. Progress in thousandths of a chunk.
LikelihoodResult log_likelihood(ScoreModel& model, const SDE& sde, const at::Tensor& x, const at::Tensor& y,
                                const LikelihoodConfig& config, at::Generator gen, const ProgressFn& progress = {},
                                const Communicator& comm = Communicator());

// The same flow run the other way: n draws of the model by the probability-flow ODE with their
// log-density. Prior draws x_T are integrated from T down to t_eps together with the divergence,
// so that log q(x) = log p_T(x_T) - (the divergence's integral from T down to t_eps) is the
// density of the draws x themselves — the pushforward of the prior by the flow that made them,
// had in the one solve (to the solver's tolerance, as the forward solve has it), not by sampling
// and integrating back. sample_shape, y ([n, ...] or undefined), chunks, ranks, progress and
// probes as log_likelihood; each chunk draws its prior rows from its generator before its
// probes, as draw_samples does. config.method must be ODE.
struct DrawsWithDensity {
  at::Tensor x;          // [n, ...sample_shape] at t_eps
  at::Tensor log_prob;   // [n] float64: log q(x) in nats
  at::Tensor std_error;  // [n] Hutchinson's standard error; zeros when exact
  SolveStats stats;
};
DrawsWithDensity draw_with_log_likelihood(ScoreModel& model, const SDE& sde, const std::vector<int64_t>& sample_shape,
                                          int64_t n, const at::Tensor& y, const LikelihoodConfig& config,
                                          at::Generator gen, const at::TensorOptions& options,
                                          const ProgressFn& progress = {}, const Communicator& comm = Communicator());

}  // namespace sbgm
