#include "sbgm/likelihood/variational_bound.hpp"

#include <ATen/ATen.h>

#include <cmath>

#include "sbgm/dist/row_chunks.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {
namespace {

// E[log N(x_T; 0, s_p^2 I)] for x_T ~ N(m_T x, sigma_T^2 I), per row (float64).
at::Tensor expected_prior_log_prob(const SDE& sde, const at::Tensor& x) {
  const double s2 = sde.prior_std() * sde.prior_std(), m = sde.mean_coeff(sde.T()), sigma = sde.marginal_std(sde.T());
  const at::Tensor flat = x.reshape({x.size(0), -1}).to(at::kDouble);
  const double d = static_cast<double>(flat.size(1));
  return (flat.pow(2).sum(1) * (m * m) + d * sigma * sigma).div(-2 * s2).sub(0.5 * d * std::log(2 * M_PI * s2));
}

// Per-row times drawn from the proposal, and the weight that turns the integrand at t into an
// unbiased term of the integral over [t_eps, T] (the inverse of the proposal's density).
struct TimeDraws {
  at::Tensor t, weight;  // [B], float64
};

TimeDraws draw_times(const SDE& sde, TimeProposal proposal, int64_t b, at::Generator gen) {
  const at::Tensor u = at::rand({b}, gen, at::TensorOptions().dtype(at::kDouble));
  if (proposal == TimeProposal::Uniform)
    return {u * (sde.T() - sde.t_eps()) + sde.t_eps(), at::full({b}, sde.T() - sde.t_eps(), u.options())};
  const LogSNRTimes times = log_snr_times(sde, u);
  return {times.t, times.dt_du};
}

}  // namespace

LikelihoodResult variational_bound(ScoreModel& model, const SDE& sde, const at::Tensor& x, const at::Tensor& y,
                                   const LikelihoodConfig& config, at::Generator gen, const ProgressFn& progress,
                                   const Communicator& comm) {
  config.validate();
  if (!sde.has_reverse_sde())
    throw InvalidArgument("the variational bound integrates the reverse SDE, which the " + to_string(sde.kind()) +
                          " path (flow matching) does not have at t = T: use the ODE's log-likelihood");
  if (x.dim() < 2 || x.size(0) < 1) throw InvalidArgument("points must have shape [N, ...] with N >= 1");
  at::NoGradGuard no_grad;
  const bool denoising = config.method == LikelihoodMethod::ELBODenoising;
  const int64_t n = x.size(0), d = x.numel() / n;
  const RowChunks chunks(n, config.chunk_size, gen, x.options(), comm);
  const auto dbl = at::TensorOptions().dtype(at::kDouble);
  at::Tensor bound = at::empty({chunks.local_rows()}, dbl), std_error = at::empty({chunks.local_rows()}, dbl);
  // Evaluations, summed over chunks and then over ranks.
  at::Tensor evals = at::zeros({2}, dbl);
  chunks.for_each(
      [&](const RowChunk& c) {
        model.forget_kept_state();  // each chunk's values depend on its rows only
        const int64_t start = c.start, rows = c.rows;
        const at::Tensor xc = x.narrow(0, start, rows);
        const at::Tensor yc = y.defined() ? y.narrow(0, start, rows) : at::Tensor();
        at::Generator chunk_gen = c.gen;
        at::Generator time_gen = make_generator(at::kCPU, c.seed + 1);  // the times are drawn on the CPU
        at::Tensor sum = at::zeros({rows}, dbl), sum_sq = at::zeros({rows}, dbl);
        for (int64_t k = 0; k < config.draws; ++k) {
          const TimeDraws td = draw_times(sde, config.time, rows, time_gen);
          const at::Tensor t = td.t.to(x.options());
          const at::Tensor z = at::normal(0.0, 1.0, xc.sizes(), chunk_gen, x.options());
          const at::Tensor x_t = sde.perturb(xc, t, z);
          const at::Tensor tc = td.t;
          const at::Tensor g2 = sde.diffusion_sq(tc, tc);
          at::Tensor term;
          if (denoising) {
            // -g^2 |s + z / sigma|^2 / 2, i.e. -g^2 |sigma s + z|^2 / (2 sigma^2).
            const at::Tensor sigma = sde.marginal_std(t, xc);
            const at::Tensor residual = (model.score(x_t, t, yc) * sigma + z).reshape({rows, d}).to(at::kDouble).cpu();
            term = residual.pow(2).sum(1).mul(g2 * -0.5).div(sde.marginal_std(tc, tc).pow(2));
          } else {
            at::Tensor score, div;
            if (config.divergence == DivergenceKind::Exact) {
              const ScoreModel::WithDivergence s = model.score_and_divergence(x_t, t, yc);
              score = s.score;
              div = s.divergence.to(at::kDouble).cpu();
            } else {
              const at::Tensor probes = draw_probes(config, {config.probes, rows, d}, chunk_gen, x.options());
              const ValueWithDivergence s =
                  hutchinson_divergence([&](const at::Tensor& xg) { return model.score(xg, t, yc); }, x_t, probes);
              score = s.value;
              div = s.divergence.mean(1).to(at::kDouble).cpu();
            }
            const at::Tensor sq = score.reshape({rows, d}).to(at::kDouble).cpu().pow(2).sum(1);
            // -(g^2 |s|^2 / 2 + g^2 div s - f D).
            term = (g2 * (sq * 0.5 + div) - sde.drift_coeff(tc, tc) * static_cast<double>(d)).neg();
          }
          term = term * td.weight;
          sum += term;
          sum_sq += term * term;
          evals += at::tensor({1.0, static_cast<double>(rows)}, dbl);
        }
        const double k = static_cast<double>(config.draws);
        const at::Tensor mean = sum / k;
        at::Tensor prior = expected_prior_log_prob(sde, xc).cpu();
        if (denoising)
          prior += static_cast<double>(d) * std::log(sde.marginal_std(sde.T()) / sde.marginal_std(sde.t_eps()));
        bound.narrow(0, c.local_start, rows).copy_(prior + mean);
        // The sample variance of the draws over their number (0 for a single draw).
        std_error.narrow(0, c.local_start, rows)
            .copy_(k > 1 ? ((sum_sq - sum * mean) / (k - 1)).clamp_min(0).div(k).sqrt() : at::zeros({rows}, dbl));
      },
      progress);
  comm.all_reduce_sum({evals});
  LikelihoodResult result;
  result.stats.function_evals = static_cast<int64_t>(evals[0].item<double>());
  result.stats.row_evals = static_cast<int64_t>(evals[1].item<double>());
  result.log_prob = chunks.gather(bound);
  result.std_error = chunks.gather(std_error);
  return result;
}

}  // namespace sbgm
