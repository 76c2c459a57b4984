#pragma once
// A model ready to sample from or evaluate: a trained network rebuilt from its checkpoint alone,
// or an analytic Gaussian mixture diffused exactly by an SDE (the reference every result can be
// checked against).

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sbgm/data/bounds.hpp"
#include "sbgm/data/scaling.hpp"
#include "sbgm/dist/communicator.hpp"
#include "sbgm/nets/condition.hpp"
#include "sbgm/run/run_config.hpp"
#include "sbgm/run/score_options.hpp"
#include "sbgm/sample/sampler.hpp"

namespace sbgm {

class SDE;
class ScoreNet;
class ScoreModel;
class GaussianMixture;
struct ModelSpec;
struct TrainedModel;
struct SDEConfig;

struct Model {
  RunConfig config;  // for a mixture only config.sde is meaningful
  std::vector<int64_t> data_shape;
  int64_t cond_dim = 0;  // features of a condition y (0: unconditional model)
  // The data's box bounds (data.lower, data.upper), in one of two ways (data.keep_within): mapped
  // onto unbounded space first (bounds), or kept by drawing again every sample outside them
  // (support; log-densities are then normalised by the share of draws inside). The other is none.
  Bounds bounds, support;
  Scaling scaling;  // then this affine map onto the space the network models
  Scaling cond_scaling;  // data-space conditions -> the conditions the model was trained on
  at::Tensor data_mean, data_cov;  // the training rows' moments in the model's space (checkpoint.hpp), or undefined
  int64_t step = 0;
  c10::Device device = c10::kCPU;
  at::ScalarType dtype = at::kFloat;  // what samples and likelihoods are computed in
  std::shared_ptr<const SDE> sde;
  std::shared_ptr<ScoreNet> net;                   // a trained model's network, or null
  std::shared_ptr<const GaussianMixture> mixture;  // an analytic model's mixture, or null

