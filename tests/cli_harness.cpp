#include "cli_harness.hpp"

#include "scratch_dir.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

fs::path scratch() { return scratch_root(); }

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

CliResult sbgm_cli(const std::string& args) {
  const fs::path out = scratch() / "stdout.txt", err = scratch() / "stderr.txt";
  const std::string cmd = std::string(SBGM_CLI_PATH) + " " + args + " >" + out.string() + " 2>" + err.string() + " </dev/null";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(err), slurp(out)};
}

int run_python(const std::string& script_and_args) {
  const int status = std::system((std::string(SBGM_PYTHON) + " " + script_and_args).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void expect_one_line_error(const CliResult& r, const std::string& needle) {
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err.rfind("sbgm: error: ", 0) == 0 || r.err.rfind("\nsbgm: error: ", 0) == 0, true) << r.err;
  std::string trimmed = r.err;
  while (!trimmed.empty() && (trimmed.front() == '\n')) trimmed.erase(trimmed.begin());
  EXPECT_EQ(std::count(trimmed.begin(), trimmed.end(), '\n'), 1) << "not one line: " << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}
