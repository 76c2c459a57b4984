#pragma once
// Two-sample distances for judging samples against held-out data. Both take x [N, ...] and
// y [M, ...] (rows flattened), work in float64 and in row blocks, so memory stays bounded.

#include <ATen/core/Tensor.h>

namespace sbgm {

// The energy distance sqrt(2 E|X - Y| - E|X - X'| - E|Y - Y'|) (Szekely & Rizzo) with every
// expectation the plain average over all pairs, as scipy.stats.energy_distance computes it in
// 1-D. Zero exactly when the two empirical distributions coincide.
double energy_distance(const at::Tensor& x, const at::Tensor& y);

// The squared maximum mean discrepancy with a Gaussian kernel exp(-|a - b|^2 / (2 bandwidth^2)),
// unbiased (U-statistic) form; bandwidth <= 0 picks the median pairwise distance of the pooled
// sample.
double mmd_rbf(const at::Tensor& x, const at::Tensor& y, double bandwidth = 0);

}  // namespace sbgm
