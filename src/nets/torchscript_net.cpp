#include "sbgm/nets/torchscript_net.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/jit/serialization/import.h>

#include <fstream>
#include <sstream>

#include "sbgm/util/error.hpp"
#include "sbgm/util/shape_text.hpp"

namespace sbgm {

namespace {

// The first line of an exception's text (TorchScript's errors carry the script's source and a
// stack after it).
std::string first_line(const std::exception& e) {
  const std::string what = e.what();
  return what.substr(0, what.find('\n'));
}

// A nn::Module name may not hold '.', which TorchScript uses between a submodule and its member.
std::string flat_name(std::string name) {
  for (char& c : name)
    if (c == '.') c = '/';
  return name;
}

}  // namespace

TorchScriptNet::TorchScriptNet(const std::string& script, const std::vector<int64_t>& data_shape, int64_t cond_dim)
    : cond_dim_(cond_dim) {
  try {
    std::istringstream in(script);
    module_ = torch::jit::load(in, at::kCPU);
  } catch (const std::exception& e) {
    throw InvalidArgument("model.file is not a TorchScript module saved by torch.jit.save: " + first_line(e));
  }
  if (!module_.find_method("forward"))
    throw InvalidArgument("the TorchScript module (model.file) has no forward(x, t, y) method");
  // The module's tensors, registered as this module's: the same tensors, so what the trainer or a
  // move to another device or dtype does to them, the module sees.
  for (const auto& p : module_.named_parameters(/*recurse=*/true)) register_parameter(flat_name(p.name), p.value);
  for (const auto& b : module_.named_buffers(/*recurse=*/true)) register_buffer(flat_name(b.name), b.value);
  ScoreNet::to(at::kFloat);

  std::vector<int64_t> shape{2};
  shape.insert(shape.end(), data_shape.begin(), data_shape.end());
  const at::Tensor x = at::zeros(shape), t = at::full({2}, 0.5);
  const at::Tensor y = cond_dim > 0 ? at::zeros({2, cond_dim}) : at::Tensor();
  at::Tensor out;
  {
    at::NoGradGuard no_grad;
    const bool was_training = is_training();
    train(false);
    try {
      out = call(x, t, y);
    } catch (const InvalidArgument&) {
      throw;
    } catch (const std::exception& e) {
      throw InvalidArgument("the TorchScript module (model.file) fails on forward(x, t, y) for x " + shape_text(x.sizes()) +
                            ", t [2]" + (y.defined() ? ", y " + shape_text(y.sizes()) : ", y None") + ": " + first_line(e));
    }
    train(was_training);
  }
  if (out.sizes() != x.sizes())
    throw InvalidArgument("the TorchScript module (model.file) returns " + shape_text(out.sizes()) + " for x " + shape_text(x.sizes()) +
                          ": its output must be shaped like x");
}

at::Tensor TorchScriptNet::call(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const c10::IValue out = module_.forward({x, t, y.defined() ? c10::IValue(y) : c10::IValue()});
  if (!out.isTensor()) throw InvalidArgument("the TorchScript module (model.file) returns a " + out.tagKind() + ", not a tensor");
  return out.toTensor();
}

at::Tensor TorchScriptNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  return call(x, t, cond_dim_ > 0 ? y : at::Tensor());
}

void TorchScriptNet::train(bool on) {
  ScoreNet::train(on);
  module_.train(on);
}

std::shared_ptr<const std::string> read_torchscript_file(const std::string& path) {
  if (path.empty()) throw InvalidArgument("model.type = torchscript needs model.file, a module saved by torch.jit.save");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError("model.file " + path + ": cannot open it");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw IOError("model.file " + path + ": cannot read it");
  return std::make_shared<const std::string>(bytes.str());
}

}  // namespace sbgm
