#pragma once
// The pictures sbgm draws: model samples beside the data, and the training loss curve.

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace sbgm {

// Data [N, D] beside samples [M, D] on the same axes: a scatter of the first two features for
// D >= 2, histograms for D = 1. With data undefined, the samples alone.
void plot_samples(const std::string& path, const at::Tensor& data, const at::Tensor& samples);
void plot_samples_alone(const std::string& path, const at::Tensor& samples);

// Loss against step (log scale when the loss is positive and spans more than a decade).
void plot_loss_curve(const std::string& path, const std::vector<double>& steps, const std::vector<double>& losses);

}  // namespace sbgm
