#pragma once
// What a score network is made of, as plain data: built by the CLI from the config file and
// stored in every checkpoint, so a model can be rebuilt from the file alone.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sbgm {

// MLP, ResNet and Transformer take samples of any shape, flattened (the transformer one token per
// feature); UNet, DiT and Mixer take images [B, C, H, W] (image networks).
enum class NetKind { MLP, ResNet, UNet, DiT, Mixer, TorchScript, Transformer };
bool is_image_net(NetKind kind);
enum class Activation { ReLU, SiLU, GELU, Tanh };
enum class TimeEmbeddingKind {
  Tutorial,    // [t - 1/2, cos 2 pi t, sin 2 pi t, -cos 4 pi t] (the tutorial's features)
  Fourier,     // Gaussian random Fourier features [sin 2 pi w t, cos 2 pi w t], w ~ N(0, scale^2)
  Sinusoidal,  // transformer-style sin/cos of t at geometric frequencies
  LogTime,     // ln t and sin/cos of ln t at geometric frequencies: resolves small noise levels
};
// What the network's output means; one class (NetworkScore) turns it into a score and a
// velocity. Score and Noise are trained by denoising score matching, Velocity by flow matching.
enum class Parameterization {
  Score,     // s(x, t) itself
  Noise,     // the noise eps in x_t = m x0 + sigma eps: score = -eps / sigma
  Velocity,  // E[m' x0 + sigma' eps | x_t], the probability-flow ODE's drift (flow matching)
};
// A network trained by flow matching (model.objective = flow) predicts the velocity; one trained
// by score matching (model.objective = score) the score or the noise.
enum class Objective { Score, Flow };
inline Objective objective_of(Parameterization output) {
  return output == Parameterization::Velocity ? Objective::Flow : Objective::Score;
}
std::string to_string(Objective v);
Objective objective_from_string(const std::string& s);

// What the network's output is added to (nets/gaussian_baseline.hpp): nothing, or the diffused
// score of a linear-Gaussian fit of the training pairs. Auto is settled by the run.
enum class Baseline { Auto, None, Gaussian };
// How x_t reaches the network: as it is, or scaled to unit variance (nets/scaled_input.hpp).
// Auto is settled by the run; a model read from a file that names none has None (it was trained
// before the key existed).
enum class InputScaling { Auto, None, Unit };
std::string to_string(InputScaling v);
InputScaling input_scaling_from_string(const std::string& s);
// A learnt summary of the condition in front of the network (nets/summary_net.hpp).
enum class SummaryKind { None, MLP, CNN, Set };
std::string to_string(SummaryKind v);
SummaryKind summary_kind_from_string(const std::string& s);
std::string to_string(NetKind v);
std::string to_string(Baseline v);
Baseline baseline_from_string(const std::string& s);
std::string to_string(Activation v);
std::string to_string(TimeEmbeddingKind v);
std::string to_string(Parameterization v);
NetKind net_kind_from_string(const std::string& s);
Activation activation_from_string(const std::string& s);
TimeEmbeddingKind time_embedding_from_string(const std::string& s);
Parameterization parameterization_from_string(const std::string& s);

struct NetConfig {
  NetKind kind = NetKind::MLP;
  // width: hidden width (MLP, ResNet), base channels (UNet), token width (DiT, Mixer, Transformer).
  // depth: hidden layers (MLP), residual blocks (ResNet), residual blocks per resolution (UNet),
  // transformer or mixer blocks (DiT, Mixer, Transformer).
  int64_t width = 256;
  int64_t depth = 4;
  Activation activation = Activation::ReLU;
  TimeEmbeddingKind time_embedding = TimeEmbeddingKind::Tutorial;
  int64_t embedding_dim = 32;     // Fourier / Sinusoidal: number of features (even)
  double fourier_scale = 16.0;    // Fourier: std of the random frequencies
  Parameterization output = Parameterization::Noise;
  Baseline baseline = Baseline::Auto;  // vector networks only
  InputScaling input_scaling = InputScaling::Auto;
  int64_t ensemble = 1;  // networks trained side by side and averaged (nets/ensemble.hpp)
  SummaryKind summary = SummaryKind::None;  // conditions only
  int64_t summary_dim = 32;                 // features of the summary
  int64_t summary_channels = 1;             // cnn: the condition is this many series, one after another

  // Image networks. Their time features (the tutorial's four are replaced by sinusoidal ones of
  // `width` features) pass through a two-layer MLP to 4 * width, and a condition y is embedded
  // and added there.
  std::vector<int64_t> channel_mult{1, 2, 2};  // UNet: channels width * m at each resolution
  std::vector<int64_t> attention_res{16};      // UNet: feature-map sides with self-attention
  double dropout = 0.0;                        // MLP hidden layers, UNet residual blocks, DiT, Mixer, Transformer MLPs
  int64_t heads = 4;                           // UNet, DiT and Transformer attention heads
  int64_t patch_size = 2;                      // DiT and Mixer: side of a square patch
  double mlp_ratio = 4.0;                      // DiT, Mixer, Transformer: channel-MLP width / width
  int64_t token_mlp_dim = 0;                   // Mixer: token-MLP hidden size (0: width / 2)
  // Image networks: 0 = the condition y is a vector, embedded with the time; C > 0 = y is an
  // image of C channels at the data's height and width, taken as extra input channels
  // (concatenated to x in the UNet, patchified with x in DiT and Mixer).
  int64_t cond_channels = 0;

  // model.type = torchscript: the file the module was read from (empty when it came from
  // Python), and the module itself (its bytes; the checkpoint keeps them, so a trained model
  // does not need the file). Not a config key: read_torchscript_file or the caller fills it.
  std::string file;
  std::shared_ptr<const std::string> script;

  void validate() const;
  // Checks that an image network can take samples of this shape ([C, H, W]); throws
  // InvalidArgument naming the mismatch.
  void validate_image_shape(const std::vector<int64_t>& shape) const;
};

}  // namespace sbgm
