#pragma once
// The whole description of a run: data, SDE, network, training and sampling settings. It is
// read from TOML, overridden key by key from the command line ("train.steps" = "5000"), written
// into the run directory and into every checkpoint, so a checkpoint rebuilds its model alone.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sbgm/data/bounds.hpp"
#include "sbgm/data/feature_transform.hpp"
#include "sbgm/nets/net_config.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/train_config.hpp"

namespace sbgm {

struct DataConfig {
  std::string dataset;     // a built-in dataset name (see toy.hpp), or empty
  std::string file;        // a .npy / .csv file, or empty
  std::string cond;        // conditions for the rows of the data (.npy / .csv), or empty
  int64_t size = 20000;    // rows drawn from a built-in dataset
  bool standardize = true;  // train on per-feature standardised data and conditions (undone when sampling)
  // Pixel data (integer levels 0 .. levels - 1) is mapped linearly onto image_range "LO,HI"
  // instead of being standardised. "auto": -1,1 for IDX and CIFAR-10 files, off otherwise.
  std::string image_range = "auto";
  int64_t levels = 256;
  // Box bounds on the data's features (a prior's support): one value for every feature or one per
  // feature, inf / -inf for an open side, empty for none. No sample falls outside them.
  std::vector<double> lower, upper;
  // Whether the run also looks for bounds in its training rows (data/bounds.hpp); what it finds
  // is written to lower / upper. "auto": the run chooses (run_defaults.hpp).
  BoundsRule bounds = BoundsRule::Auto;
  // How samples are kept within the bounds: through the bijection of data/bounds.hpp, or by
  // drawing again those that fall outside (run/model.hpp). "auto": the run chooses.
  KeepWithin keep_within = KeepWithin::Auto;
  // Conditions given to the network as they are or as their logarithm (data/feature_transform.hpp);
  // "auto": the run chooses from its conditions (run_defaults.hpp).
  FeatureTransform cond_transform = FeatureTransform::Auto;
  // The data modelled as they are or as their logarithm, through the map of a lower bound 0 on
  // every feature (data/feature_transform.hpp); "auto": the run chooses from its rows.
  FeatureTransform transform = FeatureTransform::Auto;
  // > 0: each condition is a set, elements of this many features one after another whose order
  // carries nothing (iid draws of one simulation). The run then standardises the elements alike,
  // fits the Gaussian baseline on their mean and draws each training row's elements in a random
  // order (or model.summary = set reads them with a permutation-invariant network). "auto"
  // (kAutoCount): a posterior's run tests its pairs for such elements (data/exchangeable_elements.hpp).
  int64_t cond_set = -1;

  // The pixel range, or nothing when the data is not scaled as pixels; image_file: the data file
  // is an IDX or CIFAR-10 file (what "auto" looks at).
  std::optional<std::array<double, 2>> pixel_range(bool image_file) const;
};

// How the run's model is sampled when no sampler is asked for (sbgm sample, the pictures at the
// end of training, inpainting); both keys default to "auto" (run_defaults.hpp).
struct SampleConfig {
  std::string sampler = "auto";  // em, pc, ancestral, ode, edm, ddim, dpmpp2m, dpmpp3m or unipc
  int64_t steps = -1;            // that sampler's steps (edm: noise levels); -1: "auto"
  double lambda = -1;            // em, ddim, dpmpp2m: the plug-in reverse SDE's lambda; -1: "auto"
  int64_t n = 2000;              // samples drawn (and pictured) at the end of training
};

// TrainConfig's defaults with the keys a run settles for itself (run_defaults.hpp) left "auto".
TrainConfig train_config_with_auto_keys();

// Seconds a process of a multi-process job waits for the others by default (run.timeout).
constexpr double kDefaultJobTimeout = 300;

struct RunConfig {
  DataConfig data;
  SDEConfig sde;
  // sde.type = "auto" (the default): the run chooses the SDE from its data (run_defaults.hpp);
  // until then sde.kind holds VP.
  bool sde_auto = true;
  NetConfig model;
  // model.candidates: the networks a posterior run with model.baseline = auto trains and keeps the
  // best of by held-out loss (run/training_run.cpp), comma-separated (run_defaults.hpp,
  // network_candidates()); "auto": the run chooses.
  std::string candidates = "auto";
  TrainConfig train = train_config_with_auto_keys();
  SampleConfig sample;
  std::string device = "cpu";
  int64_t threads = 0;  // 0: one per core (shared by the processes of a job on one machine)
  double timeout = kDefaultJobTimeout;  // seconds a process of a job waits for the others before giving up

  // Sets one key ("section.name") from its text form; throws InvalidArgument for an unknown key
  // or a value that does not parse.
  void set(const std::string& key, const std::string& value);
  std::string get(const std::string& key) const;
  // Every key with its help text, in file order.
  struct Key {
    std::string name, help;
  };
  static const std::vector<Key>& keys();

  // Applies the keys of a TOML document ([section] tables of key = value); unknown keys are errors.
  void merge_toml(const std::string& text, const std::string& origin);
  void merge_toml_file(const std::string& path);
  std::string to_toml() const;

  // Checks every value; "auto" keys are checked as an unconditional run would settle them.
  void validate() const;
};

// The config a file written by an earlier version is merged into: the keys added since the first
// checkpoints hold the meaning they had before they existed (model.input_scaling none,
// data.cond_set 0, data.transform none), so a checkpoint or a run's saved config that does not
// name them reads, samples and resumes as it did, and is not settled anew by today's defaults.
RunConfig config_for_earlier_files();

}  // namespace sbgm
