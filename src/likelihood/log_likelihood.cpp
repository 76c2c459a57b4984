#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/likelihood/variational_bound.hpp"

#include <ATen/ATen.h>

#include "sbgm/dist/row_chunks.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

constexpr EnumNames<DivergenceKind, 2> kDivergenceNames{
    {{DivergenceKind::Exact, "exact"}, {DivergenceKind::Hutchinson, "hutchinson"}}};
constexpr EnumNames<ProbeNoise, 2> kNoiseNames{{{ProbeNoise::Rademacher, "rademacher"}, {ProbeNoise::Gaussian, "gaussian"}}};

// The augmented right-hand side for one chunk: state [B, D + P] = [x flattened, Delta_1..P].
class AugmentedFlow {
 public:
  AugmentedFlow(ScoreModel& model, const SDE& sde, std::vector<int64_t> x_shape, const at::Tensor& y,
                const at::Tensor& probes)
      : model_(model), sde_(sde), x_shape_(std::move(x_shape)), y_(y), probes_(probes) {}

  // t [b], state [b, D + P]; rows: which of the chunk's rows these are (undefined: all of them).
  at::Tensor operator()(const at::Tensor& t, const at::Tensor& state, const at::Tensor& rows = {}) const {
    const int64_t b = state.size(0), d = state.size(1) - accumulators();
    std::vector<int64_t> x_shape = x_shape_;
    x_shape[0] = b;
    const at::Tensor y = y_.defined() && rows.defined() && y_.size(0) == x_shape_[0] ? y_.index_select(0, rows) : y_;
    if (!probes_.defined()) {
      const at::Tensor x = state.narrow(1, 0, d).reshape(x_shape);
      const ScoreModel::VelocityWithDivergence v = model_.velocity_and_divergence(x, t, y, sde_);
      return at::cat({v.velocity.reshape({b, d}), v.divergence.unsqueeze(1)}, 1);
    }
    // eps^T J eps for each fixed probe, through autograd.
    const at::Tensor probes = rows.defined() ? probes_.index_select(1, rows) : probes_;
    const ValueWithDivergence v = hutchinson_divergence(
        [&](const at::Tensor& xg) { return model_.velocity(xg, t, y, sde_); }, state.narrow(1, 0, d).reshape(x_shape), probes);
    return at::cat({v.value.reshape({b, d}), v.divergence}, 1);
  }

  int64_t accumulators() const { return probes_.defined() ? probes_.size(0) : 1; }

 private:
  ScoreModel& model_;
  const SDE& sde_;
  std::vector<int64_t> x_shape_;
  at::Tensor y_, probes_;
};

}  // namespace

std::string to_string(DivergenceKind v) { return enum_to_string(v, kDivergenceNames); }
std::string to_string(ProbeNoise v) { return enum_to_string(v, kNoiseNames); }
DivergenceKind divergence_from_string(const std::string& s) { return enum_from_string(s, kDivergenceNames, "divergence"); }
ProbeNoise probe_noise_from_string(const std::string& s) { return enum_from_string(s, kNoiseNames, "probe noise"); }

namespace {
constexpr EnumNames<TimeProposal, 2> kTimeNames{{{TimeProposal::Uniform, "uniform"}, {TimeProposal::LogSNR, "logsnr"}}};
constexpr EnumNames<LikelihoodMethod, 3> kMethodNames{{{LikelihoodMethod::ODE, "ode"},
                                                       {LikelihoodMethod::ELBO, "elbo"},
                                                       {LikelihoodMethod::ELBODenoising, "elbo-dsm"}}};
}  // namespace
std::string to_string(LikelihoodMethod v) { return enum_to_string(v, kMethodNames); }
LikelihoodMethod likelihood_method_from_string(const std::string& s) {
  return enum_from_string(s, kMethodNames, "likelihood method ({bound})");
}
std::string to_string(TimeProposal v) { return enum_to_string(v, kTimeNames); }
TimeProposal time_proposal_from_string(const std::string& s) { return enum_from_string(s, kTimeNames, "time proposal"); }

