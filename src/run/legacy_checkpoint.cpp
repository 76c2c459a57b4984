#include <ATen/ATen.h>
#include <sys/stat.h>
#include <torch/serialize/input-archive.h>

#include "sbgm/run/checkpoint.hpp"
#include "sbgm/util/error.hpp"

// Checkpoints of format 1 were LibTorch archives. Its reader trusts what it reads (a crafted
// archive can crash it), so only `sbgm upgrade` calls this, on a file the user vouches for.

namespace sbgm {
namespace {

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

Checkpoint load_legacy_checkpoint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw IOError(path + ": no checkpoint there");
  torch::serialize::InputArchive in;
  Checkpoint c;
  try {
    in.load_from(path);
    if (read(in, "format_version").item<int64_t>() != 1) throw IOError(path + ": not an sbgm checkpoint of format 1");
    // A checkpoint written before train.validate_every existed validated at every log step, one
    // written before sample.sampler existed sampled with Euler-Maruyama (its steps are kept in
    // the file), one written before model.baseline existed had none, and none had a set condition
    // or the keys of config_for_earlier_files().
    c.config = config_for_earlier_files();
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
