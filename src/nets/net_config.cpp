#include "sbgm/nets/net_config.hpp"

#include "sbgm/util/enum_names.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<NetKind, 5> kNetNames{{{NetKind::MLP, "mlp"},
                                           {NetKind::ResNet, "resnet"},
                                           {NetKind::UNet, "unet"},
                                           {NetKind::DiT, "dit"},
                                           {NetKind::Mixer, "mixer"}}};
constexpr EnumNames<Activation, 4> kActivationNames{
    {{Activation::ReLU, "relu"}, {Activation::SiLU, "silu"}, {Activation::GELU, "gelu"}, {Activation::Tanh, "tanh"}}};
constexpr EnumNames<TimeEmbeddingKind, 4> kEmbeddingNames{{{TimeEmbeddingKind::Tutorial, "tutorial"},
                                                           {TimeEmbeddingKind::Fourier, "fourier"},
                                                           {TimeEmbeddingKind::Sinusoidal, "sinusoidal"},
                                                           {TimeEmbeddingKind::LogTime, "log-time"}}};
constexpr EnumNames<Parameterization, 2> kOutputNames{
    {{Parameterization::Score, "score"}, {Parameterization::Noise, "noise"}}};
constexpr EnumNames<Baseline, 3> kBaselineNames{
    {{Baseline::Auto, "auto"}, {Baseline::None, "none"}, {Baseline::Gaussian, "gaussian"}}};
constexpr EnumNames<SummaryKind, 3> kSummaryNames{
    {{SummaryKind::None, "none"}, {SummaryKind::MLP, "mlp"}, {SummaryKind::CNN, "cnn"}}};
}  // namespace

std::string to_string(SummaryKind v) { return enum_to_string(v, kSummaryNames); }
SummaryKind summary_kind_from_string(const std::string& s) { return enum_from_string(s, kSummaryNames, "summary"); }
std::string to_string(Baseline v) { return enum_to_string(v, kBaselineNames); }
Baseline baseline_from_string(const std::string& s) { return enum_from_string(s, kBaselineNames, "baseline"); }

std::string to_string(NetKind v) { return enum_to_string(v, kNetNames); }
std::string to_string(Activation v) { return enum_to_string(v, kActivationNames); }
std::string to_string(TimeEmbeddingKind v) { return enum_to_string(v, kEmbeddingNames); }
std::string to_string(Parameterization v) { return enum_to_string(v, kOutputNames); }
NetKind net_kind_from_string(const std::string& s) { return enum_from_string(s, kNetNames, "model"); }
Activation activation_from_string(const std::string& s) { return enum_from_string(s, kActivationNames, "activation"); }
TimeEmbeddingKind time_embedding_from_string(const std::string& s) {
  return enum_from_string(s, kEmbeddingNames, "time embedding");
}
Parameterization parameterization_from_string(const std::string& s) {
  return enum_from_string(s, kOutputNames, "model output");
}

bool is_image_net(NetKind kind) { return kind == NetKind::UNet || kind == NetKind::DiT || kind == NetKind::Mixer; }

void NetConfig::validate() const {
  if (width < 1) throw InvalidArgument("model.width must be at least 1");
  if (depth < 1) throw InvalidArgument("model.depth must be at least 1");
  if (time_embedding != TimeEmbeddingKind::Tutorial && (embedding_dim < 2 || embedding_dim % 2 != 0))
    throw InvalidArgument("model.embedding_dim must be a positive even number");
  if (!(fourier_scale > 0)) throw InvalidArgument("model.fourier_scale must be positive");
  if (cond_channels < 0) throw InvalidArgument("model.cond_channels must not be negative");
  if (cond_channels > 0 && !is_image_net(kind))
    throw InvalidArgument("model.cond_channels (image conditions) needs an image network: unet, dit or mixer");
  if (summary_dim < 1) throw InvalidArgument("model.summary_dim must be at least 1");
  if (summary_channels < 1) throw InvalidArgument("model.summary_channels must be at least 1");
  if (summary != SummaryKind::None && cond_channels > 0)
    throw InvalidArgument("model.summary takes vector conditions, not image conditions (model.cond_channels)");
  if (!is_image_net(kind)) return;
  if (baseline == Baseline::Gaussian) throw InvalidArgument("model.baseline = gaussian is for vector networks (mlp, resnet)");
  if (kind == NetKind::UNet) {
    if (channel_mult.empty()) throw InvalidArgument("model.channel_mult must list at least one multiplier");
    for (int64_t m : channel_mult)
      if (m < 1) throw InvalidArgument("model.channel_mult: multipliers must be at least 1");
    for (int64_t r : attention_res)
      if (r < 1) throw InvalidArgument("model.attention_res: resolutions must be at least 1");
  }
  if (!(dropout >= 0 && dropout < 1)) throw InvalidArgument("model.dropout must be in [0, 1)");
  if (heads < 1) throw InvalidArgument("model.heads must be at least 1");
  if (kind != NetKind::Mixer && width % heads != 0)
    throw InvalidArgument("model.width (" + std::to_string(width) + ") must be a multiple of model.heads (" +
                          std::to_string(heads) + ")");
  if (patch_size < 1) throw InvalidArgument("model.patch_size must be at least 1");
  if (!(mlp_ratio > 0)) throw InvalidArgument("model.mlp_ratio must be positive");
  if (token_mlp_dim < 0) throw InvalidArgument("model.token_mlp_dim must not be negative");
}

void NetConfig::validate_image_shape(const std::vector<int64_t>& shape) const {
  if (!is_image_net(kind)) return;
  const std::string name = to_string(kind);
  if (shape.size() != 3)
    throw InvalidArgument("model " + name + " takes images [C, H, W] (or [H, W]); the data has " +
                          std::to_string(shape.size()) + " dimensions per sample");
  const int64_t h = shape[1], w = shape[2];
  if (kind == NetKind::UNet) {
    const int64_t factor = int64_t{1} << (channel_mult.size() - 1);
    if (h % factor != 0 || w % factor != 0)
      throw InvalidArgument("model unet: " + std::to_string(channel_mult.size()) + " resolutions halve the image " +
                            std::to_string(channel_mult.size() - 1) + " times, so its sides (" + std::to_string(h) +
                            "x" + std::to_string(w) + ") must be multiples of " + std::to_string(factor));
  } else if (h % patch_size != 0 || w % patch_size != 0) {
    throw InvalidArgument("model " + name + ": the image sides (" + std::to_string(h) + "x" + std::to_string(w) +
                          ") must be multiples of model.patch_size (" + std::to_string(patch_size) + ")");
  }
}

}  // namespace sbgm
