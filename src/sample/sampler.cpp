#include "sbgm/sample/sampler.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <numeric>

#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"

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
                        const at::TensorOptions& options, const ProgressFn& progress) {
  if (config.n < 1) throw InvalidArgument("the number of samples must be at least 1");
  if (y.defined() && y.size(0) != config.n)
    throw InvalidArgument("got " + std::to_string(y.size(0)) + " condition rows for " + std::to_string(config.n) +
                          " samples");
  const int64_t per_sample =
      std::accumulate(sample_shape.begin(), sample_shape.end(), int64_t{1}, std::multiplies<>());
  int64_t chunk = config.chunk_size > 0 ? config.chunk_size
                                        : std::max<int64_t>(1, config.max_chunk_elements / std::max<int64_t>(per_sample, 1));
  chunk = std::min(chunk, config.n);

  std::vector<int64_t> out_shape{config.n};
  out_shape.insert(out_shape.end(), sample_shape.begin(), sample_shape.end());
  at::Tensor out = at::empty(out_shape, options);

  const int64_t chunks = (config.n + chunk - 1) / chunk;
  const int64_t total = chunks * sampler.steps();
  int64_t done = 0;
  auto on_step = [&] {
    ++done;
    if (progress) progress(done, total);
  };
  c10::InferenceMode no_autograd;  // sampling never differentiates: skip autograd's dispatch too
  for (int64_t start = 0; start < config.n; start += chunk) {
    const int64_t rows = std::min(chunk, config.n - start);
    std::vector<int64_t> shape{rows};
    shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
    at::Tensor x = sde.prior_sample(shape, gen, options);
    at::Tensor y_chunk = y.defined() ? y.narrow(0, start, rows) : at::Tensor();
    out.narrow(0, start, rows).copy_(sampler.run(model, sde, x, y_chunk, gen, on_step));
  }
  return out;
}

}  // namespace sbgm
