#pragma once
// A score network as a user brings one (model.type = torchscript): an MLP written in TorchScript,
// saved as torch.jit.save would — the built-in MLP's architecture (its four tutorial time
// features, ReLU; a condition appended to the input), its weights drawn as torch.nn.Linear's are.
#include <ATen/ATen.h>
#include <torch/csrc/jit/api/module.h>

#include "sbgm/util/runtime.hpp"

#include <fstream>
#include <sstream>
#include <string>

namespace sbgm_test {

inline torch::jit::Module scripted_mlp(int64_t dim, int64_t cond_dim, int64_t width, int64_t depth, uint64_t seed) {
  at::Generator gen = sbgm::make_generator(at::kCPU, seed);
  torch::jit::Module m("ScoredMLP");
  int64_t in = dim + 4 + cond_dim;
  std::string body;
  for (int64_t i = 0; i <= depth; ++i) {
    const int64_t out = i == depth ? dim : width;
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    m.register_parameter("w" + std::to_string(i), (at::rand({out, in}, gen) * 2 - 1) * bound, false);
    m.register_parameter("b" + std::to_string(i), (at::rand({out}, gen) * 2 - 1) * bound, false);
    body += "    h = torch.addmm(self.b" + std::to_string(i) + ", h, self.w" + std::to_string(i) + ".t())\n";
    if (i < depth) body += "    h = torch.relu(h)\n";
    in = out;
  }
  m.define(
      "def forward(self, x: Tensor, t: Tensor, y: Optional[Tensor]) -> Tensor:\n"
      "    tc = t.unsqueeze(1)\n"
      "    w = 6.283185307179586 * tc\n"
      "    h = torch.cat([x, tc - 0.5, torch.cos(w), torch.sin(w), -torch.cos(2.0 * w)], 1)\n"
      "    if y is not None:\n"
      "        h = torch.cat([h, y], 1)\n" +
      body + "    return h\n");
  return m;
}

inline std::string saved(torch::jit::Module& m) {
  std::ostringstream out;
  m.save(out);
  return out.str();
}

inline void save_to(torch::jit::Module& m, const std::string& path) {
  std::ofstream(path, std::ios::binary) << saved(m);
}

}  // namespace sbgm_test
