#include "sbgm/run/checkpoint.hpp"

#include <ATen/ATen.h>
#include <sys/stat.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "sbgm/io/atomic_file.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

constexpr int64_t kFormatVersion = 1;

at::Tensor text_tensor(const std::string& s) {
  at::Tensor t = at::empty({static_cast<int64_t>(s.size())}, at::kByte);
  std::memcpy(t.data_ptr(), s.data(), s.size());
  return t;
}

std::string tensor_text(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel());
}

at::Tensor read(torch::serialize::InputArchive& in, const std::string& key) {
  at::Tensor t;
  in.read(key, t);
  return t;
}

}  // namespace

std::string checkpoint_path(const std::string& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return p + "/checkpoint.pt";
  return p;
}

void save_checkpoint(const Checkpoint& c, const std::string& path) {
  torch::serialize::OutputArchive out;
  out.write("format_version", at::tensor(kFormatVersion));
  out.write("config", text_tensor(c.config.to_toml()));
  out.write("data_shape", at::tensor(c.data_shape, at::kLong));
  out.write("cond_dim", at::tensor(c.cond_dim));
  if (!c.scaling.is_identity()) {
    out.write("scaling_shift", c.scaling.shift.cpu());
    out.write("scaling_scale", c.scaling.scale.cpu());
  }
  if (!c.cond_scaling.is_identity()) {
    out.write("cond_scaling_shift", c.cond_scaling.shift.cpu());
    out.write("cond_scaling_scale", c.cond_scaling.scale.cpu());
  }
  if (c.data_mean.defined()) {
    out.write("data_mean", c.data_mean.cpu());
    out.write("data_cov", c.data_cov.cpu());
  }
  out.write("params", c.state.params.cpu());
  out.write("ema", c.state.ema.cpu());
  out.write("exp_avg", c.state.exp_avg.cpu());
  out.write("exp_avg_sq", c.state.exp_avg_sq.cpu());
  out.write("step", at::tensor(c.state.step));
  out.write("rng_state", c.state.rng_state.cpu());
  if (c.state.best_ema.defined()) {
    out.write("best_ema", c.state.best_ema.cpu());
    out.write("best_loss", at::tensor(c.state.best_loss, at::kDouble));
    out.write("best_step", at::tensor(c.state.best_step));
    out.write("since_best", at::tensor(c.state.since_best));
  }
  out.write("buffer_count", at::tensor(static_cast<int64_t>(c.buffers.size())));
  if (c.ema_buffers.size() != c.buffers.size()) throw InvalidArgument("checkpoint: EMA buffers do not match buffers");
  for (size_t i = 0; i < c.buffers.size(); ++i) {
    out.write("buffer_" + std::to_string(i), c.buffers[i].cpu());
    out.write("ema_buffer_" + std::to_string(i), c.ema_buffers[i].cpu());
  }
  // Serialised in memory first: LibTorch's file writer, on a full disk, throws again from its
  // destructor (std::terminate); the bytes are then written, checked and renamed by our writer.
  write_file_atomically(path, [&](std::ostream& stream) { out.save_to(stream); });
}

Checkpoint load_checkpoint(const std::string& run_dir_or_file) {
  const std::string path = checkpoint_path(run_dir_or_file);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw IOError(path + ": no checkpoint there");
  torch::serialize::InputArchive in;
  Checkpoint c;
  try {
    in.load_from(path);
    if (read(in, "format_version").item<int64_t>() != kFormatVersion)
      throw IOError(path + ": checkpoint format version is not supported by this build");
    // A checkpoint written before train.validate_every existed validated at every log step, one
    // written before sample.sampler existed sampled with Euler-Maruyama (its steps are kept in
    // the file), and one written before model.baseline existed had none.
    c.config.train.validate_every = 0;
    c.config.sample.sampler = "em";
    c.config.model.baseline = Baseline::None;
    c.config.merge_toml(tensor_text(read(in, "config")), path + " (config)");
    const at::Tensor shape = read(in, "data_shape");
    c.data_shape.assign(shape.data_ptr<int64_t>(), shape.data_ptr<int64_t>() + shape.numel());
    c.cond_dim = read(in, "cond_dim").item<int64_t>();
    at::Tensor shift;
    if (in.try_read("scaling_shift", shift)) c.scaling = {shift, read(in, "scaling_scale")};
    at::Tensor cond_shift;
    if (in.try_read("cond_scaling_shift", cond_shift)) c.cond_scaling = {cond_shift, read(in, "cond_scaling_scale")};
    if (in.try_read("data_mean", c.data_mean)) c.data_cov = read(in, "data_cov");
    c.state.params = read(in, "params");
    c.state.ema = read(in, "ema");
    c.state.exp_avg = read(in, "exp_avg");
    c.state.exp_avg_sq = read(in, "exp_avg_sq");
    c.state.step = read(in, "step").item<int64_t>();
    c.state.rng_state = read(in, "rng_state");
    if (in.try_read("best_ema", c.state.best_ema)) {
      c.state.best_loss = read(in, "best_loss").item<double>();
      c.state.best_step = read(in, "best_step").item<int64_t>();
      c.state.since_best = read(in, "since_best").item<int64_t>();
    }
    const int64_t buffers = read(in, "buffer_count").item<int64_t>();
    for (int64_t i = 0; i < buffers; ++i) {
      c.buffers.push_back(read(in, "buffer_" + std::to_string(i)));
      c.ema_buffers.push_back(read(in, "ema_buffer_" + std::to_string(i)));
    }
  } catch (const IOError&) {
    throw;
  } catch (const InvalidArgument& e) {
    throw IOError(std::string(e.what()));
  } catch (const std::exception&) {
    throw IOError(path + ": not a readable sbgm checkpoint");
  }
  return c;
}

}  // namespace sbgm
