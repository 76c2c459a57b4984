#pragma once
// Test files live under one directory per test process (/tmp/sbgm_test_PID), made at first use and
// removed with everything in it when the process exits, so a run of the suite leaves nothing in
// /tmp (children started by fork leave with _exit and do not remove it).

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

inline const std::filesystem::path& scratch_root() {
  struct Root {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("sbgm_test_" + std::to_string(::getpid()));
    Root() {
      std::filesystem::remove_all(path);
      std::filesystem::create_directories(path);
    }
    ~Root() {
      std::error_code ignored;   // nothing to be done at exit about a file that will not go
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const Root root;
  return root.path;
}

// A fresh, empty (not yet created) path for one test's files, named after the test.
inline std::string scratch_dir(const std::string& name) {
  const std::filesystem::path p = scratch_root() / name;
  std::filesystem::remove_all(p);
  return p.string();
}
