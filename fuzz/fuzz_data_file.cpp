// Training data files: the first byte picks the format (CSV, IDX, gzip'd IDX, CIFAR-10 batch),
// the rest is the file, read through the same entry point as `sbgm train --data`.
#include "fuzz_input.hpp"
#include "sbgm/data/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* const kSuffixes[] = {".csv", ".idx", ".idx.gz", ".bin", ".bin.gz", ".npy"};
  const std::string path = sbgm::fuzz::as_file(data + 1, size - 1, kSuffixes[data[0] % 6]);
  sbgm::fuzz::expect_clean([&] { sbgm::load_data_file(path, 1, /*keep_double=*/false, /*allow_nan=*/false); });
  return 0;
}
