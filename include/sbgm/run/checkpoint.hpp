#pragma once
// A run's checkpoint: the model (run/trained_model.hpp) and the training state that resuming
// needs (running weights, EMA, the best validated EMA, optimiser moments, step, RNG state, the
// running network's buffers), in one tensor file written atomically.

#include <string>
#include <vector>

#include "sbgm/run/trained_model.hpp"
#include "sbgm/train/trainer.hpp"

namespace sbgm {

struct Checkpoint : ModelSpec {
  TrainState state;
  std::vector<at::Tensor> buffers;      // the running network's buffers
  std::vector<at::Tensor> ema_buffers;  // the same for the EMA network
};

void save_checkpoint(const Checkpoint& checkpoint, const std::string& path);
// Throws IOError naming the file when it is missing, damaged, of an older format, holds only a
// model (no training state) or is not an sbgm checkpoint.
Checkpoint load_checkpoint(const std::string& run_dir_or_file);

// Reads a checkpoint of the format before tensor files (a LibTorch archive). LibTorch's reader
// does not validate what it reads: only for files the user trusts (`sbgm upgrade`).
Checkpoint load_legacy_checkpoint(const std::string& path);

}  // namespace sbgm
