#pragma once
// A run directory as one training run holds it: created if missing and locked for the run's life
// (io/run_lock.hpp), with the temporary files a killed run left removed; the run's files are
// written into it atomically — config.toml, the checkpoint, the loss log (loss.csv, loss.png) and
// the samples with their pictures (samples.npy, samples.png, samples_stepN.png).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sbgm/io/run_lock.hpp"

namespace sbgm {

struct Checkpoint;
struct Model;
struct RunConfig;
struct TrainProgress;

class RunDirectory {
 public:
  using MessageFn = std::function<void(const std::string&)>;

  // Takes dir (InvalidArgument naming the holder when another run holds it, IOError when it
  // cannot be created) and says through message what it cleaned up.
  RunDirectory(std::string dir, const MessageFn& message);

  const std::string& path() const { return dir_; }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  std::string checkpoint_file() const;

  void write_config(const RunConfig& config) const;
  void save(const Checkpoint& checkpoint) const;

  // Starts loss.csv (rows "step,loss,lr,val_loss", val_loss empty without held-out rows),
  // keeping a resumed run's rows up to its checkpoint's step.
  void start_loss_log(int64_t keep_until_step);
  void log_loss(const TrainProgress& progress);
  void plot_loss() const;  // loss.png

  // samples (data space) pictured beside the rows raw the model was trained on: an image grid
  // for images, a scatter plot or histogram otherwise.
  void picture_samples(const std::string& name, const Model& model, const at::Tensor& raw,
                       const at::Tensor& samples) const;
  // samples.npy and samples.png.
  void write_samples(const Model& model, const at::Tensor& raw, const at::Tensor& samples) const;

  // Copies the named files that exist in another directory over this one's (a chosen candidate's).
  void adopt(const std::string& from_dir, const std::vector<std::string>& names) const;

 private:
  std::string dir_;
  RunLock lock_;
  std::vector<double> steps_, losses_;  // the loss log so far, for loss.png
};

}  // namespace sbgm
