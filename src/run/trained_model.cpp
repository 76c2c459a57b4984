#include "sbgm/run/trained_model.hpp"

#include <ATen/ATen.h>
#include <filesystem>
#include <fstream>

#include "checkpoint_layout.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace checkpoint_layout {
namespace {

constexpr const char* kFormat = "sbgm checkpoint 2";
constexpr int64_t kMaxRank = 8;
constexpr int64_t kMaxSize = int64_t{1} << 40;

bool is_directory(const std::string& p) {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec);
}

bool exists(const std::string& p) {
  std::error_code ec;
  return std::filesystem::exists(p, ec);
}

IOError legacy(const std::string& path) {
  return IOError(path + ": a checkpoint of sbgm before format 2, which cannot be read safely; if you trust the file, "
                        "convert it once with `sbgm upgrade " + path + "`");
}

Scaling take_scaling(const File& file, const std::string& prefix, const std::vector<int64_t>& shape) {
  if (!has(file, prefix + ".shift") && !has(file, prefix + ".scale")) return Scaling::identity();
  const int64_t rank = static_cast<int64_t>(shape.size());
  Scaling s{take(file, prefix + ".shift", Kind::Floating, rank), take(file, prefix + ".scale", Kind::Floating, rank)};
  if (s.shift.sizes().vec() != shape || s.scale.sizes().vec() != shape)
    throw IOError(file.path + ": " + prefix + " is not shaped like one sample");
  if (!at::isfinite(s.shift).all().item<bool>() || !(s.scale > 0).all().item<bool>() ||
      !at::isfinite(s.scale).all().item<bool>())
    throw IOError(file.path + ": " + prefix + " is not finite or not positive");
  return s;
}

}  // namespace

File read(const std::string& run_dir_or_file) {
  File file;
  file.path = checkpoint_path(run_dir_or_file);
  if (!exists(file.path)) {
    const std::string old = run_dir_or_file + "/checkpoint.pt";
    if (is_directory(run_dir_or_file) && exists(old)) throw legacy(old);
    throw IOError(file.path + ": no checkpoint there");
  }
  // The first bytes tell an old LibTorch archive (a zip) and other files apart.
  std::ifstream in(file.path, std::ios::binary);
  if (!in) throw IOError(file.path + ": cannot open file");
  std::string head(9, '\0');
  head.resize(static_cast<size_t>(in.read(head.data(), 9).gcount()));
  if (head.rfind("PK\x03\x04", 0) == 0) throw legacy(file.path);
  if (!looks_like_tensor_file(head)) throw IOError(file.path + ": not an sbgm checkpoint");
  file.contents = read_tensor_file(file.path);
  const auto format = file.contents.metadata.find("format");
  if (format == file.contents.metadata.end() || format->second.rfind("sbgm checkpoint ", 0) != 0)
    throw IOError(file.path + ": not an sbgm checkpoint");
  if (format->second != kFormat)
    throw IOError(file.path + ": " + format->second + " is a format this build does not read (it reads " + kFormat + ")");
  return file;
}

bool has(const File& file, const std::string& name) { return file.contents.tensors.count(name) > 0; }

at::Tensor take(const File& file, const std::string& name, Kind kind, int64_t rank) {
  const auto found = file.contents.tensors.find(name);
  if (found == file.contents.tensors.end()) throw IOError(file.path + ": the checkpoint has no '" + name + "'");
  const at::Tensor& t = found->second;
  const at::ScalarType type = t.scalar_type();
  const bool right_type = kind == Kind::Floating ? type == at::kFloat || type == at::kDouble
                          : kind == Kind::Integer ? type == at::kLong
                                                  : type == at::kByte;
  if (!right_type || t.dim() != rank)
    throw IOError(file.path + ": '" + name + "' has the wrong type or rank (" + c10::toString(type) + ", rank " +
                  std::to_string(t.dim()) + ")");
  return t;
}

int64_t take_count(const File& file, const std::string& name) {
  const int64_t v = take(file, name, Kind::Integer, 0).item<int64_t>();
  if (v < 0 || v > kMaxSize) throw IOError(file.path + ": '" + name + "' is out of range (" + std::to_string(v) + ")");
  return v;
}

std::vector<at::Tensor> take_buffers(const File& file, const std::string& prefix) {
  std::vector<at::Tensor> buffers;
  while (has(file, prefix + std::to_string(buffers.size())))
    buffers.push_back(file.contents.tensors.at(prefix + std::to_string(buffers.size())));
  return buffers;
}