at::Tensor draw_probes(const LikelihoodConfig& config, at::IntArrayRef shape, at::Generator gen,
                       const at::TensorOptions& options) {
  return config.noise == ProbeNoise::Gaussian ? at::normal(0.0, 1.0, shape, gen, options)
                                              : at::bernoulli(at::full(shape, 0.5, options), gen) * 2 - 1;
}

void LikelihoodConfig::validate() const {
  solver.validate();
  if (probes < 1) throw InvalidArgument("{probes} must be at least 1");
  if (draws < 1) throw InvalidArgument("{draws} (the bound's Monte-Carlo draws per row) must be at least 1");
  if (chunk_size < 1) throw InvalidArgument("likelihood chunk size must be at least 1");
}

namespace {

// One chunk's augmented ODE [x, Delta_1..P] solved from t0 to t1, starting from x [rows, ...] and
// Delta = 0; probes drawn from the chunk's generator when the divergence is Hutchinson's.
struct AugmentedEnd {
  at::Tensor x;      // [rows, ...] at t1
  at::Tensor delta;  // [rows, P] float64: the integral of the divergence from t0 to t1
};
AugmentedEnd solve_augmented(ScoreModel& model, const SDE& sde, const at::Tensor& x, const at::Tensor& y,
                             const LikelihoodConfig& config, const RowChunk& c, double t0, double t1,
                             at::Tensor& stats) {
  model.forget_kept_state();  // each chunk's values depend on its rows only
  const int64_t d = x.numel() / c.rows;
  const at::Tensor probes = config.divergence == DivergenceKind::Hutchinson
                                ? draw_probes(config, {config.probes, c.rows, d}, c.gen, x.options())
                                : at::Tensor();
  AugmentedFlow flow(model, sde, x.sizes().vec(), y, probes);
  const at::Tensor state0 = at::cat({x.reshape({c.rows, d}), at::zeros({c.rows, flow.accumulators()}, x.options())}, 1);
  SolveStats s;
  const at::Tensor state1 =
      config.solver.per_row
          ? odeint_rowwise(std::cref(flow), state0, t0, t1, config.solver, &s)
          : odeint([&](double t, const at::Tensor& state) { return flow(at::full({c.rows}, t, state.options()), state); },
                   state0, t0, t1, config.solver, &s);
  stats += at::tensor({static_cast<double>(s.accepted), static_cast<double>(s.rejected),
                       static_cast<double>(s.function_evals), static_cast<double>(s.row_evals)},
                      stats.options());
  return {state1.narrow(1, 0, d).reshape(x.sizes()), state1.narrow(1, d, flow.accumulators()).to(at::kDouble)};
}

// One rank's log p estimates, chunk by chunk, with the solver's statistics; gathered at the end.
class Estimates {
 public:
  Estimates(const RowChunks& chunks, const at::TensorOptions& options)
      : chunks_(chunks),
        log_prob_(at::empty({chunks.local_rows()}, options.dtype(at::kDouble))),
        std_error_(at::zeros({chunks.local_rows()}, options.dtype(at::kDouble))),
        stats_(at::zeros({4}, options.dtype(at::kDouble))) {}

  // Statistics summed over chunks (as solve_augmented adds them) and then ranks.
  at::Tensor& stats() { return stats_; }

  // A chunk's log p = log p_T + the divergence's integral from t_eps to T, estimated by the mean
  // of its P accumulators [rows, P], with the standard error of that mean (zero for one).
  void write(const RowChunk& c, const at::Tensor& prior, const at::Tensor& integral) {
    log_prob_.narrow(0, c.local_start, c.rows).copy_(prior + integral.mean(1));
    if (integral.size(1) > 1)
      std_error_.narrow(0, c.local_start, c.rows).copy_(integral.std(1) / std::sqrt(integral.size(1)));
  }

