#pragma once
// Where sample, loglik and info get their model: a run's checkpoint (--checkpoint), or an analytic
// Gaussian mixture (--gmm FILE.npz) diffused by an SDE given with --sde and its parameters.

#include <CLI/CLI.hpp>

#include <c10/core/Device.h>

#include <string>

#include "sbgm/run/model.hpp"
#include "sbgm/sde/sde.hpp"

namespace sbgm::cli {

class ModelSource {
 public:
  // Registers --checkpoint, --gmm, --raw-weights, --t-eps, --dtype and the SDE flags of --gmm.
  void add_to(CLI::App& cmd);
  // Exactly one of --checkpoint and --gmm must have been given; the SDE flags only with --gmm.
  Model load(c10::Device device) const;
  // What the model is, for messages ("run runs/ring8" or "mixture m.npz").
  std::string describe() const;
  bool analytic() const { return !gmm_.empty(); }
  const std::string& checkpoint() const { return checkpoint_; }

 private:
  std::string checkpoint_, gmm_, sde_ = "vp", dtype_;
  bool raw_weights_ = false;
  SDEConfig sde_config_;
  CLI::Option* t_eps_ = nullptr;
  std::vector<CLI::Option*> sde_options_;
};

}  // namespace sbgm::cli
