#include "sbgm/run/inpaint.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <numeric>

#include "sbgm/dist/row_chunks.hpp"
#include "sbgm/run/sample_request.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/shape_text.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {
namespace {

// The mask as [N, ...] of 0/1 doubles; errors name the shape the user gave (given_shape).
at::Tensor checked_mask(const at::Tensor& mask, const at::Tensor& observed, at::IntArrayRef given_shape) {
  const std::vector<int64_t> one(observed.sizes().begin() + 1, observed.sizes().end());
  at::Tensor m = mask;
  if (m.sizes().vec() == one) m = m.unsqueeze(0).expand(observed.sizes());
  if (m.sizes() != observed.sizes())
    throw InvalidArgument("the mask has shape " + shape_text(given_shape) + " but must be " + shape_text(one) +
                          " (one sample) or " + shape_text(observed.sizes()) + " (one per row)");
  m = m.to(at::kDouble);
  if (!((m == 0) | (m == 1)).all().item<bool>()) throw InvalidArgument("the mask must hold only 0 and 1");
  return m;
}

// The time t* at which the SDE's noise-to-signal ratio sigma(t)/m(t) equals the observation's
// noise std (the same in every feature of the model's space), and the SDE that ends there.
std::shared_ptr<const SDE> sde_ending_at_noise_level(const Model& model, const at::Tensor& noise_std) {
  const double lo = noise_std.min().item<double>(), hi = noise_std.max().item<double>();
  if (hi - lo > 1e-9 * hi)
    throw InvalidArgument("{method} noise-level needs the same noise std in every feature of the model's space, but the "
                          "model standardised its features with different scales: use {method} moments");
  const SDE& sde = *model.sde;
  if (hi <= sde.noise_to_signal(sde.t_eps()))
    throw InvalidArgument("the noise std " + std::to_string(hi) + " (model units) is below the SDE's smallest noise "
                          "level sigma/m = " + std::to_string(sde.noise_to_signal(sde.t_eps())) + " at t_eps");
  SDEConfig config = model.config.sde;
  config.T = std::min(sde.T(), sde.time_of_noise_to_signal(hi));
  return make_sde(config);
}

}  // namespace

InverseMethod default_inverse_method(int64_t features, const at::Tensor& mask, double noise_std) {
  if (features <= kMomentsMaxFeatures) return InverseMethod::Moments;
  if (noise_std == 0) return InverseMethod::Replace;
  return (mask == 1).all().item<bool>() ? InverseMethod::NoiseLevel : InverseMethod::Moments;
}

ObservedRows observed_rows(const Model& model, const at::Tensor& observed_given, const at::Tensor& mask_given) {
  // Grey images [N, H, W] (and their masks, [H, W] or [N, H, W]) as the model's [N, 1, H, W].
  const at::Tensor observed = model_rows(model, observed_given);
  at::Tensor mask = mask_given;
  if (observed.dim() != observed_given.dim()) {
    if (mask.dim() == observed_given.dim()) mask = mask.unsqueeze(1);
    else if (mask.dim() + 1 == observed_given.dim()) mask = mask.unsqueeze(0);
  }
  const std::vector<int64_t> shape(observed.sizes().begin() + 1, observed.sizes().end());
  if (observed.dim() < 2 || shape != model.data_shape)
    throw InvalidArgument("the observations' rows have shape " + shape_text(shape) + " but the model was trained on " +
                          shape_text(model.data_shape));
  return {observed, checked_mask(mask, observed, mask_given.sizes())};
}

