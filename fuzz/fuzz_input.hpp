#pragma once
// What every harness shares: the fuzzer's bytes as a file (the readers take paths), and the rule
// that a reader may refuse an input only with sbgm's own errors.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "sbgm/util/error.hpp"

namespace sbgm::fuzz {

// A file in the temporary directory holding the bytes, named with the given suffix.
inline std::string as_file(const uint8_t* data, size_t size, const std::string& suffix) {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp && *tmp ? tmp : "/tmp") + "/sbgm_fuzz_" + std::to_string(::getpid());
  }();
  static const bool made = [] { return std::system(("mkdir -p " + dir).c_str()) == 0; }();
  if (!made) std::abort();
  const std::string path = dir + "/input" + suffix;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
  return path;
}

// Runs the reader; sbgm's errors are the expected answer to bad input, anything else escapes and
// the fuzzer reports it.
template <typename Read>
void expect_clean(Read read) {
  try {
    read();
  } catch (const IOError&) {
  } catch (const InvalidArgument&) {
  }
}

}  // namespace sbgm::fuzz
