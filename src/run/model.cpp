#include "sbgm/run/model.hpp"

#include <ATen/ATen.h>
#include <c10/util/accumulate.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "sbgm/io/npz.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/nets/ensemble.hpp"
#include "sbgm/nets/gaussian_baseline.hpp"
#include "sbgm/nets/module_buffers.hpp"
#include "sbgm/nets/scaled_input.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/nets/summary_net.hpp"
#include "sbgm/run/trained_model.hpp"
#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/score/mixture_score.hpp"
#include "sbgm/score/order_averaged_score.hpp"
#include "sbgm/score/score_model.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"
#include "sbgm/util/shape_text.hpp"

namespace sbgm {

std::unique_ptr<ScoreModel> Model::score_model(const ScoreOptions& options) const {
  if (mixture) {
    if (options.guidance != 0)
      throw InvalidArgument("{guidance} applies to trained models with condition dropout, not to a mixture");
    if (options.precision != Precision::Float32)
      throw InvalidArgument("bfloat16 applies to trained networks, not to a mixture");
    if (options.set_orders != 1)
      throw InvalidArgument("{set_orders} applies to trained networks whose condition is a set, not to a mixture");
    return std::make_unique<GaussianMixtureScore>(*mixture, sde);
  }
  auto score = std::make_unique<NetworkScore>(net, sde, config.model.output, condition_input(), options.guidance,
                                              options.precision);
  if (options.set_orders == 1) return score;
  if (options.set_orders < 1) throw InvalidArgument("{set_orders} must be at least 1");
  const int64_t elements = cond_dim > 0 ? condition_elements(config, cond_dim) : 1;
  if (elements < 2)
    throw InvalidArgument("{set_orders} averages over the orders of a set's elements: the model's condition is no "
                          "set (data.cond_set)");
  if (config.model.summary == SummaryKind::Set)
    throw InvalidArgument("{set_orders}: the model's set summary is blind to the elements' order already");
  return std::make_unique<OrderAveragedScore>(std::move(score), elements, element_orders(elements, options.set_orders));
}

at::Tensor Model::to_model_space(const at::Tensor& x) const { return scaling.to_model(bounds.to_unbounded(x)); }

at::Tensor Model::to_data_space(const at::Tensor& z) const { return bounds.to_bounded(scaling.to_data(z)); }

at::Tensor Model::log_abs_det_jacobian(const at::Tensor& x) const {
  return bounds.log_abs_det_jacobian(x) + scaling.log_abs_det_jacobian();
}

bool Model::has_path_score() const { return !config.train.loss.ot_coupling; }

void require_path_score(const Model& model, const std::string& what) {
  if (model.has_path_score()) return;
  throw InvalidArgument(what + " uses the path's score, which a flow model trained with minibatch optimal transport "
                               "(train.ot_coupling) does not have: sample it by the ODE (" +
                               samplers_that_follow_the_ode + ") and evaluate it by the ODE's log-likelihood");
}

at::Tensor Model::inside(const at::Tensor& x) const {
  const at::Tensor rows = x.cpu();
  return bounds.inside(rows) & support.inside(rows);
}

void Model::set_box(const BoxUse& box) {
  bounds = box.mapped;
  support = box.rejected;
}

ConditionInput Model::condition_input() const { return {cond_dim, !mixture && config.train.cond_dropout > 0}; }

int64_t Model::parameter_count() const {
  if (mixture) return mixture->components() * (1 + mixture->dim() + mixture->dim() * mixture->dim());
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

void Model::set_dtype(at::ScalarType t) {
  if (t != at::kFloat && t != at::kDouble) throw InvalidArgument("a model computes in float32 or float64 only");
  dtype = t;
  if (net) net->to(t);
}

BoxUse model_box(const RunConfig& config, const std::vector<int64_t>& data_shape) {
  const int64_t features = c10::multiply_integers(data_shape);
  BoxUse use = use_box(Bounds::from_lists(config.data.lower, config.data.upper, features), config.data.keep_within);
  if (config.data.transform != FeatureTransform::Log) return use;
  if (!use.mapped.none())
    throw InvalidArgument("data.transform = log is the map of a lower bound 0, and data.lower / data.upper are mapped "
                          "as well (data.keep_within = map): keep the box by rejection (data.keep_within = reject), or "
                          "give the bounds alone (data.transform = none)");
  use.mapped = Bounds::from_lists({0.0}, {}, features);
  return use;
}

namespace {

// Features of the condition the score network itself takes: the summary's, if there is one.
int64_t net_condition_dim(const RunConfig& config, int64_t cond_dim) {
  const int64_t dim = config.model.summary == SummaryKind::None ? cond_dim : config.model.summary_dim;
  return ConditionInput{dim, config.train.cond_dropout > 0}.net_dim();
}

}  // namespace

int64_t condition_elements(const RunConfig& config, int64_t cond_dim) {
  const int64_t element = config.data.cond_set;
  if (element <= 0) return 1;  // no set, or not settled yet (auto)
  if (cond_dim % element != 0)
    throw InvalidArgument("data.cond_set = " + std::to_string(element) + ": the condition's " + std::to_string(cond_dim) +
                          " features are not whole elements of " + std::to_string(element));
  return cond_dim / element;
}

std::shared_ptr<ScoreNet> build_net(const RunConfig& config, const std::vector<int64_t>& data_shape, int64_t cond_dim) {
  torch::manual_seed(config.train.seed);
  const bool droppable = config.train.cond_dropout > 0;
  const int64_t net_cond_dim = net_condition_dim(config, cond_dim);
  auto member = [&]() -> std::shared_ptr<ScoreNet> {
    if (config.model.summary == SummaryKind::None) return make_score_net(config.model, data_shape, net_cond_dim);
    // made first: its weights draw first
    auto summary = std::make_shared<SummaryNet>(config.model, cond_dim, config.data.cond_set);
    auto net = make_score_net(config.model, data_shape, net_cond_dim);
    return std::make_shared<SummarizedConditionNet>(std::move(summary), std::move(net), droppable);
  };
  std::shared_ptr<ScoreNet> net;
  if (config.model.ensemble > 1) {
    std::vector<std::shared_ptr<ScoreNet>> members;
    for (int64_t k = 0; k < config.model.ensemble; ++k) members.push_back(member());
    net = std::make_shared<EnsembleNet>(std::move(members));
  } else {
    net = member();
  }
  if (config.model.input_scaling == InputScaling::Unit) net = std::make_shared<ScaledInputNet>(net, make_sde(config.sde));
  if (config.model.baseline != Baseline::Gaussian) return net;
  return std::make_shared<GaussianBaselineNet>(net, make_sde(config.sde), config.model.output,
                                               c10::multiply_integers(data_shape), cond_dim);
}

Model model_with(const ModelSpec& spec, std::shared_ptr<ScoreNet> net, int64_t step, c10::Device device) {
  Model m;
  m.config = spec.config;
  m.data_shape = spec.data_shape;
  m.cond_dim = spec.cond_dim;
  m.set_box(model_box(spec.config, spec.data_shape));
  m.scaling = spec.scaling;
  m.cond_scaling = spec.cond_scaling;
  m.data_mean = spec.data_mean;
  m.data_cov = spec.data_cov;
  m.step = step;
  m.device = device;
  m.sde = make_sde(spec.config.sde);
  m.net = std::move(net);
  return m;
}

Model model_from(const TrainedModel& c, c10::Device device) {
  Model m = model_with(c, build_net(c.config, c.data_shape, c.cond_dim), c.step, device);
  at::NoGradGuard no_grad;
  int64_t offset = 0;
  const auto params = m.net->parameters();
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  if (total != c.weights.numel())
    throw IOError("checkpoint holds " + std::to_string(c.weights.numel()) + " weights but its config describes " +
                  std::to_string(total));
  for (auto& p : m.net->parameters()) {
    p.copy_(c.weights.narrow(0, offset, p.numel()).view(p.sizes()));
    offset += p.numel();
  }
  load_module_buffers(*m.net, c.buffers);
  m.net->to(device);
  m.net->eval();
  return m;
}

Model load_model(const std::string& run_dir_or_file, bool use_ema, c10::Device device) {
  return model_from(load_trained_model(run_dir_or_file, use_ema ? Weights::Averaged : Weights::Raw), device);
}

GaussianMixture read_gaussian_mixture(const std::string& npz_path) {
  const std::map<std::string, at::Tensor> arrays = read_npz(npz_path);
  for (const char* name : {"weights", "means", "covs"})
    if (!arrays.count(name)) throw IOError(npz_path + ": no array '" + name + "' (a mixture needs weights, means and covs)");
  const auto maps = arrays.find("cond_maps");
  try {
    return GaussianMixture(arrays.at("weights"), arrays.at("means"), arrays.at("covs"),
                           maps == arrays.end() ? at::Tensor() : maps->second);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(npz_path + ": " + e.what());
  }
}

Model mixture_model(const GaussianMixture& mixture, const SDEConfig& sde, c10::Device device) {
  sde.validate();
  Model m;
  m.config.sde = sde;
  m.data_shape = {mixture.dim()};
  m.cond_dim = mixture.cond_dim();
  m.device = device;
  m.sde = make_sde(sde);
  m.dtype = at::kDouble;
  m.mixture = std::make_shared<const GaussianMixture>(mixture);
  return m;
}

namespace {

// Floats of the widest activation a vector network holds per row while sampling (0: not known).
int64_t widest_activation_per_row(const Model& model) {
  const NetConfig& net = model.config.model;
  switch (net.kind) {
    case NetKind::MLP:
    case NetKind::ResNet: return net.width;
    case NetKind::Transformer: {
      // One token per feature of x and of the condition; the channel MLP or the attention scores.
      const int64_t tokens = c10::multiply_integers(model.data_shape) + net_condition_dim(model.config, model.cond_dim);
      const auto channel_mlp = static_cast<int64_t>(std::ceil(net.width * net.mlp_ratio));
      return tokens * std::max(channel_mlp, net.heads * tokens);
    }
    default: return 0;
  }
}

// Rows sampled at once. An image network's activations outweigh the state many times over: it
// goes by rows. A vector network's chunk is sized by its widest activation: on a CPU to stay in
// cache (a 4 x 64 transformer on 20 tokens drew a row in 9.1 ms in chunks of 409 rows, 11.6 ms in
// chunks of 6,553, 26.5 ms in one chunk of 20,000, where glibc maps and faults each activation in
// afresh; an MLP's speed did not change from 8,192 rows to 100,000), on a GPU to fill it.
int64_t sampling_chunk_rows(const Model& model) {
  if (model.analytic()) return 0;
  if (is_image_net(model.config.model.kind)) return kImageChunkRows;
  const int64_t widest = widest_activation_per_row(model);
  const int64_t most_floats = model.device.is_cpu() ? int64_t{1} << 21 : int64_t{1} << 26;  // 8 or 256 MiB
  return widest > 0 ? std::max<int64_t>(1, most_floats / widest) : 0;
}

// The sampler's draws mapped into data space, no matter the support.
at::Tensor draw_in_data_space(const Model& model, ScoreModel& score, Sampler& sampler, int64_t n, const at::Tensor& y,
                              uint64_t seed, const ProgressFn& progress, const Communicator& comm) {
  const c10::Device device = model.device;
  DrawConfig draw;
  draw.n = n;
  draw.chunk_size = sampling_chunk_rows(model);
  at::Tensor x = draw_samples(sampler, score, *model.sde, model.data_shape, draw, y, make_generator(device, seed),
                              at::TensorOptions().device(device).dtype(model.dtype), progress, comm);
  return model.to_data_space(x).cpu();
}

// Draws in data space and, where asked for, their log-density q there (the model's, before any
// normalisation by the support) with its standard error.
struct Draws {
  at::Tensor x, log_prob, std_error;
  // Rows `to` of these draws become the rows `from` of other draws.
  void take(const at::Tensor& to, const Draws& other, const at::Tensor& from) {
    x.index_copy_(0, to, other.x.index_select(0, from));
    if (!log_prob.defined()) return;
    log_prob.index_copy_(0, to, other.log_prob.index_select(0, from));
    std_error.index_copy_(0, to, other.std_error.index_select(0, from));
  }
};
// n draws for the conditions y ([n, C] or undefined) with a generator seeded with seed.
using DrawFn = std::function<Draws(int64_t n, const at::Tensor& y, uint64_t seed)>;

// The probability-flow ODE's draws with their log-density, mapped into data space (the maps'
// log-Jacobian added, as for model_log_likelihood_unnormalised).
Draws draw_with_density_in_data_space(const Model& model, ScoreModel& score, const LikelihoodConfig& config, int64_t n,
                                      const at::Tensor& y, uint64_t seed, const ProgressFn& progress,
                                      const Communicator& comm) {
  const c10::Device device = model.device;
  const DrawsWithDensity d =
      draw_with_log_likelihood(score, *model.sde, model.data_shape, n, y, config, make_generator(device, seed),
                               at::TensorOptions().device(device).dtype(model.dtype), progress, comm);
  Draws draws;
  draws.x = model.to_data_space(d.x).cpu();
  draws.log_prob = d.log_prob.cpu() + model.log_abs_det_jacobian(draws.x).to(at::kDouble);
  draws.std_error = d.std_error.cpu();
  return draws;
}

// A generator seed of its own for each further round of draws.
uint64_t round_seed(uint64_t seed, uint64_t round) { return seed ^ (0x9E3779B97F4A7C15ULL * round); }

// The distinct rows of model-space conditions y [n, C] (undefined: one group of n rows): the
// group of each row [n] and the rows of each group's first member.
struct ConditionGroups {
  at::Tensor group;  // [n] long
  at::Tensor first;  // [groups] long
  int64_t count() const { return first.numel(); }
  at::Tensor sizes() const { return at::bincount(group, {}, count()).to(at::kDouble); }
};
ConditionGroups condition_groups(const at::Tensor& y, int64_t n) {
  if (!y.defined()) return {at::zeros({n}, at::kLong), at::zeros({1}, at::kLong)};
  const at::Tensor inverse = std::get<1>(at::unique_dim(y.cpu(), 0, /*sorted=*/true, /*return_inverse=*/true));
  const int64_t groups = inverse.numel() > 0 ? inverse.max().item<int64_t>() + 1 : 0;
  // Any member stands for its group: scatter writes one row index per group.
  const at::Tensor first = at::zeros({groups}, at::kLong).scatter_(0, inverse, at::arange(n, at::kLong));
  return {inverse, first};
}

// How many of each group's rows the mask [n] holds: [groups] float64.
at::Tensor count_per_group(const ConditionGroups& groups, const at::Tensor& mask) {
  return at::zeros({groups.count()}, at::kDouble).index_add_(0, groups.group, mask.to(at::kDouble));
}

// First draws whose rows outside the support are drawn again (sample_model_with). Rows given up
// on are moved onto the box; they are no draws of the model, so their log-density is NaN.
Draws redraw_outside(const Model& model, const DrawFn& draw, Draws first, const at::Tensor& y, uint64_t seed,
                     SupportStats* report) {
  at::Tensor& x = first.x;
  const int64_t n = x.size(0);
  const at::Tensor in = model.support.inside(x);
  // The rows of a condition whose first draws all but miss the support would spend a hundred
  // times the sampling and still miss: they go onto the box at once.
  const ConditionGroups groups = condition_groups(y, n);
  const at::Tensor kept = count_per_group(groups, in);
  const at::Tensor sizes = groups.sizes();
  const at::Tensor starved = ((kept * kMostDrawsPerSample < sizes) & (sizes >= kMostDrawsPerSample)).index_select(0, groups.group);
  const at::Tensor share = in.to(at::kDouble).mean();
  const double acceptance = std::max(share.item<double>(), 1.0 / kMostDrawsPerSample);
  at::Tensor outside = (~in & ~starved).nonzero().squeeze(1);
  at::Tensor given_up = (~in & starved).nonzero().squeeze(1);
  if (report) {
    report->rows += n;
    report->outside += n - in.sum().item<int64_t>();
    report->conditions += groups.count();
    if (groups.count() > 0) report->lowest_share = std::min(report->lowest_share, (kept / sizes).min().item<double>());
  }
  int64_t used = 1;  // draws each row still outside has had
  for (uint64_t round = 1; outside.numel() > 0; ++round) {
    const int64_t k = outside.numel();
    // Enough copies per row that most rows find a draw inside, doubling for the rows that do not;
    // no round larger than four times the sample.
    const int64_t wanted = static_cast<int64_t>(std::ceil(2.0 / acceptance)) << std::min<uint64_t>(round - 1, 20);
    const int64_t copies = std::min({wanted, kMostDrawsPerSample - used, std::max<int64_t>(1, 4 * n / k)});
    if (copies < 1) {
      given_up = at::cat({given_up, outside});
      break;
    }
    used += copies;
    if (report) report->redraws += k * copies;
    const at::Tensor rows_y = y.defined() ? y.index_select(0, outside.to(y.device())).repeat_interleave(copies, 0) : y;
    const Draws more = draw(k * copies, rows_y, round_seed(seed, round));
    const at::Tensor hits = model.support.inside(more.x).reshape({k, copies});
    const at::Tensor found = hits.any(1);
    // The first copy inside: a draw from the model given the support.
    const at::Tensor pick = at::arange(k, at::kLong) * copies + hits.to(at::kInt).argmax(1);
    first.take(outside.masked_select(found), more, pick.masked_select(found));
    outside = outside.masked_select(~found);
  }
  if (given_up.numel() > 0) {
    x.index_copy_(0, given_up, model.support.clamp(x.index_select(0, given_up)));
    if (first.log_prob.defined()) {
      first.log_prob.index_fill_(0, given_up, std::numeric_limits<double>::quiet_NaN());
      first.std_error.index_fill_(0, given_up, std::numeric_limits<double>::quiet_NaN());
    }
  }
  if (report) report->clamped += given_up.numel();
  return first;
}

}  // namespace

std::string SupportStats::summary() const {
  if (outside == 0 && clamped == 0) return {};
  const auto percent = [](double share) {
    std::ostringstream text;
    text << std::setprecision(share < 0.1 ? 2 : 3) << 100 * share << "%";
    return text.str();
  };
  std::string line = percent(double(outside) / double(rows)) + " of the " + std::to_string(rows) +
                     " samples' first draws fell outside data.lower .. data.upper and were drawn again (" +
                     std::to_string(redraws) + " more draws";
  if (conditions > 1) line += "; the lowest share inside for one condition: " + percent(lowest_share);
  line += ")";
  if (clamped > 0)
    line += "; " + std::to_string(clamped) +
            " samples were moved onto the box's nearest point, their conditions having under 1% of the model's draws "
            "inside: the model puts its mass outside the prior there";
  return line;
}

at::Tensor sample_model_with(const Model& model, ScoreModel& score, Sampler& sampler, int64_t n, const at::Tensor& y,
                             uint64_t seed, const ProgressFn& progress, SupportStats* report, const Communicator& comm) {
  const DrawFn draw = [&](int64_t rows, const at::Tensor& rows_y, uint64_t s) {
    Draws draws;
    draws.x = draw_in_data_space(model, score, sampler, rows, rows_y, s, progress, comm);
    return draws;
  };
  Draws first = draw(n, y, seed);
  if (model.support.none()) return first.x;
  return redraw_outside(model, draw, std::move(first), y, seed, report).x;
}

int64_t support_draws_of(const Model& model, const std::optional<int64_t>& asked) {
  if (!asked) return kSupportDraws;
  if (model.support.none())
    throw InvalidArgument("{support_draws} estimate the share of a model's draws inside its box (data.keep_within = "
                          "reject); this model has no such box");
  check_support_draws(*asked);
  return *asked;
}

void check_support_draws(int64_t draws) {
  if (draws < 1 || draws > kMostSupportDraws)
    throw InvalidArgument("{support_draws} must be in [1, " + std::to_string(kMostSupportDraws) + "], got " +
                          std::to_string(draws));
}

namespace {

// The adaptive solver's tolerance for the draws that estimate Z (below).
constexpr double kSupportTolerance = 1e-3;

// How many of m draws of the probability-flow ODE given each condition of group_y
// ([g, C] in model space, or undefined for one group) fall inside the model's support: [g]
// float64. Z is the mass inside of the density that log q is, the ODE's: drawn by that ODE. Its
// tolerance need not be the likelihood's: a draw moved by the solver's error (relative
// kSupportTolerance) changes sides only within that distance of the box's faces, far below what
// m draws resolve (Z's error sqrt((1 - Z) / (Z m)), 0.01-0.03). For the 2 x 32 transformer on
// gaussian_linear_uniform the whole `sbgm loglik` of one condition took 8.9 s against 37 s at the
// default 1e-5, its log p 0.003 nats from the tight one's.
at::Tensor support_hits(const Model& model, ScoreModel& score, const SolverConfig& solver, const at::Tensor& group_y,
                        int64_t groups, int64_t m, uint64_t seed, const ProgressFn& progress, const Communicator& comm) {
  SamplerOptions ode;
  ode.kind = SamplerKind::ProbabilityFlow;
  ode.solver = solver;
  ode.solver.rtol = std::max(solver.rtol, kSupportTolerance);
  ode.solver.atol = std::max(solver.atol, kSupportTolerance);
  ode.steps = solver.steps;
  auto sampler = make_sampler(ode);
  const at::Tensor draws_y = group_y.defined() ? group_y.repeat_interleave(m, 0) : group_y;
  const at::Tensor draws =
      draw_in_data_space(model, score, *sampler, groups * m, draws_y, round_seed(seed, 0x5a), progress, comm);
  return model.support.inside(draws).reshape({groups, m}).to(at::kDouble).sum(1);
}

// log q - log Z(y) for rows whose group's draws had `hits` of `draws` inside the support (both
// [groups]), Z's Monte-Carlo error sqrt((1 - Z) / (Z m)) joined to the standard error. No draw
// inside counts as half a draw: Z = 1 / (2m), its error 1.4 nats for m = 1000.
// Returns Z's error per row.
at::Tensor normalise_by_support(at::Tensor& log_prob, at::Tensor& std_error, const at::Tensor& hits,
                                const at::Tensor& draws, const at::Tensor& group) {
  const at::Tensor z_groups = hits.clamp_min(0.5) / draws;
  const at::Tensor z = z_groups.index_select(0, group), m = draws.index_select(0, group);
  const at::Tensor z_error = at::sqrt((1 - z) / (z * m));
  log_prob = log_prob - at::log(z).to(log_prob.dtype());
  std_error = at::hypot(std_error.to(at::kDouble), z_error).to(std_error.dtype());
  return z_error;
}

}  // namespace

ModelDraws sample_model_with_density(const Model& model, ScoreModel& score, const LikelihoodConfig& config, int64_t n,
                                     const at::Tensor& y, uint64_t seed, const ProgressFn& progress,
                                     SupportStats* report, const Communicator& comm, int64_t support_draws) {
  check_support_draws(support_draws);
  const DrawFn draw = [&](int64_t rows, const at::Tensor& rows_y, uint64_t s) {
    return draw_with_density_in_data_space(model, score, config, rows, rows_y, s, progress, comm);
  };
  Draws first = draw(n, y, seed);
  if (model.support.none()) return {first.x, first.log_prob, first.std_error, {}, {}};
  // Z(y) from the first draws, which are draws of q itself; a condition with fewer of them than
  // model_log_likelihood takes gets that many draws of its own.
  const ConditionGroups groups = condition_groups(y, n);
  at::Tensor hits = count_per_group(groups, model.support.inside(first.x));
  at::Tensor draws = groups.sizes();
  const at::Tensor few = (draws < static_cast<double>(support_draws)).nonzero().squeeze(1);
  if (few.numel() > 0) {
    const at::Tensor few_y = y.defined() ? y.index_select(0, groups.first.index_select(0, few).to(y.device())) : y;
    hits.index_copy_(0, few,
                     support_hits(model, score, config.solver, few_y, few.numel(), support_draws, seed, progress, comm));
    draws.index_fill_(0, few, static_cast<double>(support_draws));
  }
  Draws kept = redraw_outside(model, draw, std::move(first), y, seed, report);
  const at::Tensor shared = normalise_by_support(kept.log_prob, kept.std_error, hits, draws, groups.group);
  return {kept.x, kept.log_prob, kept.std_error, shared, groups.group};
}

namespace {

// Draws one sample per row of y (model space, [n, cond_dim], or undefined): [n, ...sample_shape].
at::Tensor draw_from_model(const Model& model, Sampler& sampler, int64_t n, const at::Tensor& y, uint64_t seed,
                           const ProgressFn& progress, const ScoreOptions& options, SupportStats* report,
                           const Communicator& comm) {
  auto score = model.score_model(options);
  return sample_model_with(model, *score, sampler, n, y, seed, progress, report, comm);
}

void require_unconditional(const Model& model) {
  if (model.cond_dim > 0)
    throw InvalidArgument("the model is conditional on " + std::to_string(model.cond_dim) +
                          "-feature conditions: give conditions ({cond})");
}

}  // namespace

at::Tensor model_conditions(const Model& model, const at::Tensor& cond, int64_t rows) {
  if (model.cond_dim == 0) throw InvalidArgument("the model is unconditional: it takes no conditions ({cond})");
  if (!cond.defined()) require_unconditional(model);  // throws: the model is conditional
  at::Tensor c = cond.dim() <= 1 ? cond.reshape({1, -1}) : cond.reshape({cond.size(0), -1});
  if (c.size(1) != model.cond_dim)
    throw InvalidArgument("the conditions' rows have " + std::to_string(c.size(1)) + " features (shape " +
                          shape_text(cond.sizes()) + ") but the model takes " + std::to_string(model.cond_dim));
  if (c.size(0) != rows && c.size(0) != 1)
    throw InvalidArgument("got " + std::to_string(c.size(0)) + " condition rows for " + std::to_string(rows) +
                          " data rows (give one row per data row, or a single row)");
  if (!at::isfinite(c).all().item<bool>()) throw InvalidArgument("the conditions contain NaN or Inf");
  c = model.cond_scaling.to_model(transform_conditions(model.config.data.cond_transform, c.to(model.dtype)));
  return c.expand({rows, model.cond_dim}).contiguous().to(model.device);
}

at::Tensor sample_model(const Model& model, Sampler& sampler, int64_t n, uint64_t seed, const ProgressFn& progress,
                        const ScoreOptions& score, SupportStats* report, const Communicator& comm) {
  require_unconditional(model);
  return draw_from_model(model, sampler, n, at::Tensor(), seed, progress, score, report, comm);
}

at::Tensor conditions_of_samples(const Model& model, const at::Tensor& cond, int64_t n) {
  if (n < 1) throw InvalidArgument("the number of samples per condition must be at least 1");
  return model_conditions(model, cond, cond.dim() <= 1 ? 1 : cond.size(0)).repeat_interleave(n, 0);
}

at::Tensor sample_model_given(const Model& model, Sampler& sampler, const at::Tensor& cond, int64_t n, uint64_t seed,
                              const ProgressFn& progress, const ScoreOptions& score, SupportStats* report,
                              const Communicator& comm) {
  const at::Tensor y = conditions_of_samples(model, cond, n);
  const int64_t m = y.size(0) / n;
  std::vector<int64_t> shape{m, n};
  shape.insert(shape.end(), model.data_shape.begin(), model.data_shape.end());
  return draw_from_model(model, sampler, m * n, y, seed, progress, score, report, comm).reshape(shape);
}

at::Tensor sample_model(const Model& model, int64_t n, int64_t steps, uint64_t seed, const ProgressFn& progress) {
  EulerMaruyama sampler({steps, true});
  return sample_model(model, sampler, n, seed, progress);
}

Trajectories model_trajectories(const Model& model, Sampler& sampler, int64_t k, uint64_t seed, const at::Tensor& cond,
                                const ScoreOptions& options) {
  const at::Tensor y = model.cond_dim > 0 || cond.defined() ? model_conditions(model, cond, 1).expand({k, -1}) : at::Tensor();
  auto score = model.score_model(options);
  Trajectories paths = record_trajectories(sampler, *score, *model.sde, model.data_shape, k, y,
                                           make_generator(model.device, seed),
                                           at::TensorOptions().device(model.device).dtype(model.dtype));
  const auto shape = paths.states.sizes().vec();
  std::vector<int64_t> rows{shape[0] * shape[1]};
  rows.insert(rows.end(), shape.begin() + 2, shape.end());
  paths.states = model.to_data_space(paths.states.reshape(rows).to(model.dtype)).to(at::kDouble).reshape(shape);
  return paths;
}

at::Tensor model_rows(const Model& model, const at::Tensor& x) {
  const auto& d = model.data_shape;
  if (x.dim() == 3 && d.size() == 3 && d[0] == 1 && x.size(1) == d[1] && x.size(2) == d[2]) return x.unsqueeze(1);
  return x;
}

namespace {
// A density is the model's own: full precision and unguided, the orders averaged if asked.
ScoreOptions likelihood_score(int64_t set_orders) {
  ScoreOptions options;
  options.set_orders = set_orders;
  return options;
}
}  // namespace

int64_t likelihood_chunk_rows(const Model& model) {
  return !model.analytic() && is_image_net(model.config.model.kind) ? kImageLikelihoodChunkRows
                                                                    : LikelihoodConfig{}.chunk_size;
}

LikelihoodResult model_log_likelihood_unnormalised(const Model& model, const at::Tensor& x_given,
                                                   const LikelihoodConfig& config, uint64_t seed,
                                                   const ProgressFn& progress, const at::Tensor& cond,
                                                   const Communicator& comm, int64_t set_orders) {
  const at::Tensor x = model_rows(model, x_given);
  const std::vector<int64_t> shape(x.sizes().begin() + 1, x.sizes().end());
  if (shape != model.data_shape)
    throw InvalidArgument("the data's rows have shape " + shape_text(shape) + " but the model was trained on " +
                          shape_text(model.data_shape));
  if (config.method != LikelihoodMethod::ODE) require_path_score(model, "the variational bound");
  const at::Tensor y = model.cond_dim > 0 || cond.defined() ? model_conditions(model, cond, x.size(0)) : at::Tensor();
  const c10::Device device = model.device;
  auto score = model.score_model(likelihood_score(set_orders));
  LikelihoodResult r = log_likelihood(*score, *model.sde, model.to_model_space(x.to(model.dtype)).to(device, model.dtype),
                                      y, config, make_generator(device, seed), progress, comm);
  // Outside the bounds the density is zero.
  const at::Tensor log_prob = r.log_prob.cpu() + model.log_abs_det_jacobian(x.cpu()).to(r.log_prob.dtype());
  r.log_prob = at::where(model.inside(x), log_prob, at::full_like(log_prob, -std::numeric_limits<double>::infinity()));
  r.std_error = r.std_error.cpu();
  return r;
}


LikelihoodResult model_log_likelihood(const Model& model, const at::Tensor& x, const LikelihoodConfig& config,
                                      uint64_t seed, const ProgressFn& progress, const at::Tensor& cond,
                                      const Communicator& comm, int64_t set_orders, int64_t support_draws) {
  check_support_draws(support_draws);
  LikelihoodResult r = model_log_likelihood_unnormalised(model, x, config, seed, progress, cond, comm, set_orders);
  if (model.support.none()) return r;
  // Z(y) per distinct condition, from support_draws draws of the model given it.
  const int64_t n = r.log_prob.numel();
  const at::Tensor y = model.cond_dim > 0 ? model_conditions(model, cond, n) : at::Tensor();
  const ConditionGroups groups = condition_groups(y, n);
  const at::Tensor group_y = y.defined() ? y.index_select(0, groups.first.to(y.device())) : y;
  auto score = model.score_model(likelihood_score(set_orders));
  const at::Tensor hits =
      support_hits(model, *score, config.solver, group_y, groups.count(), support_draws, seed, progress, comm);
  r.shared_error = normalise_by_support(r.log_prob, r.std_error, hits,
                                        at::full({groups.count()}, static_cast<double>(support_draws), at::kDouble),
                                        groups.group);
  r.shared_group = groups.group;
  return r;
}

}  // namespace sbgm
