#pragma once
// Inverse problems with a model: posterior samples of x given an observation of the features a
// mask marks, y = x + sigma_y n there (inpainting; denoising when every feature is observed).
// What `sbgm inpaint` runs, in data space; the methods are those of sample/inverse_problem.hpp.

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

#include "sbgm/run/model.hpp"
#include "sbgm/sample/inverse_problem.hpp"
#include "sbgm/sample/make_sampler.hpp"

namespace sbgm {

struct InpaintConfig {
  InverseMethod method = InverseMethod::Moments;
  SamplerOptions sampler;  // moments: any sampler; replace: Euler-Maruyama in sampler.steps steps
  double noise_std = 0;    // sigma_y, in data units
  int64_t n = 1;           // posterior samples per observed row
  Precision precision = Precision::Float32;  // the prior network's evaluations (bfloat16: autocast)
};

// Moment projection's D reverse passes per step are affordable for vector data, not for images.
constexpr int64_t kMomentsMaxFeatures = 256;

// The method `sbgm inpaint` uses when none is named: moment projection up to
// kMomentsMaxFeatures features; above, the methods that cost one sampling run -- replacement for
// exact observations, the noise-level start for denoising -- and moment projection, at its cost,
// for noisy observations of some features.
InverseMethod default_inverse_method(int64_t features, const at::Tensor& mask, double noise_std);

// The observations as the model's rows [N, ...] (grey images [N, H, W] gain their channel) and
// the mask as 0/1 doubles of the same shape (a mask [...] is every row's). InvalidArgument for
// rows the model does not take or a mask of the wrong shape or not of 0/1.
struct ObservedRows {
  at::Tensor values, mask;
};
ObservedRows observed_rows(const Model& model, const at::Tensor& observed, const at::Tensor& mask);

// observed [N, ...] (data space; entries outside the mask may be anything, NaN included) and
// mask [...] or [N, ...] of 0/1 -> n posterior samples per row, [N, n, ...] (with sigma_y = 0 the
// observed features are the observation itself); grey images may come as [N, H, W]. The rows
// are shared by the processes of comm and gathered (the result does not depend on how many). InvalidArgument naming the problem for a shape the model does not take, a mask that is
// not 0/1 or of the wrong shape, NaN or Inf among the observed values, sigma_y < 0, replace with
// sigma_y > 0 or a sampler other than Euler-Maruyama, or what noise-level cannot do.
at::Tensor model_inpaint(const Model& model, const at::Tensor& observed, const at::Tensor& mask,
                         const InpaintConfig& config, uint64_t seed, const ProgressFn& progress = {},
                         const Communicator& comm = Communicator());

// One inverse problem as a front end states it (`sbgm inpaint`, the Python package), with what it
// leaves unset settled against the model here, as SampleRequest does for sampling.
struct InpaintRequest {
  at::Tensor observed;  // [N, ...] in data space (grey images may come as [N, H, W])
  at::Tensor mask;      // 0/1, [...] or [N, ...]; undefined: every feature (denoising)
  double noise_std = 0;
  int64_t n = 1;
  std::optional<InverseMethod> method;  // unset: default_inverse_method
  // The sampler by name ("em" unless given: the one every method runs); its other options as
  // given, its steps the run's for that sampler unless steps_given.
  std::string sampler = "em";
  SamplerOptions sampling;
  bool steps_given = false;
  uint64_t seed = 0;
  Precision precision = Precision::Float32;
  Communicator comm;  // the processes that share the rows (this one alone by default)
};

// The request's mask (every feature when it has none) and the settled method and sampler.
// InvalidArgument for no mask without observation noise, or an unknown sampler.
struct ResolvedInpaint {
  at::Tensor mask;
  InpaintConfig config;
};
ResolvedInpaint resolve_inpaint(const Model& model, const InpaintRequest& request);

// [N, n, ...] posterior samples (model_inpaint's), after resolve_inpaint.
at::Tensor run_inpaint_request(const Model& model, const InpaintRequest& request, const ProgressFn& progress = {});

}  // namespace sbgm
