#include "sbgm/sample/sampler.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {

void for_each_reverse_step(const SDE& sde, int64_t steps, const std::function<void(double, double, bool)>& step) {
  const double h = (sde.T() - sde.t_eps()) / static_cast<double>(steps);
  for (int64_t i = 0; i < steps; ++i) {
    const bool last = i + 1 == steps;
    const double t = sde.T() - i * h;
    step(t, last ? sde.t_eps() : t - h, last);
  }
}

at::Tensor draw_samples(Sampler& sampler, ScoreModel& model, const SDE& sde, const std::vector<int64_t>& sample_shape,
                        const DrawConfig& config, const at::Tensor& y, at::Generator gen,
                        const at::TensorOptions& options, const ProgressFn& progress, const Communicator& comm) {
  if (config.n < 1) throw InvalidArgument("the number of samples must be at least 1");
  if (y.defined() && y.size(0) != config.n)
    throw InvalidArgument("got " + std::to_string(y.size(0)) + " condition rows for " + std::to_string(config.n) +
                          " samples");
  const int64_t per_sample =
      std::accumulate(sample_shape.begin(), sample_shape.end(), int64_t{1}, std::multiplies<>());
  const int64_t chunk = config.chunk_size > 0
                            ? config.chunk_size
                            : std::max<int64_t>(1, config.max_chunk_elements / std::max<int64_t>(per_sample, 1));
  const RowChunks chunks(config.n, chunk, gen, options, comm);
  std::vector<int64_t> out_shape{chunks.local_rows()};
  out_shape.insert(out_shape.end(), sample_shape.begin(), sample_shape.end());
  at::Tensor out = at::empty(out_shape, options);
  c10::InferenceMode no_autograd;  // sampling never differentiates: skip autograd's dispatch too
  chunks.for_each(
      [&](const RowChunk& c) {
        std::vector<int64_t> shape{c.rows};
        shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
        const at::Tensor x = sde.prior_sample(shape, c.gen, options);
        const at::Tensor y_chunk = y.defined() ? y.narrow(0, c.start, c.rows) : at::Tensor();
        out.narrow(0, c.local_start, c.rows).copy_(sampler.run(model, sde, x, y_chunk, c.gen, progress_of(sde, c)));
      },
      progress);
  return chunks.gather(out);
}

StepFn progress_of(const SDE& sde, const RowChunk& chunk) {
  return [&sde, report = chunk.report](double t, const at::Tensor&) {
    report((sde.T() - t) / (sde.T() - sde.t_eps()));
  };
}

Trajectories record_trajectories(Sampler& sampler, ScoreModel& model, const SDE& sde,
                                 const std::vector<int64_t>& sample_shape, int64_t k, const at::Tensor& y,
                                 at::Generator gen, const at::TensorOptions& options) {
  if (k < 1) throw InvalidArgument("the number of trajectories must be at least 1");
  c10::InferenceMode no_autograd;
  std::vector<int64_t> shape{k};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  const at::Tensor x = sde.prior_sample(shape, gen, options);
  Trajectories paths;
  std::vector<at::Tensor> states;
  auto record = [&](double t, const at::Tensor& state) {
    paths.times.push_back(t);
    states.push_back(state.detach().to(at::kCPU, at::kDouble, /*non_blocking=*/false, /*copy=*/true));
  };
  record(sde.T(), x);
  sampler.run(model, sde, x.clone(), y.defined() ? y.narrow(0, 0, k) : at::Tensor(), gen, record);
  paths.states = at::stack(states);
  return paths;
}

}  // namespace sbgm
