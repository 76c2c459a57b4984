#pragma once
// A trained model rebuilt from its checkpoint alone, ready to sample from or evaluate.

#include <c10/core/Device.h>

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
struct Checkpoint;

struct Model {
  RunConfig config;
  std::vector<int64_t> data_shape;
  int64_t cond_dim = 0;
  Scaling scaling;
  int64_t step = 0;
  std::shared_ptr<const SDE> sde;
  std::shared_ptr<ScoreNet> net;

  std::unique_ptr<ScoreModel> score_model() const;
  int64_t parameter_count() const;
};

// Builds the network a config describes (weights seeded from config.train.seed).
std::shared_ptr<ScoreNet> build_net(const RunConfig& config, const std::vector<int64_t>& data_shape, int64_t cond_dim);

// The model of a checkpoint with its EMA weights (or its raw weights when use_ema is false).
Model load_model(const std::string& run_dir_or_file, bool use_ema = true, c10::Device device = c10::kCPU);
Model model_from_checkpoint(const Checkpoint& checkpoint, bool use_ema, c10::Device device);

// n samples in data space drawn with the given sampler.
at::Tensor sample_model(const Model& model, Sampler& sampler, int64_t n, uint64_t seed, const ProgressFn& progress = {});
// The same with Euler-Maruyama in `steps` steps.
at::Tensor sample_model(const Model& model, int64_t n, int64_t steps, uint64_t seed, const ProgressFn& progress = {});

struct LikelihoodConfig;
struct LikelihoodResult;
// log p(x) in nats for rows of x in data space (the scaling's log-Jacobian included).
LikelihoodResult model_log_likelihood(const Model& model, const at::Tensor& x, const LikelihoodConfig& config,
                                      uint64_t seed, const ProgressFn& progress = {});

}  // namespace sbgm
