#pragma once
// Runs the sbgm executable the way a user's shell would, and checks the error contract: bad input
// gives exactly one line "sbgm: error: ..." on stderr and a non-zero exit.

#include <filesystem>
#include <string>

struct CliResult {
  int code;
  std::string err, out;
};

// A scratch directory for this test process (emptied once, at first use).
std::filesystem::path scratch();
std::string slurp(const std::filesystem::path& p);
// Runs `sbgm ARGS` with stdin closed, capturing stdout and stderr.
CliResult sbgm_cli(const std::string& args);
// Runs /usr/bin/python3 on a script file with arguments; returns its exit status.
int run_python(const std::string& script_and_args);
void expect_one_line_error(const CliResult& r, const std::string& needle);
