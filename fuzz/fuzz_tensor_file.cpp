// Tensor files (the safetensors layout checkpoints are written in).
#include <string_view>

#include "fuzz_input.hpp"
#include "sbgm/io/tensor_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sbgm::fuzz::expect_clean([&] {
    sbgm::parse_tensor_file(std::string_view(reinterpret_cast<const char*>(data), size), "input.safetensors");
  });
  return 0;
}
