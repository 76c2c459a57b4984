#pragma once
// The settings a run chooses for itself. Keys whose value is "auto" (the default of every key
// listed in auto_keys()) are settled from what the run's data is: how many rows, whether they
// come with conditions. The settled config is what the run directory's config.toml and the
// checkpoint record, so every choice can be read back and overridden.
//
// Conditional data (simulation-based inference: θ in --data, x in --cond) gets the recipe that
// needs no tuning at any simulation budget: a tenth of the pairs held out, one validation per
// epoch, training stopped when the held-out loss has not improved for a number of epochs and the
// best weights kept, at a constant learning rate. Unconditional data gets a fixed length with a
// cosine decay and no held-out rows, as before there were auto keys.

#include <cstdint>
#include <string>
#include <vector>

#include "sbgm/run/run_config.hpp"

namespace sbgm {

// What the choices depend on.
struct DataFacts {
  int64_t rows = 0;      // training rows before any are held out (0: not known yet)
  int64_t cond_dim = 0;  // condition features (0: unconditional)
};

// The keys whose default is "auto".
const std::vector<std::string>& auto_keys();
// How "auto" is held in a numeric field (a value no key accepts otherwise).
constexpr int64_t kAutoCount = -1;
constexpr double kAutoFraction = -1.0;

// config with every "auto" key settled for data described by facts; other keys are kept.
RunConfig settle_auto_keys(RunConfig config, const DataFacts& facts);

}  // namespace sbgm
