#pragma once
// Benchmark command lines: the value after `--name`, or the fallback.

#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

inline std::string bench_arg(int argc, char** argv, const char* name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

// The integer after `--name`, or the fallback; a value that is not a whole number is named in
// the error rather than reported as std::stoll's bare "stoll".
inline long long bench_int_arg(int argc, char** argv, const char* name, long long fallback) {
  const std::string text = bench_arg(argc, argv, name, std::to_string(fallback));
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw std::invalid_argument(std::string(name) + ": not a whole number: " + text);
  return value;
}