at::Tensor model_inpaint(const Model& model, const at::Tensor& observed_given, const at::Tensor& mask_given,
                         const InpaintConfig& config, uint64_t seed, const ProgressFn& progress,
                         const Communicator& comm) {
  const auto [observed, m] = observed_rows(model, observed_given, mask_given);
  const std::vector<int64_t> shape(observed.sizes().begin() + 1, observed.sizes().end());
  if (model.cond_dim > 0) throw InvalidArgument("inpainting takes an unconditional model");
  if (!model.sde->has_reverse_sde())
    throw InvalidArgument("inpainting guides the reverse process by the score, which a flow model on the " +
                          to_string(model.sde->kind()) + " path does not have at t = T: not available for this model");
  require_path_score(model, "inpainting");
  if (!model.bounds.none() || !model.support.none())
    throw InvalidArgument("inpainting observes the data linearly, which a model of bounded data (data.lower, data.upper) "
                          "does not take");
  if (config.n < 1) throw InvalidArgument("the number of samples per row must be at least 1");
  if (!(config.noise_std >= 0) || !std::isfinite(config.noise_std))
    throw InvalidArgument("the observation noise std must be finite and >= 0");
  if (config.method == InverseMethod::Replace && config.noise_std > 0)
    throw InvalidArgument("the replace method needs exact observations (noise std 0); use the moments method");
  if (config.method == InverseMethod::Replace && config.sampler.kind != SamplerKind::EulerMaruyama)
    throw InvalidArgument("{method} replace runs Euler-Maruyama only ({sampler} em)");
  if (config.method == InverseMethod::Replace && config.sampler.lambda)
    throw InvalidArgument("{method} replace runs the reverse SDE itself: it takes no {lambda}");
  if (config.method == InverseMethod::NoiseLevel) {
    if (!(config.noise_std > 0)) throw InvalidArgument("{method} noise-level denoises: give the noise std ({noise_std} > 0)");
    const SamplerKind k = config.sampler.kind;
    if (k == SamplerKind::ProbabilityFlow || k == SamplerKind::EDMHeun || is_multistep(k))
      throw InvalidArgument("{method} noise-level needs a stochastic sampler (em, pc or ancestral): an ODE from one "
                            "starting point gives one sample, not the posterior");
  }
  if (config.method == InverseMethod::NoiseLevel && !(m == 1).all().item<bool>())
    throw InvalidArgument("{method} noise-level denoises: every feature must be observed (no {mask}, or a mask of ones)");
  const at::Tensor values = observed.to(at::kDouble).where(m > 0, at::zeros({}, at::kDouble));
  if (!at::isfinite(values).all().item<bool>()) throw InvalidArgument("the observed values contain NaN or Inf");

  // Into the model's space: values scaled, sigma_y divided by each feature's scale.
  const auto opts = at::TensorOptions().device(model.device).dtype(model.dtype);
  const int64_t rows = observed.size(0), n = config.n;
  auto repeat = [&](const at::Tensor& t) { return t.repeat_interleave(n, 0).to(opts); };
  const at::Tensor model_values = repeat(model.scaling.to_model(values.to(model.dtype)));
  const at::Tensor model_mask = repeat(m);
  at::Tensor noise_std = at::full({}, config.noise_std, opts);
  if (!model.scaling.is_identity()) noise_std = noise_std / model.scaling.scale.to(opts);

  auto prior = model.score_model({0, config.precision});
  std::unique_ptr<Sampler> sampler = make_sampler(config.sampler);
  // The noise-level method runs the unconditional reverse process from t* < T.
  const std::shared_ptr<const SDE> sde =
      config.method == InverseMethod::NoiseLevel ? sde_ending_at_noise_level(model, noise_std) : model.sde;
  const int64_t total_rows = rows * n;
  const int64_t features = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
  // Memory bound per chunk: the moments method holds a D x D Jacobian per row. At least 8 chunks
  // when there are rows enough, so that up to 8 processes can share the work.
  const int64_t per_row = config.method == InverseMethod::Moments ? features * features : features;
  const int64_t memory_bound = (int64_t{1} << 22) / std::max<int64_t>(per_row, 1);
  const int64_t chunk = std::clamp<int64_t>(std::min(memory_bound, (total_rows + 7) / 8), 1, total_rows);
  // Each chunk has its own generator, so the result does not depend on how many processes share
  // the chunks (comm).
  const RowChunks chunks(total_rows, chunk, make_generator(model.device, seed), opts, comm);
  std::vector<int64_t> local_shape{chunks.local_rows()};
  local_shape.insert(local_shape.end(), shape.begin(), shape.end());
  const at::Tensor local = at::empty(local_shape, opts);
  chunks.for_each(
      [&](const RowChunk& c) {
        const StepFn on_step = progress_of(*sde, c);
        Observation obs{model_values.narrow(0, c.start, c.rows), model_mask.narrow(0, c.start, c.rows), noise_std};
        at::Tensor target = local.narrow(0, c.local_start, c.rows);
        std::vector<int64_t> x_shape{c.rows};
        x_shape.insert(x_shape.end(), shape.begin(), shape.end());
        if (config.method == InverseMethod::NoiseLevel) {
          const at::Tensor x = obs.values * sde->mean_coeff(sde->T());  // distributed as x_t* given x_0
          target.copy_(sampler->run(*prior, *sde, x.clone(), at::Tensor(), c.gen, on_step));
          return;
        }
        const at::Tensor x = model.sde->prior_sample(x_shape, c.gen, opts);
        if (config.method == InverseMethod::Replace) {
          target.copy_(sample_by_replacement(*prior, *model.sde, obs, x, at::Tensor(), config.sampler.steps, c.gen, on_step));
        } else {
          ObservedScore posterior(*prior, model.sde, obs);
          target.copy_(sampler->run(posterior, *model.sde, x, at::Tensor(), c.gen, on_step));
        }
      },
      progress);
  const at::Tensor out = chunks.gather(local);
  // An exact observation is the posterior's value there (the sampler leaves the t_eps residual).
  if (config.noise_std == 0) out.copy_(out * (1 - model_mask) + model_values * model_mask);
  std::vector<int64_t> result_shape{rows, n};
  result_shape.insert(result_shape.end(), shape.begin(), shape.end());
  return model.scaling.to_data(out).cpu().reshape(result_shape);
}

ResolvedInpaint resolve_inpaint(const Model& model, const InpaintRequest& request) {
  if (!request.observed.defined() || request.observed.dim() < 1 || request.observed.size(0) < 1)
    throw InvalidArgument("the observations must be rows [N, ...] with N >= 1");
  if (request.steps_given && request.sampling.steps < 1)
    throw InvalidArgument("steps must be at least 1, got " + std::to_string(request.sampling.steps));
  if (!request.mask.defined() && !(request.noise_std > 0))
    throw InvalidArgument("without a mask every feature is observed: denoising needs a noise std > 0");
  ResolvedInpaint r;
  r.mask = request.mask.defined() ? request.mask : at::ones(request.observed.sizes().slice(1), at::kDouble);
  r.config.noise_std = request.noise_std;
  r.config.n = request.n;
  r.config.precision = request.precision;
  r.config.method = request.method ? *request.method
                                   : default_inverse_method(request.observed[0].numel(), r.mask, request.noise_std);
  SampleRequest sampling;
  sampling.sampler = request.sampler;
  sampling.sampling = request.sampling;
  sampling.steps_given = request.steps_given;
  r.config.sampler = resolve_sampling(model, sampling);
  return r;
}

at::Tensor run_inpaint_request(const Model& model, const InpaintRequest& request, const ProgressFn& progress) {
  const ResolvedInpaint r = resolve_inpaint(model, request);
  return model_inpaint(model, request.observed, r.mask, r.config, request.seed, progress, request.comm);
}

}  // namespace sbgm
