// Checkpoints: the model part (what `sbgm sample` reads) and the whole (what `--resume` reads).
// Fuzz builds define FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION (libFuzzer's convention), which
// skips the tensor file's checksum comparison so that mutations reach the checks behind it.
#include "fuzz_input.hpp"
#include "sbgm/run/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sbgm::fuzz::as_file(data, size, ".safetensors");
  sbgm::fuzz::expect_clean([&] { sbgm::load_trained_model(path); });
  sbgm::fuzz::expect_clean([&] { sbgm::load_checkpoint(path); });
  return 0;
}
