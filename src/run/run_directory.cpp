#include "sbgm/run/run_directory.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sbgm/io/atomic_file.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/plot/plots.hpp"
#include "sbgm/run/checkpoint.hpp"
#include "sbgm/run/image_pictures.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

const std::string& made(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) throw IOError(dir + ": cannot create directory (" + ec.message() + ")");
  return dir;
}

}  // namespace

RunDirectory::RunDirectory(std::string dir, const MessageFn& message) : dir_(std::move(dir)), lock_(made(dir_)) {
  // Holding the lock, no other writer is in the directory: temporary files left by a killed run
  // (a checkpoint's can be large enough to keep a disk full) go.
  if (const int stale = remove_stale_temporary_files(dir_); stale > 0 && message)
    message("removed " + std::to_string(stale) + " temporary file(s) a killed run left in " + dir_);
}

std::string RunDirectory::checkpoint_file() const { return file(kCheckpointFile); }

void RunDirectory::write_config(const RunConfig& config) const {
  write_file_atomically(file("config.toml"), [&](std::ostream& out) { out << config.to_toml(); });
}

void RunDirectory::save(const Checkpoint& checkpoint) const { save_checkpoint(checkpoint, checkpoint_file()); }

void RunDirectory::start_loss_log(int64_t keep_until_step) {
  steps_.clear();
  losses_.clear();
  std::vector<std::string> kept;
  std::ifstream in(file("loss.csv"));
  std::string line;
  std::getline(in, line);  // header
  while (keep_until_step > 0 && std::getline(in, line)) {
    std::stringstream row(line);
    double step = 0, loss = 0;
    char comma = 0;
    if (!(row >> step >> comma >> loss) || step > keep_until_step) break;
    steps_.push_back(step);
    losses_.push_back(loss);
    kept.push_back(line);
  }
  write_file_atomically(file("loss.csv"), [&](std::ostream& out) {
    out << "step,loss,lr,val_loss\n";
    for (const auto& l : kept) out << l << "\n";
  });
}

void RunDirectory::log_loss(const TrainProgress& p) {
  std::ofstream out(file("loss.csv"), std::ios::app);
  out << p.step << "," << p.loss << "," << p.lr << ",";
  if (std::isfinite(p.validation_loss)) out << p.validation_loss;
  out << "\n";
  steps_.push_back(static_cast<double>(p.step));
  losses_.push_back(p.loss);
}

void RunDirectory::plot_loss() const { plot_loss_curve(file("loss.png"), steps_, losses_); }

void RunDirectory::picture_samples(const std::string& name, const Model& model, const at::Tensor& raw,
                                   const at::Tensor& samples) const {
  if (is_image_shape(model.data_shape)) write_model_sample_grid(file(name), model, samples);
  else plot_samples(file(name), raw, samples);
}

void RunDirectory::write_samples(const Model& model, const at::Tensor& raw, const at::Tensor& samples) const {
  write_npy(file("samples.npy"), samples);
  picture_samples("samples.png", model, raw, samples);
}

void RunDirectory::adopt(const std::string& from_dir, const std::vector<std::string>& names) const {
  for (const std::string& name : names) {
    const std::string from = from_dir + "/" + name;
    if (!std::filesystem::exists(from)) continue;
    std::ifstream in(from, std::ios::binary);
    if (!in) throw IOError(from + ": cannot open file");
    write_file_atomically(file(name), [&](std::ostream& out) { out << in.rdbuf(); });
  }
}

}  // namespace sbgm
