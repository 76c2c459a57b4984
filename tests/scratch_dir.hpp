#pragma once
// A fresh, empty directory for one test's files, named after the test and this process.

#include <unistd.h>

#include <filesystem>
#include <string>

inline std::string scratch_dir(const std::string& name) {
  const std::filesystem::path p =
      std::filesystem::temp_directory_path() / ("sbgm_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}