  // Every row's values on every rank, into a result's log_prob, std_error and stats.
  template <class Result>
  void gather_into(Result& result) {
    result.log_prob = chunks_.gather(log_prob_);
    result.std_error = chunks_.gather(std_error_);
    chunks_.comm().all_reduce_sum({stats_});
    const at::Tensor totals = stats_.cpu();
    result.stats.accepted = static_cast<int64_t>(totals[0].item<double>());
    result.stats.rejected = static_cast<int64_t>(totals[1].item<double>());
    result.stats.function_evals = static_cast<int64_t>(totals[2].item<double>());
    result.stats.row_evals = static_cast<int64_t>(totals[3].item<double>());
  }

 private:
  const RowChunks& chunks_;
  at::Tensor log_prob_, std_error_, stats_;
};

}  // namespace

LikelihoodResult log_likelihood(ScoreModel& model, const SDE& sde, const at::Tensor& x, const at::Tensor& y,
                                const LikelihoodConfig& config, at::Generator gen, const ProgressFn& progress,
                                const Communicator& comm) {
  config.validate();
  if (config.method != LikelihoodMethod::ODE) return variational_bound(model, sde, x, y, config, gen, progress, comm);
  if (x.dim() < 2 || x.size(0) < 1) throw InvalidArgument("points must have shape [N, ...] with N >= 1");
  const RowChunks chunks(x.size(0), config.chunk_size, gen, x.options(), comm);
  Estimates estimates(chunks, x.options());
  at::Tensor x_T_local = at::empty_like(x.narrow(0, chunks.local_begin(), chunks.local_rows()));
  chunks.for_each(
      [&](const RowChunk& c) {
        const AugmentedEnd end = solve_augmented(model, sde, x.narrow(0, c.start, c.rows),
                                                 y.defined() ? y.narrow(0, c.start, c.rows) : at::Tensor(), config, c,
                                                 sde.t_eps(), sde.T(), estimates.stats());
        estimates.write(c, sde.prior_log_prob(end.x).to(at::kDouble), end.delta);
        x_T_local.narrow(0, c.local_start, c.rows).copy_(end.x);
      },
      progress);
  LikelihoodResult result;
  estimates.gather_into(result);
  result.x_T = chunks.gather(x_T_local);
  return result;
}

DrawsWithDensity draw_with_log_likelihood(ScoreModel& model, const SDE& sde, const std::vector<int64_t>& sample_shape,
                                          int64_t n, const at::Tensor& y, const LikelihoodConfig& config,
                                          at::Generator gen, const at::TensorOptions& options,
                                          const ProgressFn& progress, const Communicator& comm) {
  config.validate();
  if (config.method != LikelihoodMethod::ODE)
    throw InvalidArgument("the density of draws is the probability-flow ODE's: not had from the variational bound");
  if (n < 1) throw InvalidArgument("the number of samples must be at least 1");
  if (y.defined() && y.size(0) != n)
    throw InvalidArgument("got " + std::to_string(y.size(0)) + " condition rows for " + std::to_string(n) + " samples");
  const RowChunks chunks(n, config.chunk_size, gen, options, comm);
  Estimates estimates(chunks, options);
  std::vector<int64_t> local_shape{chunks.local_rows()};
  local_shape.insert(local_shape.end(), sample_shape.begin(), sample_shape.end());
  at::Tensor x_local = at::empty(local_shape, options);
  chunks.for_each(
      [&](const RowChunk& c) {
        std::vector<int64_t> shape{c.rows};
        shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
        const at::Tensor x_T = sde.prior_sample(shape, c.gen, options);  // before the probes, as draw_samples draws
        const AugmentedEnd end = solve_augmented(model, sde, x_T, y.defined() ? y.narrow(0, c.start, c.rows) : at::Tensor(),
                                                 config, c, sde.T(), sde.t_eps(), estimates.stats());
        // Integrated downwards, the accumulators hold minus the integral from t_eps to T.
        estimates.write(c, sde.prior_log_prob(x_T).to(at::kDouble), -end.delta);
        x_local.narrow(0, c.local_start, c.rows).copy_(end.x.detach());
      },
      progress);
  DrawsWithDensity result;
  estimates.gather_into(result);
  result.x = chunks.gather(x_local);
  return result;
}

}  // namespace sbgm
