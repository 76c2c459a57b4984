#pragma once
// What a score network is made of, as plain data: built by the CLI from the config file and
// stored in every checkpoint, so a model can be rebuilt from the file alone.

#include <cstdint>
#include <string>
#include <vector>

namespace sbgm {

enum class NetKind { MLP, ResNet };
enum class Activation { ReLU, SiLU, GELU, Tanh };
enum class TimeEmbeddingKind {
  Tutorial,    // [t - 1/2, cos 2 pi t, sin 2 pi t, -cos 4 pi t] (the tutorial's features)
  Fourier,     // Gaussian random Fourier features [sin 2 pi w t, cos 2 pi w t], w ~ N(0, scale^2)
  Sinusoidal,  // transformer-style sin/cos of t at geometric frequencies
};
// What the network's output means; one function (NetworkScore) turns it into a score.
enum class Parameterization {
  Score,  // s(x, t) itself
  Noise,  // the noise eps in x_t = m x0 + sigma eps: score = -eps / sigma
};

std::string to_string(NetKind v);
std::string to_string(Activation v);
std::string to_string(TimeEmbeddingKind v);
std::string to_string(Parameterization v);
NetKind net_kind_from_string(const std::string& s);
Activation activation_from_string(const std::string& s);
TimeEmbeddingKind time_embedding_from_string(const std::string& s);
Parameterization parameterization_from_string(const std::string& s);

struct NetConfig {
  NetKind kind = NetKind::MLP;
  int64_t width = 256;
  int64_t depth = 4;  // hidden layers (MLP) or residual blocks (ResNet)
  Activation activation = Activation::ReLU;
  TimeEmbeddingKind time_embedding = TimeEmbeddingKind::Tutorial;
  int64_t embedding_dim = 32;     // Fourier / Sinusoidal: number of features (even)
  double fourier_scale = 16.0;    // Fourier: std of the random frequencies
  Parameterization output = Parameterization::Noise;

  void validate() const;
};

}  // namespace sbgm
