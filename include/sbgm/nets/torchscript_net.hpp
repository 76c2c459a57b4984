#pragma once
// A network the user brings: a TorchScript module (torch.jit.script or torch.jit.trace, saved by
// torch.jit.save) as the score, noise or velocity network (model.type = torchscript). The
// contract: forward(x: Tensor, t: Tensor, y: Optional[Tensor]) -> Tensor, with x [B, ...] shaped
// like the data (in the model's standardised units), t [B] the diffusion time, y [B, C] the
// condition or None for an unconditional model; the output is shaped like x and means what
// model.output says. The module's parameters and buffers become this network's, so the trainer,
// the EMA, checkpoints, devices and dtypes treat it as any built-in network; its training()
// flag follows this module's (dropout and the like in the module work as in PyTorch). Tensors
// the module creates itself should take x's device and dtype.

#include <torch/csrc/jit/api/module.h>

#include <memory>
#include <string>
#include <vector>

#include "sbgm/nets/score_net.hpp"

namespace sbgm {

class TorchScriptNet final : public ScoreNet {
 public:
  // script: the bytes of a file saved by torch.jit.save. Checks the contract on a probe batch of
  // two rows; InvalidArgument in one line when the bytes are not a TorchScript module or the
  // module does not meet the contract.
  TorchScriptNet(const std::string& script, const std::vector<int64_t>& data_shape, int64_t cond_dim);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) override;
  void train(bool on = true) override;

 private:
  at::Tensor call(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y);

  torch::jit::Module module_;
  int64_t cond_dim_;
};

// The bytes of a TorchScript file (model.file); IOError naming the file when it cannot be read.
std::shared_ptr<const std::string> read_torchscript_file(const std::string& path);

}  // namespace sbgm