  // The model's score as one call evaluates it. InvalidArgument for guidance or bfloat16 asked of
  // an analytic mixture.
  std::unique_ptr<ScoreModel> score_model(const ScoreOptions& options = {}) const;
  // Rows x [N, ...] in data space -> the space the network models (the bounds' bijection, then
  // the scaling), and back; to_data_space always lands within the bounds.
  at::Tensor to_model_space(const at::Tensor& x) const;
  at::Tensor to_data_space(const at::Tensor& z) const;
  // [N] float64: log |det dz/dx| of each row x in data space, which turns the model's log-density
  // into the data's.
  at::Tensor log_abs_det_jacobian(const at::Tensor& x) const;
  // [N]: true for the rows x in data space that lie within the model's bounds (all, for none).
  at::Tensor inside(const at::Tensor& x) const;
  // Takes the bounds a config gives (model_box).
  void set_box(const BoxUse& box);
  // Whether the score the network gives is its path's: not for a flow model trained with
  // minibatch optimal transport (train.ot_coupling), whose coupled pairs carry the data along
  // other marginals than the Gaussian path's. Its velocity's ODE is then the model: the samplers
  // that follow it and the ODE's log-likelihood, not a reverse SDE or the variational bound.
  bool has_path_score() const;
  // How the network takes its condition (trained with condition dropout or not).
  ConditionInput condition_input() const;
  int64_t parameter_count() const;
  bool analytic() const { return mixture != nullptr; }
  // Computes in float32 or float64 from now on (a network's weights are converted).
  void set_dtype(at::ScalarType dtype);
};

// The bounds a config gives samples of this shape as a model uses them (both none for most runs):
// the box of data.lower / data.upper mapped or kept by rejection (data.keep_within), and the
// data's log (data.transform = log) as the map of a lower bound 0 on every feature. InvalidArgument
// naming the keys when the bounds do not fit the shape, or when the log and a mapped box meet.
BoxUse model_box(const RunConfig& config, const std::vector<int64_t>& data_shape);

// The elements a condition of cond_dim features holds when the config declares it a set
// (data.cond_set), 1 otherwise; InvalidArgument naming data.cond_set when the features are not
// whole elements. What sees the condition's features one by one (its standardisation, the
// Gaussian baseline's fit) treats a set's elements alike, so no order of them changes the model
// beyond what its network learnt.
int64_t condition_elements(const RunConfig& config, int64_t cond_dim);

// Builds the network a config describes for conditions of cond_dim features (weights seeded from
// config.train.seed).
std::shared_ptr<ScoreNet> build_net(const RunConfig& config, const std::vector<int64_t>& data_shape, int64_t cond_dim);

// The model of a checkpoint with its EMA weights (the best validated ones for a run with held-out
// rows), or its raw weights when use_ema is false.
Model load_model(const std::string& run_dir_or_file, bool use_ema = true, c10::Device device = c10::kCPU);
// The model a checkpoint's model part defines (run/trained_model.hpp).
Model model_from(const TrainedModel& trained, c10::Device device);
// The model a spec defines with a network whose weights are in place (a training run's EMA
// network), at the given step.
Model model_with(const ModelSpec& spec, std::shared_ptr<ScoreNet> net, int64_t step, c10::Device device);

// A mixture read from an .npz with arrays weights [K], means [K, D] and covs [K, D, D]. IOError
// for a malformed file, InvalidArgument (naming the file) for parameters that make no mixture.
GaussianMixture read_gaussian_mixture(const std::string& npz_path);
// The exact model of that mixture diffused by the SDE, in float64. On a GPU the solvers run there
// and the mixture's own arithmetic stays on the CPU (it is tiny; data/gaussian_mixture.hpp).
Model mixture_model(const GaussianMixture& mixture, const SDEConfig& sde, c10::Device device = c10::kCPU);

// Conditions in data space ([M, ...] or [...] for one) checked against the model and mapped
// into the model's space as [rows, cond_dim]: M = rows, or one row repeated. InvalidArgument
// naming the problem for a width the model does not take, another row count, NaN or Inf, or
// conditions given to an unconditional model.
at::Tensor model_conditions(const Model& model, const at::Tensor& cond, int64_t rows);

// How a model's draws met its support (data.keep_within = reject), summed over the draws of one
// request: what `sbgm sample` prints and the Python package warns of. A share of draws outside is
// the network's mass beyond the prior's box; rows moved onto the box mean that, for their
// condition, the model all but misses the prior — a posterior not to trust there.
struct SupportStats {
  int64_t rows = 0;         // samples asked of a model with a support
  int64_t outside = 0;      // of them, those whose first draw fell outside it
  int64_t redraws = 0;      // the further draws made for those
  int64_t clamped = 0;      // rows moved onto the box's nearest point
  int64_t conditions = 0;   // distinct conditions (1 for an unconditional model)
  double lowest_share = 1;  // the smallest share of first draws inside, over the conditions
  // One line, or empty when every first draw was inside (or the model keeps no support).
  std::string summary() const;
};

// InvalidArgument naming `what` (a sampler, inpainting, the variational bound) for a model whose
// score is not its path's (Model::has_path_score).
void require_path_score(const Model& model, const std::string& what);

// The functions below that draw or integrate rows take comm, the processes that share the work:
// each takes a run of whole chunks of the rows (each chunk with its own seed) and every rank gets
// all rows back, in order and equal to a one-process run's. The default is this process alone.

// A model with a support (kept within a box by rejection) normalises its densities by Z(y), the
// share of its draws given y that fall inside, estimated from this many draws per condition by
// default (support_draws below), and at most kMostSupportDraws.
constexpr int64_t kSupportDraws = 1000;
constexpr int64_t kMostSupportDraws = 10000000;
// InvalidArgument unless 1 <= draws <= kMostSupportDraws ({support_draws}).
void check_support_draws(int64_t draws);
// The draws a request asks for (kSupportDraws when it names none), checked; InvalidArgument for a
// number asked of a model without a support.
int64_t support_draws_of(const Model& model, const std::optional<int64_t>& asked);

// n samples in data space drawn with the given score (a composition built on the model's own,
// such as an iid posterior's) through the model's SDE, shape and maps; y: one model-space
// condition per row, or undefined. A model with a support draws every sample outside it again,
// with that row's condition, until all are inside. A row still outside after kMostDrawsPerSample
// draws (under 1% of the model's mass inside given its condition; at once for a condition under
// 1% of whose first draws fell inside) is moved onto the box's nearest point. report (optional)
// gains how the draws met the support.
at::Tensor sample_model_with(const Model& model, ScoreModel& score, Sampler& sampler, int64_t n, const at::Tensor& y,
                             uint64_t seed, const ProgressFn& progress = {}, SupportStats* report = nullptr,
                             const Communicator& comm = Communicator());
constexpr int64_t kMostDrawsPerSample = 100;
struct LikelihoodConfig;
// Draws of a model with the log-density of each in data space.
struct ModelDraws {
  at::Tensor x;          // [n, ...] in data space
  at::Tensor log_prob;   // [n] float64: log p(x | y) in nats, the density the draws have
  at::Tensor std_error;  // [n] its standard error (Hutchinson's, and the support's share; zeros where exact)
  // With a support: the support's share's part of std_error [n], which the draws of one condition
  // share, and each draw's condition group [n] (int64); undefined otherwise.
  at::Tensor shared_error, shared_group;
};
// n draws of the probability-flow ODE (config.solver, divergence and chunks as for a likelihood)
// with their log-density in one solve (likelihood/log_likelihood.hpp, draw_with_log_likelihood):
// the density of the flow that made them, with the given score (guided or not), the maps'
// log-Jacobian included — so that a draw can be weighted by p / q in importance sampling. A model
// with a support draws again as sample_model_with does; the draws kept have density q / Z(y), Z
// the share of the first draws inside for each distinct condition (from support_draws draws of
// its own where a condition has fewer first draws), its error joined to the standard error.
// Rows moved onto the box are no draws of the model: NaN.
ModelDraws sample_model_with_density(const Model& model, ScoreModel& score, const LikelihoodConfig& config, int64_t n,
                                     const at::Tensor& y, uint64_t seed, const ProgressFn& progress = {},
                                     SupportStats* report = nullptr, const Communicator& comm = Communicator(),
                                     int64_t support_draws = kSupportDraws);
// n samples in data space drawn with the given sampler (an unconditional model).
at::Tensor sample_model(const Model& model, Sampler& sampler, int64_t n, uint64_t seed, const ProgressFn& progress = {},
                        const ScoreOptions& score = {}, SupportStats* report = nullptr, const Communicator& comm = Communicator());
// The same with Euler-Maruyama in `steps` steps.
at::Tensor sample_model(const Model& model, int64_t n, int64_t steps, uint64_t seed, const ProgressFn& progress = {});
// The model-space conditions of n samples for each of the M conditions cond [M, ...] (or one,
// [...]; data space): [M n, cond_dim], each row repeated n times (model_conditions' errors).
at::Tensor conditions_of_samples(const Model& model, const at::Tensor& cond, int64_t n);
// n samples for each of the M conditions cond [M, ...] (data space): [M, n, ...sample_shape].
at::Tensor sample_model_given(const Model& model, Sampler& sampler, const at::Tensor& cond, int64_t n, uint64_t seed,
                              const ProgressFn& progress = {}, const ScoreOptions& score = {},
                              SupportStats* report = nullptr, const Communicator& comm = Communicator());
// k sample paths through the sampler's reverse process, in data space (the scaling undone); a
// conditional model takes one condition (cond [1, ...]) for all of them.
Trajectories model_trajectories(const Model& model, Sampler& sampler, int64_t k, uint64_t seed,
                                const at::Tensor& cond = {}, const ScoreOptions& score = {});

// Rows of data as the model takes them: grey images [N, H, W] gain their channel axis for a
// model of [1, H, W] images; anything else is returned as is.
at::Tensor model_rows(const Model& model, const at::Tensor& x);

// Rows an image network samples at once (its activations, not the state, bound the memory).
constexpr int64_t kImageChunkRows = 256;
// Rows an image network's likelihood integrates at once (autograd keeps its activations).
constexpr int64_t kImageLikelihoodChunkRows = 16;
// Rows a model's likelihood integrates at once by default: 16 for an image network, else 1,000.
int64_t likelihood_chunk_rows(const Model& model);

struct LikelihoodResult;
// log p(x) (log p(x | y) for conditions cond, one row per row of x or a single row for all) in
// nats for rows of x in data space (the scaling's log-Jacobian included); -inf outside the bounds.
// A model with a support is normalised by the share Z(y) of its draws that fall inside it,
// estimated from m = support_draws draws for each distinct condition: log p = log q - log Z, its
// Monte-Carlo error sqrt((1 - Z) / (Z m)) joined to the standard error (no draw inside counts
// as half a draw: Z = 1 / (2m), its error 1.4 nats for m = 1000). That error is shared by every
// row of one condition: more draws shrink it as 1 / sqrt(m). set_orders > 1: the density of the
// model whose score is averaged over that many orders of a set condition's elements (ScoreOptions).
LikelihoodResult model_log_likelihood(const Model& model, const at::Tensor& x, const LikelihoodConfig& config,
                                      uint64_t seed, const ProgressFn& progress = {}, const at::Tensor& cond = {},
                                      const Communicator& comm = Communicator(), int64_t set_orders = 1,
                                      int64_t support_draws = kSupportDraws);
// The same without that normalisation: log q(x | y) within the support. Enough to compare rows of
// one condition (Z is the same for them), at no extra cost.
LikelihoodResult model_log_likelihood_unnormalised(const Model& model, const at::Tensor& x, const LikelihoodConfig& config,
                                                   uint64_t seed, const ProgressFn& progress = {},
                                                   const at::Tensor& cond = {}, const Communicator& comm = Communicator(),
                                                   int64_t set_orders = 1);

}  // namespace sbgm
