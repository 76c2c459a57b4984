#pragma once
// Built-in low-dimensional datasets for examples, tests and benchmarks.
//   circle8      the tutorial's 8 points on the unit circle (always exactly 8 rows)
//   ring8        mixture of 8 Gaussians (std 0.2) on a circle of radius 2
//   swissroll    2-D swiss roll
//   moons        two interleaved half circles
//   checkerboard uniform on the dark squares of a 4x4 board on [-2, 2]^2
//   bimodal1d    1-D mixture 0.5 N(-2, 0.5^2) + 0.5 N(2, 0.5^2)

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "sbgm/data/gaussian_mixture.hpp"

namespace sbgm {

const std::vector<std::string>& toy_dataset_names();

// n float32 rows of the named dataset, drawn with the given seed. Throws InvalidArgument for an
// unknown name.
at::Tensor make_toy_dataset(const std::string& name, int64_t n, uint64_t seed);

// The dataset's exact density where it is a Gaussian mixture (ring8, bimodal1d).
std::optional<GaussianMixture> toy_dataset_mixture(const std::string& name);

}  // namespace sbgm
