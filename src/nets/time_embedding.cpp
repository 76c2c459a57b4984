#include "sbgm/nets/time_embedding.hpp"

#include <ATen/ATen.h>

#include <cmath>

namespace sbgm {

TimeEmbedding::TimeEmbedding(TimeEmbeddingKind kind, int64_t dim, double fourier_scale)
    : kind_(kind), dim_(kind == TimeEmbeddingKind::Tutorial ? 4 : dim) {
  const int64_t half = dim_ / 2;
  switch (kind_) {
    case TimeEmbeddingKind::Tutorial:
      break;
    case TimeEmbeddingKind::Fourier:
      // Random frequencies, fixed at construction (and saved with the weights).
      frequencies_ = register_buffer("frequencies", at::randn({half}) * (2 * M_PI * fourier_scale));
      break;
    case TimeEmbeddingKind::Sinusoidal:
      // Geometric frequencies from 1 to 10^4 / (2 pi) ... as in the transformer's positions,
      // for t scaled to [0, 1000].
      frequencies_ = register_buffer(
          "frequencies", at::exp(at::arange(half, at::kFloat) * (-std::log(10000.0) / std::max<int64_t>(half - 1, 1))) * 1000.0);
      break;
    case TimeEmbeddingKind::LogTime:
      // ln t spans about 12 units between t_eps = 1e-5 and T = 1, and the fine structure of a
      // distribution is resolved only at small t, where t itself hardly changes. Geometric
      // frequencies from 1/16 (a period of 100 units: monotone over the range) to 4 (factors of
      // e^0.4 apart told apart).
      frequencies_ = register_buffer(
          "frequencies", at::exp(at::linspace(std::log(1.0 / 16), std::log(4.0), half, at::kFloat)));
      break;
  }
}

at::Tensor TimeEmbedding::forward(const at::Tensor& t) {
  const at::Tensor tc = t.reshape({-1, 1});
  if (kind_ == TimeEmbeddingKind::Tutorial) {
    return at::cat({tc - 0.5, at::cos(tc * (2 * M_PI)), at::sin(tc * (2 * M_PI)), -at::cos(tc * (4 * M_PI))}, 1);
  }
  // The time the embedding sees: ln t (floored far below any t_eps, so t = 0 stays finite).
  const at::Tensor tau = kind_ == TimeEmbeddingKind::LogTime ? at::log(at::clamp_min(tc, 1e-12)) : tc;
  const at::Tensor phase = tau * frequencies_.unsqueeze(0);
  return at::cat({at::sin(phase), at::cos(phase)}, 1);
}

}  // namespace sbgm
