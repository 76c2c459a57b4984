#include "sbgm/nets/score_net.hpp"

#include <numeric>

#include "sbgm/nets/mlp.hpp"
#include "sbgm/nets/patch_net.hpp"
#include "sbgm/nets/resnet.hpp"
#include "sbgm/nets/token_net.hpp"
#include "sbgm/nets/torchscript_net.hpp"
#include "sbgm/nets/unet.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

at::Tensor ScoreNet::forward_with_divergence(const at::Tensor&, const at::Tensor&, const at::Tensor&, at::Tensor&) {
  throw InvalidArgument("this network has no closed-form divergence; use autograd");
}
bool ScoreNet::prefers_own_divergence(const at::Tensor& x) const {
  constexpr int64_t kForwardTangentsFromFeatures = 8;
  return supports_divergence() && x.numel() / x.size(0) >= kForwardTangentsFromFeatures;
}
at::Tensor ScoreNet::forward_for_backward(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  throw InvalidArgument("this network has no manual backward; train it through autograd");
}
void ScoreNet::backward_into_grads(const at::Tensor&) {
  throw InvalidArgument("this network has no manual backward; train it through autograd");
}
void ScoreNet::zero_output(int64_t dim) {
  const auto params = parameters();
  if (params.empty()) return;
  if (params.size() < 2 || params.back().sizes() != at::IntArrayRef{dim} || params[params.size() - 2].dim() != 2 ||
      params[params.size() - 2].size(0) != dim)
    throw InvalidArgument("model.baseline = gaussian needs a vector network (mlp, resnet)");
  at::NoGradGuard no_grad;
  params.back().zero_();
  params[params.size() - 2].zero_();
}

void ScoreNet::forget_kept_state() {
  forget_own_kept_state();
  for (const auto& module : modules(/*include_self=*/false))
    if (auto* net = dynamic_cast<ScoreNet*>(module.get())) net->forget_own_kept_state();
}

void ScoreNet::draw_dropout_from(const at::Generator& gen, int64_t first_row, int64_t total_rows) {
  dropout_draws_ = {gen, first_row, total_rows};
}

at::Tensor ScoreNet::dropout(const at::Tensor& h, double p, at::Tensor* mask_out) const {
  if (p == 0 || !is_training()) return h;
  const int64_t rows = h.size(0);
  const DropoutDraws& d = dropout_draws_;
  at::Tensor mask;
  if (d.gen.defined() && d.first_row + rows <= d.total_rows) {
    std::vector<int64_t> shape = h.sizes().vec();
    shape[0] = d.total_rows;
    mask = at::empty(shape, h.options()).bernoulli_(1 - p, d.gen).narrow(0, d.first_row, rows);
  } else {
    mask = at::empty_like(h).bernoulli_(1 - p, d.gen.defined() ? c10::optional<at::Generator>(d.gen) : c10::nullopt);
  }
  mask.div_(1 - p);
  if (mask_out) *mask_out = mask;
  return h * mask;
}

std::shared_ptr<ScoreNet> make_score_net(const NetConfig& config, const std::vector<int64_t>& data_shape,
                                         int64_t cond_dim) {
  config.validate();
  if (data_shape.empty()) throw InvalidArgument("data must have at least one feature dimension");
  const int64_t data_dim = std::accumulate(data_shape.begin(), data_shape.end(), int64_t{1}, std::multiplies<>());
  if (data_dim < 1) throw InvalidArgument("data has no features");
  switch (config.kind) {
    case NetKind::MLP: return std::make_shared<MLPScoreNet>(config, data_dim, cond_dim);
    case NetKind::ResNet: return std::make_shared<ResNetScoreNet>(config, data_dim, cond_dim);
    case NetKind::Transformer: return std::make_shared<TokenScoreNet>(config, data_dim, cond_dim);
    case NetKind::UNet: return std::make_shared<UNetScoreNet>(config, data_shape, cond_dim);
    case NetKind::DiT:
    case NetKind::Mixer: return std::make_shared<PatchScoreNet>(config, data_shape, cond_dim);
    case NetKind::TorchScript:
      if (!config.script) throw InvalidArgument("model.type = torchscript: the module (model.file) was not read");
      return std::make_shared<TorchScriptNet>(*config.script, data_shape, cond_dim);
  }
  throw InvalidArgument("unknown model kind");
}

}  // namespace sbgm
