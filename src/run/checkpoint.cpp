#include "sbgm/run/checkpoint.hpp"

#include <ATen/ATen.h>

#include "checkpoint_layout.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

void save_checkpoint(const Checkpoint& c, const std::string& path) {
  using namespace checkpoint_layout;
  if (c.ema_buffers.size() != c.buffers.size()) throw InvalidArgument("checkpoint: EMA buffers do not match buffers");
  TensorFile out;
  write_spec(out, c);
  const TrainState& s = c.state;
  out.tensors["step"] = at::scalar_tensor(s.step, at::kLong);
  // The weights a model is used with; the running EMA is kept apart only when they differ.
  out.tensors["weights"] = s.best_ema.defined() ? s.best_ema : s.ema;
  write_buffers(out, "buffers.", c.ema_buffers);
  out.tensors["train.params"] = s.params;
  out.tensors["train.exp_avg"] = s.exp_avg;
  out.tensors["train.exp_avg_sq"] = s.exp_avg_sq;
  out.tensors["train.rng_state"] = s.rng_state;
  write_buffers(out, "train.buffers.", c.buffers);
  if (s.best_ema.defined()) {
    out.tensors["train.ema"] = s.ema;
    out.tensors["train.best_loss"] = at::scalar_tensor(s.best_loss, at::kDouble);
    out.tensors["train.best_step"] = at::scalar_tensor(s.best_step, at::kLong);
    out.tensors["train.since_best"] = at::scalar_tensor(s.since_best, at::kLong);
  }
  write_tensor_file(path, out);
}

Checkpoint load_checkpoint(const std::string& run_dir_or_file) {
  using namespace checkpoint_layout;
  const File file = read(run_dir_or_file);
  Checkpoint c;
  static_cast<ModelSpec&>(c) = read_spec(file);
  if (!has(file, "train.params")) throw IOError(file.path + ": the checkpoint holds a model but no training state");
  TrainState& s = c.state;
  s.step = take_count(file, "step");
  const at::Tensor weights = take(file, "weights", Kind::Floating, 1);
  s.params = take(file, "train.params", Kind::Floating, 1);
  s.exp_avg = take(file, "train.exp_avg", Kind::Floating, 1);
  s.exp_avg_sq = take(file, "train.exp_avg_sq", Kind::Floating, 1);
  s.rng_state = take(file, "train.rng_state", Kind::Byte, 1);
  if (has(file, "train.ema")) {
    s.ema = take(file, "train.ema", Kind::Floating, 1);
    s.best_ema = weights;
    s.best_loss = take(file, "train.best_loss", Kind::Floating, 0).item<double>();
    s.best_step = take_count(file, "train.best_step");
    s.since_best = take_count(file, "train.since_best");
  } else {
    s.ema = weights;
  }
  for (const at::Tensor* t : std::initializer_list<const at::Tensor*>{&s.ema, &s.exp_avg, &s.exp_avg_sq, &weights})
    if (!t->sizes().equals(s.params.sizes()))
      throw IOError(file.path + ": the checkpoint's weights and optimiser state differ in size");
  c.ema_buffers = take_buffers(file, "buffers.");
  c.buffers = take_buffers(file, "train.buffers.");
  if (c.buffers.size() != c.ema_buffers.size()) throw IOError(file.path + ": the checkpoint's buffers do not pair up");
  return c;
}

}  // namespace sbgm
