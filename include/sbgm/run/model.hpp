#pragma once
// A model ready to sample from or evaluate: a trained network rebuilt from its checkpoint alone,
// or an analytic Gaussian mixture diffused exactly by an SDE (the reference every result can be
// checked against).

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <memory>
#include <string>
#include <vector>

#include "sbgm/data/scaling.hpp"
#include "sbgm/run/run_config.hpp"
#include "sbgm/sample/sampler.hpp"

namespace sbgm {

class SDE;
class ScoreNet;
class ScoreModel;
class GaussianMixture;
struct Checkpoint;
struct SDEConfig;

struct Model {
  RunConfig config;  // for a mixture only config.sde is meaningful
  std::vector<int64_t> data_shape;
  int64_t cond_dim = 0;
  Scaling scaling;
  int64_t step = 0;
  c10::Device device = c10::kCPU;
  at::ScalarType dtype = at::kFloat;  // what samples and likelihoods are computed in
  std::shared_ptr<const SDE> sde;
  std::shared_ptr<ScoreNet> net;                   // a trained model's network, or null
  std::shared_ptr<const GaussianMixture> mixture;  // an analytic model's mixture, or null

  std::unique_ptr<ScoreModel> score_model() const;
  int64_t parameter_count() const;
  bool analytic() const { return mixture != nullptr; }
  // Computes in float32 or float64 from now on (a network's weights are converted).
  void set_dtype(at::ScalarType dtype);
};

// Builds the network a config describes (weights seeded from config.train.seed).
std::shared_ptr<ScoreNet> build_net(const RunConfig& config, const std::vector<int64_t>& data_shape, int64_t cond_dim);

// The model of a checkpoint with its EMA weights (or its raw weights when use_ema is false).
Model load_model(const std::string& run_dir_or_file, bool use_ema = true, c10::Device device = c10::kCPU);
Model model_from_checkpoint(const Checkpoint& checkpoint, bool use_ema, c10::Device device);

// A mixture read from an .npz with arrays weights [K], means [K, D] and covs [K, D, D]. IOError
// for a malformed file, InvalidArgument (naming the file) for parameters that make no mixture.
GaussianMixture read_gaussian_mixture(const std::string& npz_path);
// The exact model of that mixture diffused by the SDE, in float64 (CPU only: the mixture is tiny).
Model mixture_model(const GaussianMixture& mixture, const SDEConfig& sde, c10::Device device = c10::kCPU);

// n samples in data space drawn with the given sampler.
at::Tensor sample_model(const Model& model, Sampler& sampler, int64_t n, uint64_t seed, const ProgressFn& progress = {});
// The same with Euler-Maruyama in `steps` steps.
at::Tensor sample_model(const Model& model, int64_t n, int64_t steps, uint64_t seed, const ProgressFn& progress = {});
// k sample paths through the sampler's reverse process, in data space (the scaling undone).
Trajectories model_trajectories(const Model& model, Sampler& sampler, int64_t k, uint64_t seed);

struct LikelihoodConfig;
struct LikelihoodResult;
// log p(x) in nats for rows of x in data space (the scaling's log-Jacobian included).
LikelihoodResult model_log_likelihood(const Model& model, const at::Tensor& x, const LikelihoodConfig& config,
                                      uint64_t seed, const ProgressFn& progress = {});

}  // namespace sbgm
