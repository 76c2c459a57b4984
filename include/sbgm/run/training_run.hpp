#pragma once
// A whole training run in a run directory: the data prepared (run/training_data.hpp), the model
// built, training with periodic checkpoints and a loss log in the directory
// (run/run_directory.hpp), and at the end samples (samples.npy) and pictures (samples.png,
// loss.png). What the CLI's `sbgm train` and the Python package's fit do.

#include <ATen/core/Tensor.h>

#include <atomic>
#include <functional>
#include <string>

#include "sbgm/run/run_config.hpp"
#include "sbgm/run/training_data.hpp"
#include "sbgm/sample/sampler.hpp"
#include "sbgm/train/trainer.hpp"

namespace sbgm {

struct TrainRunCallbacks {
  std::function<void(const TrainProgress&)> on_progress;
  ProgressFn on_sample_progress;                        // drawing the final samples
  std::function<void(const std::string&)> on_message;  // one-line notes (files written, resume)
};

struct TrainRunResult {
  bool interrupted = false;
  int64_t step = 0;
  std::string checkpoint;
};

// The config of the run in run_dir, read from its checkpoint (for --resume), or for a run stopped
// while it trained its candidates (model.candidates) from run_dir/candidates/config.toml.
RunConfig resume_config(const std::string& run_dir);

// Trains into run_dir (created if missing). With resume, continues from run_dir's checkpoint and
// ends with the same weights as an uninterrupted run. When *stop becomes true, saves a
// checkpoint and returns with interrupted set.
//
// With several ranks in comm, every rank calls this with the same arguments and trains its slice
// of each batch (see Trainer); they share the sampling of pictures and final samples. Only rank
// 0 writes into run_dir or calls the callbacks; every rank reads run_dir's checkpoint to resume.
TrainRunResult train_run(const RunConfig& config, const std::string& run_dir, bool resume,
                         const TrainRunCallbacks& callbacks = {}, const std::atomic<bool>* stop = nullptr,
                         const Communicator& comm = Communicator());
// The same on rows given in memory (the Python package's arrays), checked as a file's rows are;
// config.data's file and dataset keys are not read.
TrainRunResult train_run(const RunConfig& config, const TrainingData& rows, const std::string& run_dir, bool resume,
                         const TrainRunCallbacks& callbacks = {}, const std::atomic<bool>* stop = nullptr,
                         const Communicator& comm = Communicator());

}  // namespace sbgm
