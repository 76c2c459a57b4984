#pragma once
// One request for log-densities of rows under a model — the probability-flow ODE's log p or the
// variational bound — with what the caller leaves unset settled against the model: the rows
// integrated together (fewer for an image network, whose activations autograd keeps), and for
// integer data the dequantisation's levels and range (the model's own pixel levels). The result
// is in the units asked for (nats, or bits per dimension) with its standard error. Every front
// end (`sbgm loglik`, the Python package) states what it wants here.

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <optional>
#include <utility>

#include "sbgm/data/dequantize.hpp"
#include "sbgm/dist/communicator.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"

namespace sbgm {

struct Model;

struct LikelihoodRequest {
  at::Tensor x;     // rows in data space [N, ...] (any real dtype; float64 is kept)
  at::Tensor cond;  // conditions, one row per row of x or a single row for all; undefined: none
  // The method, solver, divergence and draws as given; chunk_size 0: the model's default.
  LikelihoodConfig config = [] {
    LikelihoodConfig c;
    c.chunk_size = 0;
    return c;
  }();
  uint64_t seed = 0;  // the Hutchinson probes' and the bound's draws; seed + 1 the dequantisation's
  // Integer data: levels k in [0, levels) dequantised to k + u and scored by the discrete
  // likelihood's bound. Unset levels or range: the model's pixel levels and range where it was
  // trained on pixels, otherwise Dequantization's defaults.
  bool dequantize = false;
  std::optional<int64_t> levels;
  std::optional<std::pair<double, double>> range;
  bool bits_per_dim = false;  // -log p / (D ln 2) instead of nats
  // > 1: the density of the model whose score is averaged over that many orders of a set
  // condition's elements (ScoreOptions::set_orders).
  int64_t set_orders = 1;
  // A model with a support: the draws per condition that estimate its share Z (model_log_likelihood;
  // unset: kSupportDraws). Refused for a model without one.
  std::optional<int64_t> support_draws;
  Communicator comm;  // the processes that share the rows (this one alone by default)
};

struct LikelihoodReport {
  at::Tensor log_prob;   // [N] float64: log p in nats (the bound for an ELBO; with the dequantisation's Jacobian)
  at::Tensor value;      // [N] what was asked for: log_prob, or bits per dimension
  at::Tensor std_error;  // [N] its standard error in the same units (zeros where exact)
  double mean = 0;       // over the rows
  double mean_std_error = 0;  // mean's (mean_standard_error)
  LikelihoodConfig config;  // as settled
  SolveStats stats;
};

// The standard error of the mean of r's rows: each row's own error independent, an error rows share
// (a support's Z, one per condition) counted once for all the rows that share it — so the mean of
// many points of one observation keeps Z's error, which no number of points averages away.
double mean_standard_error(const LikelihoodResult& r);
// The part of the standard error of a mean over n rows that the rows share: each group's shared
// errors [N] (float64, shared_group [N] int64) summed, the groups' sums added in quadrature, / n.
double shared_error_of_mean(const at::Tensor& shared_error, const at::Tensor& shared_group, int64_t n);

// The likelihood settings a request comes to for this model (chunk_size settled).
LikelihoodConfig resolve_likelihood(const Model& model, const LikelihoodRequest& request);
// The dequantisation a request comes to for this model; InvalidArgument for a bad one.
Dequantization resolve_dequantization(const Model& model, const LikelihoodRequest& request);

// Runs the request: checks it against the model (rows finite and of the model's shape, the
// settings valid; InvalidArgument naming the problem), then integrates. Every rank of
// request.comm gets the whole result.
LikelihoodReport run_likelihood_request(const Model& model, const LikelihoodRequest& request,
                                        const ProgressFn& progress = {});

// A G x G grid of 2-D points over which a model's log-density is mapped: row i at y_i and column
// j at x_j (points[i G + j] = (x_j, y_i)).
struct DensityGrid {
  at::Tensor points;  // [G * G, 2] float64
  std::array<double, 2> x_range{}, y_range{};
};
// The grid of g >= 2 points a side over range {XMIN, XMAX, YMIN, YMAX}, or unset: the extent of
// data [N, 2] with a tenth of its span added on each side. InvalidArgument naming {grid},
// {range} or {data} for a model that is not of 2-D points, no extent to be had, or a range
// that is empty or not finite.
DensityGrid density_grid(const Model& model, int64_t g, const std::optional<std::array<double, 4>>& range,
                         const at::Tensor& data = {});

}  // namespace sbgm
