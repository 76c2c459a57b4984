#pragma once
// The value after `--name` on a benchmark's command line, or the fallback.

#include <cstring>
#include <string>

inline std::string bench_arg(int argc, char** argv, const char* name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}
