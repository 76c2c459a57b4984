#pragma once
// The rows a training run trains on, from what a user gave to what the trainer takes: read (a
// file or a built-in dataset, or arrays in memory), checked, and put in the model's space with
// every choice the data settle — the config's "auto" keys, the box, the scalings, the condition
// transform, the moments and the held-out split. No file is written here: a run checks all of
// this before its directory is taken (run/run_directory.hpp).

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "sbgm/data/bounds.hpp"
#include "sbgm/run/run_config.hpp"
#include "sbgm/run/trained_model.hpp"
#include "sbgm/train/train_config.hpp"

namespace sbgm {

struct Checkpoint;

// The rows a run trains on, in data space: data [N, ...] and the conditions of its rows [N, ...]
// (undefined for an unconditional run), and the names messages call them by.
struct TrainingData {
  at::Tensor data, cond;
  std::string data_name = "the data", cond_name = "the conditions";
};

// The rows config.data names: its file (data.file, with data.cond) or its built-in dataset.
TrainingData load_training_data(const RunConfig& config);

// The config checked against rows given in memory (its data.file and data.cond taken to name
// them, data.dataset not read), with data.image_range "auto" settled by the data file's format
// and a TorchScript network's file read. InvalidArgument naming the key otherwise.
RunConfig config_for_rows(const RunConfig& config, const TrainingData& rows);

// The rows ready to train on. As a checkpoint stores it (ModelSpec): the config with its "auto"
// keys settled, the shapes, the scalings and the moments; beside it what training needs.
struct PreparedData : ModelSpec {
  TrainConfig train;             // config.train with the dequantisation width of pixel data
  BoxUse box;                    // the bounds of data.lower / data.upper and data.transform (none for most runs)
  at::Tensor raw, raw_cond;      // data space as given: images [N, C, H, W], conditions flat [N, C]
  at::Tensor data, cond;         // the training rows in the model's space, on config.device
  at::Tensor held_out, held_out_cond;  // the rows train.validation_fraction keeps back (or undefined)
  std::vector<std::string> found;  // what the run found in its rows (data.bounds, data.cond_set), to say
};

// Prepares the rows for the config (from config_for_rows). For a resumed run, resumed is its
// checkpoint: the scalings and moments are its own, and the data, shapes and the keys that define
// the model are checked against it. InvalidArgument naming the rows or the key for anything that
// does not fit.
PreparedData prepare_training_data(const RunConfig& config, const TrainingData& rows,
                                   const Checkpoint* resumed = nullptr);

}  // namespace sbgm
