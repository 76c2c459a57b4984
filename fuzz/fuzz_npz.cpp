// .npz archives (Gaussian mixtures, analytic models).
#include "fuzz_input.hpp"
#include "sbgm/io/npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sbgm::fuzz::as_file(data, size, ".npz");
  sbgm::fuzz::expect_clean([&] { sbgm::read_npz(path); });
  return 0;
}
