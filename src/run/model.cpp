#include "sbgm/run/model.hpp"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "sbgm/io/npz.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/nets/gaussian_mixture.hpp"
#include "sbgm/nets/score_model.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/run/checkpoint.hpp"
#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/flat_parameters.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {

std::unique_ptr<ScoreModel> Model::score_model() const {
  if (mixture) return std::make_unique<GaussianMixtureScore>(*mixture, sde);
  return std::make_unique<NetworkScore>(net, sde, config.model.output);
}

int64_t Model::parameter_count() const {
  if (mixture) return mixture->components() * (1 + mixture->dim() + mixture->dim() * mixture->dim());
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

void Model::set_dtype(at::ScalarType t) {
  if (t != at::kFloat && t != at::kDouble) throw InvalidArgument("a model computes in float32 or float64 only");
  dtype = t;
  if (net) net->to(t);
}

std::shared_ptr<ScoreNet> build_net(const RunConfig& config, const std::vector<int64_t>& data_shape, int64_t cond_dim) {
  torch::manual_seed(config.train.seed);
  return make_score_net(config.model, data_shape, cond_dim);
}

Model model_from_checkpoint(const Checkpoint& c, bool use_ema, c10::Device device) {
  Model m;
  m.config = c.config;
  m.data_shape = c.data_shape;
  m.cond_dim = c.cond_dim;
  m.scaling = c.scaling;
  m.step = c.state.step;
  m.device = device;
  m.sde = make_sde(c.config.sde);
  m.net = build_net(c.config, c.data_shape, c.cond_dim);
  const at::Tensor& weights = use_ema ? c.state.ema : c.state.params;
  at::NoGradGuard no_grad;
  int64_t offset = 0;
  const auto params = m.net->parameters();
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  if (total != weights.numel())
    throw IOError("checkpoint holds " + std::to_string(weights.numel()) + " weights but its config describes " +
                  std::to_string(total));
  for (auto& p : m.net->parameters()) {
    p.copy_(weights.narrow(0, offset, p.numel()).view(p.sizes()));
    offset += p.numel();
  }
  load_module_buffers(*m.net, use_ema ? c.ema_buffers : c.buffers);
  m.net->to(device);
  m.net->eval();
  return m;
}

Model load_model(const std::string& run_dir_or_file, bool use_ema, c10::Device device) {
  return model_from_checkpoint(load_checkpoint(run_dir_or_file), use_ema, device);
}

GaussianMixture read_gaussian_mixture(const std::string& npz_path) {
  const std::map<std::string, at::Tensor> arrays = read_npz(npz_path);
  for (const char* name : {"weights", "means", "covs"})
    if (!arrays.count(name)) throw IOError(npz_path + ": no array '" + name + "' (a mixture needs weights, means and covs)");
  try {
    return GaussianMixture(arrays.at("weights"), arrays.at("means"), arrays.at("covs"));
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(npz_path + ": " + e.what());
  }
}

Model mixture_model(const GaussianMixture& mixture, const SDEConfig& sde, c10::Device device) {
  if (!device.is_cpu()) throw InvalidArgument("an analytic mixture model runs on the CPU only");
  sde.validate();
  Model m;
  m.config.sde = sde;
  m.data_shape = {mixture.dim()};
  m.device = device;
  m.sde = make_sde(sde);
  m.dtype = at::kDouble;
  m.mixture = std::make_shared<const GaussianMixture>(mixture);
  return m;
}

at::Tensor sample_model(const Model& model, Sampler& sampler, int64_t n, uint64_t seed, const ProgressFn& progress) {
  const c10::Device device = model.device;
  DrawConfig draw;
  draw.n = n;
  auto score = model.score_model();
  at::Tensor x = draw_samples(sampler, *score, *model.sde, model.data_shape, draw, at::Tensor(),
                              make_generator(device, seed), at::TensorOptions().device(device).dtype(model.dtype), progress);
  return model.scaling.to_data(x).cpu();
}

at::Tensor sample_model(const Model& model, int64_t n, int64_t steps, uint64_t seed, const ProgressFn& progress) {
  EulerMaruyama sampler({steps, true});
  return sample_model(model, sampler, n, seed, progress);
}

Trajectories model_trajectories(const Model& model, Sampler& sampler, int64_t k, uint64_t seed) {
  auto score = model.score_model();
  Trajectories paths = record_trajectories(sampler, *score, *model.sde, model.data_shape, k, at::Tensor(),
                                           make_generator(model.device, seed),
                                           at::TensorOptions().device(model.device).dtype(model.dtype));
  const auto shape = paths.states.sizes().vec();
  std::vector<int64_t> rows{shape[0] * shape[1]};
  rows.insert(rows.end(), shape.begin() + 2, shape.end());
  paths.states = model.scaling.to_data(paths.states.reshape(rows).to(model.dtype)).to(at::kDouble).reshape(shape);
  return paths;
}

LikelihoodResult model_log_likelihood(const Model& model, const at::Tensor& x, const LikelihoodConfig& config,
                                      uint64_t seed, const ProgressFn& progress) {
  const std::vector<int64_t> shape(x.sizes().begin() + 1, x.sizes().end());
  if (shape != model.data_shape) {
    std::string want, got;
    for (auto v : model.data_shape) want += (want.empty() ? "" : ", ") + std::to_string(v);
    for (auto v : shape) got += (got.empty() ? "" : ", ") + std::to_string(v);
    throw InvalidArgument("the data's rows have shape [" + got + "] but the model was trained on [" + want + "]");
  }
  const c10::Device device = model.device;
  auto score = model.score_model();
  LikelihoodResult r = log_likelihood(*score, *model.sde, model.scaling.to_model(x.to(model.dtype)).to(device, model.dtype), at::Tensor(), config,
                                      make_generator(device, seed), progress);
  r.log_prob = r.log_prob.cpu() + model.scaling.log_abs_det_jacobian();
  r.std_error = r.std_error.cpu();
  return r;
}

}  // namespace sbgm
