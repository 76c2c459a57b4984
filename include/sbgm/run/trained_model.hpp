#pragma once
// What defines a trained model, as its checkpoint stores it: the run config, the data's shape and
// scaling, the conditions' width and scaling, the training rows' moments, the step reached, and
// the weights and buffers to evaluate with. Sampling and likelihoods read only this part of a
// checkpoint; run/checkpoint.hpp adds the training state that resuming needs.
//
// A checkpoint is a tensor file (io/tensor_file.hpp) checked whole before it is interpreted:
// checksum, then every tensor's dtype and shape against the config. Checkpoints written before
// this format (LibTorch archives, checkpoint.pt) are refused with a message; `sbgm upgrade`
// converts them.

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "sbgm/data/scaling.hpp"
#include "sbgm/run/run_config.hpp"

namespace sbgm {

constexpr const char* kCheckpointFile = "checkpoint.safetensors";
// Data of at most this many features keep their moments in the checkpoint.
constexpr int64_t kMomentFeatures = 256;

struct ModelSpec {
  RunConfig config;
  std::vector<int64_t> data_shape;  // one sample, without the batch dimension
  int64_t cond_dim = 0;             // features of a condition (0: unconditional)
  Scaling scaling;
  Scaling cond_scaling;
  // The training rows' mean [D] and covariance [D, D] in the model's space, kept for data of at
  // most kMomentFeatures features (a Gaussian fit of the prior for iid posteriors); undefined
  // otherwise.
  at::Tensor data_mean, data_cov;
};

struct TrainedModel : ModelSpec {
  int64_t step = 0;
  at::Tensor weights;               // flat, in the order of the network's parameters
  std::vector<at::Tensor> buffers;  // the network's non-trained state (e.g. Fourier frequencies)
};

// Averaged: the EMA weights (for a run with held-out rows, those of its best validation), what
// sampling uses. Raw: the optimiser's own weights.
enum class Weights { Averaged, Raw };

// RUN_DIR/checkpoint.safetensors for a directory, the path itself otherwise.
std::string checkpoint_path(const std::string& run_dir_or_file);

// Throws IOError naming the file when it is missing, damaged, of an older format or not an sbgm
// checkpoint.
TrainedModel load_trained_model(const std::string& run_dir_or_file, Weights weights = Weights::Averaged);

}  // namespace sbgm
