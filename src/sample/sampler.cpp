#include "sbgm/sample/sampler.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <limits>
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

std::vector<uint64_t> chunk_seeds(at::Generator gen, int64_t chunks, const at::TensorOptions& options) {
  const at::Tensor drawn =
      at::randint(std::numeric_limits<int64_t>::max(), {chunks}, gen, options.dtype(at::kLong)).cpu();
  const int64_t* p = drawn.data_ptr<int64_t>();
  return std::vector<uint64_t>(p, p + chunks);
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
  int64_t chunk = config.chunk_size > 0 ? config.chunk_size
                                        : std::max<int64_t>(1, config.max_chunk_elements / std::max<int64_t>(per_sample, 1));
  chunk = std::min(chunk, config.n);
  const int64_t chunks = (config.n + chunk - 1) / chunk;
  const std::vector<uint64_t> seeds = chunk_seeds(gen, chunks, options);
  const ChunkRange mine = chunks_of_rank(config.n, chunk, comm.rank(), comm.size());

  std::vector<int64_t> out_shape{mine.end - mine.begin};
  out_shape.insert(out_shape.end(), sample_shape.begin(), sample_shape.end());
  at::Tensor out = at::empty(out_shape, options);

  // Progress in thousandths of [t_eps, T] per chunk, whatever the sampler's steps.
  constexpr int64_t kUnits = 1000;
  const int64_t total = (mine.end_chunk - mine.first_chunk) * kUnits;
  int64_t done_chunks = 0;
  StepFn on_step;
  if (progress) {
    on_step = [&](double t, const at::Tensor&) {
      const double fraction = std::clamp((sde.T() - t) / (sde.T() - sde.t_eps()), 0.0, 1.0);
      progress(done_chunks * kUnits + static_cast<int64_t>(std::floor(kUnits * fraction + 1e-9)), total);
    };
  }
  c10::InferenceMode no_autograd;  // sampling never differentiates: skip autograd's dispatch too
  for (int64_t c = mine.first_chunk; c < mine.end_chunk; ++c) {
    const int64_t start = c * chunk, rows = std::min(chunk, config.n - start);
    std::vector<int64_t> shape{rows};
    shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
    at::Generator chunk_gen = make_generator(options.device(), seeds[c]);
    at::Tensor x = sde.prior_sample(shape, chunk_gen, options);
    at::Tensor y_chunk = y.defined() ? y.narrow(0, start, rows) : at::Tensor();
    out.narrow(0, start - mine.begin, rows).copy_(sampler.run(model, sde, x, y_chunk, chunk_gen, on_step));
    ++done_chunks;
  }
  return gather_rows(comm, out, config.n, chunk);
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
