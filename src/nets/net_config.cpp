#include "sbgm/nets/net_config.hpp"

#include <cmath>

#include "sbgm/util/enum_names.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<NetKind, 7> kNetNames{{{NetKind::MLP, "mlp"},
                                           {NetKind::ResNet, "resnet"},
                                           {NetKind::UNet, "unet"},
                                           {NetKind::DiT, "dit"},
                                           {NetKind::Mixer, "mixer"},
                                           {NetKind::TorchScript, "torchscript"},
                                           {NetKind::Transformer, "transformer"}}};
constexpr EnumNames<Activation, 4> kActivationNames{
    {{Activation::ReLU, "relu"}, {Activation::SiLU, "silu"}, {Activation::GELU, "gelu"}, {Activation::Tanh, "tanh"}}};
constexpr EnumNames<TimeEmbeddingKind, 4> kEmbeddingNames{{{TimeEmbeddingKind::Tutorial, "tutorial"},
                                                           {TimeEmbeddingKind::Fourier, "fourier"},
                                                           {TimeEmbeddingKind::Sinusoidal, "sinusoidal"},
                                                           {TimeEmbeddingKind::LogTime, "log-time"}}};
constexpr EnumNames<Parameterization, 3> kOutputNames{
    {{Parameterization::Score, "score"}, {Parameterization::Noise, "noise"}, {Parameterization::Velocity, "velocity"}}};
constexpr EnumNames<Objective, 2> kObjectiveNames{{{Objective::Score, "score"}, {Objective::Flow, "flow"}}};
constexpr EnumNames<Baseline, 3> kBaselineNames{
    {{Baseline::Auto, "auto"}, {Baseline::None, "none"}, {Baseline::Gaussian, "gaussian"}}};
constexpr EnumNames<InputScaling, 3> kInputScalingNames{
    {{InputScaling::Auto, "auto"}, {InputScaling::None, "none"}, {InputScaling::Unit, "unit"}}};
constexpr EnumNames<SummaryKind, 4> kSummaryNames{
    {{SummaryKind::None, "none"}, {SummaryKind::MLP, "mlp"}, {SummaryKind::CNN, "cnn"}, {SummaryKind::Set, "set"}}};
}  // namespace

std::string to_string(SummaryKind v) { return enum_to_string(v, kSummaryNames); }
SummaryKind summary_kind_from_string(const std::string& s) { return enum_from_string(s, kSummaryNames, "summary"); }
std::string to_string(Baseline v) { return enum_to_string(v, kBaselineNames); }
Baseline baseline_from_string(const std::string& s) { return enum_from_string(s, kBaselineNames, "baseline"); }
std::string to_string(InputScaling v) { return enum_to_string(v, kInputScalingNames); }
InputScaling input_scaling_from_string(const std::string& s) {
  return enum_from_string(s, kInputScalingNames, "input scaling");
}

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

std::string to_string(Objective v) { return enum_to_string(v, kObjectiveNames); }
Objective objective_from_string(const std::string& s) { return enum_from_string(s, kObjectiveNames, "objective"); }

bool is_image_net(NetKind kind) { return kind == NetKind::UNet || kind == NetKind::DiT || kind == NetKind::Mixer; }

namespace {

void in_range(const char* key, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi)
    throw InvalidArgument(std::string(key) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                          "], got " + std::to_string(value));
}

}  // namespace

void NetConfig::validate() const {
  // Upper bounds far above any useful network, so that a mistyped or damaged config is refused
  // before it asks for terabytes.
  in_range("model.width", width, 1, 65536);
  in_range("model.depth", depth, 1, 256);
  if (time_embedding != TimeEmbeddingKind::Tutorial && (embedding_dim < 2 || embedding_dim % 2 != 0))
    throw InvalidArgument("model.embedding_dim must be a positive even number");
  in_range("model.embedding_dim", embedding_dim, 0, 65536);
  if (!(fourier_scale > 0) || !std::isfinite(fourier_scale)) throw InvalidArgument("model.fourier_scale must be positive");
  in_range("model.cond_channels", cond_channels, 0, 4096);
  if (cond_channels > 0 && !is_image_net(kind))
    throw InvalidArgument("model.cond_channels (image conditions) needs an image network: unet, dit or mixer");
  in_range("model.ensemble", ensemble, 1, 64);
  in_range("model.summary_dim", summary_dim, 1, 65536);
  in_range("model.summary_channels", summary_channels, 1, 4096);
  if (summary != SummaryKind::None && cond_channels > 0)
    throw InvalidArgument("model.summary takes vector conditions, not image conditions (model.cond_channels)");
  if (!(dropout >= 0 && dropout < 1)) throw InvalidArgument("model.dropout must be in [0, 1)");
  if (kind == NetKind::TorchScript) {
    if (ensemble > 1) throw InvalidArgument("model.ensemble > 1 needs a built-in network (a loaded module's members would all start alike)");
    if (baseline == Baseline::Gaussian)
      throw InvalidArgument("model.baseline = gaussian is for the built-in vector networks (mlp, resnet, transformer)");
  }
  if (is_image_net(kind) && baseline == Baseline::Gaussian)
    throw InvalidArgument("model.baseline = gaussian is for vector networks (mlp, resnet, transformer)");
  if (!is_image_net(kind) && kind != NetKind::Transformer) return;
  if (kind == NetKind::UNet) {
    if (channel_mult.empty()) throw InvalidArgument("model.channel_mult must list at least one multiplier");
    if (channel_mult.size() > 12) throw InvalidArgument("model.channel_mult lists more than 12 resolutions");
    for (int64_t m : channel_mult) in_range("model.channel_mult", m, 1, 64);
    for (int64_t r : attention_res) in_range("model.attention_res", r, 1, 65536);
  }
  in_range("model.heads", heads, 1, 1024);
  if (kind != NetKind::Mixer && width % heads != 0)
    throw InvalidArgument("model.width (" + std::to_string(width) + ") must be a multiple of model.heads (" +
                          std::to_string(heads) + ")");
  in_range("model.patch_size", patch_size, 1, 1024);
  if (!(mlp_ratio > 0 && mlp_ratio <= 64)) throw InvalidArgument("model.mlp_ratio must be in (0, 64]");
  in_range("model.token_mlp_dim", token_mlp_dim, 0, 65536);
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
