#pragma once
// A self-describing checkpoint: the run config, data shape and scaling, the conditions' width and
// scaling, weights, EMA weights (and the best validated ones, with validation), optimiser state,
// step and RNG state. Written to a temporary file
// and renamed into place.

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "sbgm/data/scaling.hpp"
#include "sbgm/run/run_config.hpp"
#include "sbgm/train/trainer.hpp"

namespace sbgm {

struct Checkpoint {
  RunConfig config;
  std::vector<int64_t> data_shape;  // one sample, without the batch dimension
  int64_t cond_dim = 0;  // features of a condition (0: unconditional)
  Scaling scaling;
  Scaling cond_scaling;
  // The training rows' mean [D] and covariance [D, D] in the model's space, kept for data of at
  // most kMomentFeatures features (a Gaussian fit of the prior for iid posteriors); undefined
  // otherwise and in checkpoints written before they were kept.
  at::Tensor data_mean, data_cov;
  TrainState state;
  std::vector<at::Tensor> buffers;      // the network's non-trained state (e.g. Fourier frequencies)
  std::vector<at::Tensor> ema_buffers;  // the same for the EMA network
};

constexpr int64_t kMomentFeatures = 256;

// RUN_DIR/checkpoint.pt for a directory, the path itself otherwise.
std::string checkpoint_path(const std::string& run_dir_or_file);

void save_checkpoint(const Checkpoint& checkpoint, const std::string& path);
// Throws IOError naming the file when it is missing, unreadable or not an sbgm checkpoint.
Checkpoint load_checkpoint(const std::string& run_dir_or_file);

}  // namespace sbgm
