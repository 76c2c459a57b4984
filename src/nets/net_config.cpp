#include "sbgm/nets/net_config.hpp"

#include "sbgm/util/enum_names.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<NetKind, 2> kNetNames{{{NetKind::MLP, "mlp"}, {NetKind::ResNet, "resnet"}}};
constexpr EnumNames<Activation, 4> kActivationNames{
    {{Activation::ReLU, "relu"}, {Activation::SiLU, "silu"}, {Activation::GELU, "gelu"}, {Activation::Tanh, "tanh"}}};
constexpr EnumNames<TimeEmbeddingKind, 3> kEmbeddingNames{{{TimeEmbeddingKind::Tutorial, "tutorial"},
                                                           {TimeEmbeddingKind::Fourier, "fourier"},
                                                           {TimeEmbeddingKind::Sinusoidal, "sinusoidal"}}};
constexpr EnumNames<Parameterization, 2> kOutputNames{
    {{Parameterization::Score, "score"}, {Parameterization::Noise, "noise"}}};
}  // namespace

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

void NetConfig::validate() const {
  if (width < 1) throw InvalidArgument("model.width must be at least 1");
  if (depth < 1) throw InvalidArgument("model.depth must be at least 1");
  if (time_embedding != TimeEmbeddingKind::Tutorial && (embedding_dim < 2 || embedding_dim % 2 != 0))
    throw InvalidArgument("model.embedding_dim must be a positive even number");
  if (!(fourier_scale > 0)) throw InvalidArgument("model.fourier_scale must be positive");
}

}  // namespace sbgm
