// Uses the installed library: exact-score sampling of a 1-D Gaussian mixture with Euler-Maruyama.
#include <sbgm/score/mixture_score.hpp>
#include <sbgm/sample/euler_maruyama.hpp>
#include <sbgm/sde/sde.hpp>
#include <sbgm/util/runtime.hpp>

#include <ATen/ATen.h>

#include <cmath>
#include <iostream>

int main() {
  std::shared_ptr<const sbgm::SDE> sde = sbgm::make_sde(sbgm::SDEConfig{});
  const auto dbl = at::TensorOptions().dtype(at::kDouble);
  sbgm::GaussianMixtureScore score(
      sbgm::GaussianMixture(at::ones({1}, dbl), at::full({1, 1}, 3.0, dbl), at::full({1, 1, 1}, 0.25, dbl)), sde);
  sbgm::EulerMaruyama sampler({200, true});
  sbgm::DrawConfig draw;
  draw.n = 4000;
  const at::Tensor x = sbgm::draw_samples(sampler, score, *sde, {1}, draw, at::Tensor(),
                                          sbgm::make_generator(at::kCPU, 1), at::TensorOptions());
  const double mean = x.mean().item<double>();
  std::cout << "sample mean " << mean << " (expected 3)\n";
  return std::abs(mean - 3.0) < 0.1 ? 0 : 1;
}
