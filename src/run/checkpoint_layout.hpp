#pragma once
// How a checkpoint lies in its tensor file (format 2), shared by the model's reader
// (trained_model.cpp) and the whole checkpoint's (checkpoint.cpp).
//
// Metadata: "format" = "sbgm checkpoint 2", "config" = the run's config.toml.
// Tensors of the model: data_shape (int64 [rank]), cond_dim, step (int64 scalars), weights (the
// EMA weights, or the best validated ones; flat), buffers.I, and where present scaling.shift,
// scaling.scale, cond_scaling.shift, cond_scaling.scale, data_mean, data_cov; for model.type =
// torchscript, model.script (uint8: the module's file).
// Tensors of the training state (absent in a file that holds only a model): train.params,
// train.exp_avg, train.exp_avg_sq, train.rng_state, train.buffers.I; with held-out rows
// train.ema (the running EMA; otherwise it is `weights`), train.best_loss, train.best_step and
// train.since_best.

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "sbgm/io/tensor_file.hpp"
#include "sbgm/run/trained_model.hpp"

namespace sbgm::checkpoint_layout {

// The checkpoint file's path and its checked contents; IOError for a missing, damaged or
// older-format file.
struct File {
  std::string path;
  TensorFile contents;
};
File read(const std::string& run_dir_or_file);

// What a tensor must be: floating (float32 or float64) or int64 (for counts), of this rank.
enum class Kind { Floating, Integer, Byte };
// The tensor, checked; IOError naming the file and the tensor otherwise.
at::Tensor take(const File& file, const std::string& name, Kind kind, int64_t rank);
bool has(const File& file, const std::string& name);
int64_t take_count(const File& file, const std::string& name);
std::vector<at::Tensor> take_buffers(const File& file, const std::string& prefix);

ModelSpec read_spec(const File& file);
void write_spec(TensorFile& out, const ModelSpec& spec);
void write_buffers(TensorFile& out, const std::string& prefix, const std::vector<at::Tensor>& buffers);

}  // namespace sbgm::checkpoint_layout
