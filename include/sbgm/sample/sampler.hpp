#pragma once
// A sampler turns draws from the prior into draws from the model by integrating a reverse-time
// process from T down to t_eps. draw_samples handles the rest: prior draws, chunking to a
// memory bound, conditions, progress.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace sbgm {

class SDE;
class ScoreModel;

// Called with (work done, total work) in sampler steps across all chunks.
using ProgressFn = std::function<void(int64_t done, int64_t total)>;

class Sampler {
 public:
  virtual ~Sampler() = default;
  // Number of steps one call of run() takes (for progress).
  virtual int64_t steps() const = 0;
  // x: a batch drawn from the prior, updated in place and returned. y: conditions or undefined.
  // on_step is called after every step.
  virtual at::Tensor run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y, at::Generator gen,
                         const std::function<void()>& on_step) = 0;
};

// Calls step(t, s, last) for each of the `steps` steps of the uniform grid from T down to t_eps
// (s = t - h, the last one landing exactly on t_eps).
void for_each_reverse_step(const SDE& sde, int64_t steps, const std::function<void(double t, double s, bool last)>& step);

struct DrawConfig {
  int64_t n = 1000;
  // Largest number of samples integrated at once (0: pick from max_chunk_elements).
  int64_t chunk_size = 0;
  int64_t max_chunk_elements = int64_t{1} << 22;  // 4M floats of state per chunk
};

// Draws config.n samples of shape sample_shape ([n, ...sample_shape]). y: one condition row per
// sample ([n, ...]) or undefined.
at::Tensor draw_samples(Sampler& sampler, ScoreModel& model, const SDE& sde, const std::vector<int64_t>& sample_shape,
                        const DrawConfig& config, const at::Tensor& y, at::Generator gen,
                        const at::TensorOptions& options, const ProgressFn& progress = {});

}  // namespace sbgm