ModelSpec read_spec(const File& file) {
  ModelSpec spec;
  const auto config = file.contents.metadata.find("config");
  if (config == file.contents.metadata.end()) throw IOError(file.path + ": the checkpoint has no config");
  try {
    // A key the file does not name has the meaning it had before the key existed.
    spec.config = config_for_earlier_files();
    spec.config.merge_toml(config->second, file.path + " (config)");
    spec.config.sde.validate();
    spec.config.model.validate();
  } catch (const InvalidArgument& e) {
    throw IOError(file.path + ": the checkpoint's config is invalid: " + e.what());
  }
  const at::Tensor shape = take(file, "data_shape", Kind::Integer, 1);
  if (shape.numel() < 1 || shape.numel() > kMaxRank) throw IOError(file.path + ": 'data_shape' has a bad rank");
  int64_t features = 1;
  for (int64_t i = 0; i < shape.numel(); ++i) {
    const int64_t size = shape[i].item<int64_t>();
    if (size < 1 || size > kMaxSize / features) throw IOError(file.path + ": 'data_shape' holds a bad size");
    features *= size;
    spec.data_shape.push_back(size);
  }
  spec.cond_dim = take_count(file, "cond_dim");
  if (spec.config.model.kind == NetKind::TorchScript) {
    const at::Tensor script = take(file, "model.script", Kind::Byte, 1).contiguous();
    spec.config.model.script =
        std::make_shared<const std::string>(static_cast<const char*>(script.data_ptr()), script.numel());
  }
  spec.scaling = take_scaling(file, "scaling", spec.data_shape);
  spec.cond_scaling = take_scaling(file, "cond_scaling", {spec.cond_dim});
  if (has(file, "data_mean")) {
    spec.data_mean = take(file, "data_mean", Kind::Floating, 1);
    spec.data_cov = take(file, "data_cov", Kind::Floating, 2);
    if (spec.data_mean.size(0) != features || spec.data_cov.size(0) != features || spec.data_cov.size(1) != features)
      throw IOError(file.path + ": 'data_mean' or 'data_cov' does not match the data's shape");
  }
  return spec;
}

void write_spec(TensorFile& out, const ModelSpec& spec) {
  out.metadata["format"] = kFormat;
  out.metadata["config"] = spec.config.to_toml();
  out.tensors["data_shape"] = at::tensor(spec.data_shape, at::kLong);
  out.tensors["cond_dim"] = at::scalar_tensor(spec.cond_dim, at::kLong);
  if (spec.config.model.kind == NetKind::TorchScript) {
    const std::string& script = *spec.config.model.script;
    out.tensors["model.script"] =
        at::from_blob(const_cast<char*>(script.data()), {static_cast<int64_t>(script.size())}, at::kByte).clone();
  }
  const auto scaling = [&](const std::string& prefix, const Scaling& s) {
    if (s.is_identity()) return;
    out.tensors[prefix + ".shift"] = s.shift;
    out.tensors[prefix + ".scale"] = s.scale;
  };
  scaling("scaling", spec.scaling);
  scaling("cond_scaling", spec.cond_scaling);
  if (spec.data_mean.defined()) {
    out.tensors["data_mean"] = spec.data_mean;
    out.tensors["data_cov"] = spec.data_cov;
  }
}

void write_buffers(TensorFile& out, const std::string& prefix, const std::vector<at::Tensor>& buffers) {
  for (size_t i = 0; i < buffers.size(); ++i) out.tensors[prefix + std::to_string(i)] = buffers[i];
}

}  // namespace checkpoint_layout

std::string checkpoint_path(const std::string& p) {
  return checkpoint_layout::is_directory(p) ? p + "/" + kCheckpointFile : p;
}

TrainedModel load_trained_model(const std::string& run_dir_or_file, Weights weights) {
  using namespace checkpoint_layout;
  const File file = read(run_dir_or_file);
  TrainedModel m;
  static_cast<ModelSpec&>(m) = read_spec(file);
  m.step = take_count(file, "step");
  if (weights == Weights::Averaged) {
    m.weights = take(file, "weights", Kind::Floating, 1);
    m.buffers = take_buffers(file, "buffers.");
  } else {
    if (!has(file, "train.params")) throw IOError(file.path + ": the checkpoint holds no raw weights (only a model)");
    m.weights = take(file, "train.params", Kind::Floating, 1);
    m.buffers = take_buffers(file, "train.buffers.");
  }
  return m;
}

}  // namespace sbgm
