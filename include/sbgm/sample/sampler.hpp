#pragma once
// A sampler turns draws from the prior into draws from the model by integrating a reverse-time
// process from T down to t_eps. draw_samples handles the rest: prior draws, chunking to a
// memory bound, conditions, progress.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "sbgm/dist/row_chunks.hpp"
#include "sbgm/util/progress.hpp"

namespace sbgm {

class SDE;
class ScoreModel;

// Called after every step of a sampler (or accepted step of a solver) with the time reached and
// the state there, in the SDE's space: for progress and for recording trajectories.
using StepFn = std::function<void(double t, const at::Tensor& x)>;

class Sampler {
 public:
  virtual ~Sampler() = default;
  // x: a batch drawn from the prior, updated in place and returned. y: conditions or undefined.
  virtual at::Tensor run(ScoreModel& model, const SDE& sde, at::Tensor x, const at::Tensor& y, at::Generator gen,
                         const StepFn& on_step) = 0;
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
// sample ([n, ...]) or undefined. The chunks of rows are a RowChunks: the samples do not depend on
// how many ranks of comm share them, and every rank gets all n rows. Progress in thousandths of
// [t_eps, T] per chunk.
at::Tensor draw_samples(Sampler& sampler, ScoreModel& model, const SDE& sde, const std::vector<int64_t>& sample_shape,
                        const DrawConfig& config, const at::Tensor& y, at::Generator gen,
                        const at::TensorOptions& options, const ProgressFn& progress = {},
                        const Communicator& comm = Communicator());

// A sampler's step callback that reports how far through [t_eps, T] it is as the chunk's progress.
StepFn progress_of(const SDE& sde, const RowChunk& chunk);

// K paths through the reverse process, for pictures: times[0] = T (the prior draws) and then
// the time after every step; states [steps + 1, K, ...sample_shape] in the SDE's space.
struct Trajectories {
  std::vector<double> times;
  at::Tensor states;
};
Trajectories record_trajectories(Sampler& sampler, ScoreModel& model, const SDE& sde,
                                 const std::vector<int64_t>& sample_shape, int64_t k, const at::Tensor& y,
                                 at::Generator gen, const at::TensorOptions& options);

}  // namespace sbgm
