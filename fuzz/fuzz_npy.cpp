// .npy files (through the stream reader, as .npz members are read).
#include <sstream>

#include "fuzz_input.hpp"
#include "sbgm/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sbgm::fuzz::expect_clean([&] {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    sbgm::read_npy(in, "input.npy", /*keep_double=*/true);
  });
  return 0;
}
