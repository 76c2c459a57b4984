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

LikelihoodResult log_likelihood(ScoreModel& model, const SDE& sde, const at::Tensor& x, const at::Tensor& y,
                                const LikelihoodConfig& config, at::Generator gen, const ProgressFn& progress,
                                const Communicator& comm) {
  config.validate();
  if (config.method != LikelihoodMethod::ODE) return variational_bound(model, sde, x, y, config, gen, progress, comm);
  if (x.dim() < 2 || x.size(0) < 1) throw InvalidArgument("points must have shape [N, ...] with N >= 1");
  const int64_t n = x.size(0), d = x.numel() / n;
  const RowChunks chunks(n, config.chunk_size, gen, x.options(), comm);
  const int64_t local = chunks.local_rows();
  at::Tensor log_prob = at::empty({local}, x.options().dtype(at::kDouble));
  at::Tensor std_error = at::zeros({local}, x.options().dtype(at::kDouble));
  at::Tensor x_T_local = at::empty_like(x.narrow(0, chunks.local_begin(), local));
  // Solver statistics, summed over chunks and then over ranks.
  at::Tensor stats = at::zeros({4}, x.options().dtype(at::kDouble));
  chunks.for_each(
      [&](const RowChunk& c) {
        model.forget_kept_state();  // each chunk's values depend on its rows only
        const at::Tensor xc = x.narrow(0, c.start, c.rows);
        std::vector<int64_t> shape = xc.sizes().vec();
        const at::Tensor probes = config.divergence == DivergenceKind::Hutchinson
                                      ? draw_probes(config, {config.probes, c.rows, d}, c.gen, x.options())
                                      : at::Tensor();
        AugmentedFlow flow(model, sde, shape, y.defined() ? y.narrow(0, c.start, c.rows) : at::Tensor(), probes);
        const at::Tensor state0 =
            at::cat({xc.reshape({c.rows, d}), at::zeros({c.rows, flow.accumulators()}, x.options())}, 1);
        SolveStats s;
        const at::Tensor state1 =
            config.solver.per_row
                ? odeint_rowwise(std::cref(flow), state0, sde.t_eps(), sde.T(), config.solver, &s)
                : odeint([&](double t, const at::Tensor& state) { return flow(at::full({c.rows}, t, state.options()), state); },
                         state0, sde.t_eps(), sde.T(), config.solver, &s);
        stats += at::tensor({static_cast<double>(s.accepted), static_cast<double>(s.rejected),
                             static_cast<double>(s.function_evals), static_cast<double>(s.row_evals)},
                            stats.options());
        const at::Tensor x_T = state1.narrow(1, 0, d).reshape(shape);
        const at::Tensor delta = state1.narrow(1, d, flow.accumulators()).to(at::kDouble);
        const at::Tensor prior = sde.prior_log_prob(x_T).to(at::kDouble);
        log_prob.narrow(0, c.local_start, c.rows).copy_(prior + delta.mean(1));
        if (flow.accumulators() > 1)
          std_error.narrow(0, c.local_start, c.rows).copy_(delta.std(1) / std::sqrt(flow.accumulators()));
        x_T_local.narrow(0, c.local_start, c.rows).copy_(x_T);
      },
      progress);
  comm.all_reduce_sum({stats});
  LikelihoodResult result;
  result.log_prob = chunks.gather(log_prob);
  result.std_error = chunks.gather(std_error);
  result.x_T = chunks.gather(x_T_local);
  const at::Tensor totals = stats.cpu();
  result.stats.accepted = static_cast<int64_t>(totals[0].item<double>());
  result.stats.rejected = static_cast<int64_t>(totals[1].item<double>());
  result.stats.function_evals = static_cast<int64_t>(totals[2].item<double>());
  result.stats.row_evals = static_cast<int64_t>(totals[3].item<double>());
  return result;
}

}  // namespace sbgm
