#include "job.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>

#include "sbgm/run/run_config.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

extern char** environ;

namespace sbgm::cli {
namespace {

std::vector<std::string> g_command_line;
constexpr const char* kLaunchedBy = "SBGM_LAUNCHER";

// A TCP port on the loopback interface that nothing listens on right now.
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw IOError("--nproc: cannot open a socket to find a free port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw IOError("--nproc: cannot find a free port on 127.0.0.1");
  return ntohs(addr.sin_port);
}

// The command line without --nproc N / --nproc=N.
std::vector<std::string> without_nproc(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

// The environment with a job's variables replaced.
std::vector<std::string> job_environment(int rank, int nproc, int port) {
  static const char* kJobVariables[] = {"RANK",        "WORLD_SIZE",  "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                                        "MASTER_ADDR", "MASTER_PORT", kLaunchedBy};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool job_variable = false;
    for (const char* v : kJobVariables) job_variable = job_variable || name == v;
    if (!job_variable) env.push_back(entry);
  }
  env.push_back("RANK=" + std::to_string(rank));
  env.push_back("LOCAL_RANK=" + std::to_string(rank));
  env.push_back("WORLD_SIZE=" + std::to_string(nproc));
  env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(nproc));
  env.push_back("MASTER_ADDR=127.0.0.1");
  env.push_back("MASTER_PORT=" + std::to_string(port));
  env.push_back(std::string(kLaunchedBy) + "=1");
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The launched processes by rank (0 once reaped); sized before the first is started and never
// resized, so the SIGTERM handler can read it.
std::vector<pid_t> g_children;
volatile std::sig_atomic_t g_terminate = 0;

void signal_children(int sig) {
  for (const pid_t pid : g_children)
    if (pid > 0) ::kill(pid, sig);
}

extern "C" void pass_on_terminate(int) {
  g_terminate = 1;
  signal_children(SIGTERM);
}
extern "C" void ignore_signal(int) {}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

int exit_code_of(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

}  // namespace

void remember_command_line(int argc, char** argv) { g_command_line.assign(argv, argv + argc); }

void add_nproc_option(CLI::App& cmd, int& nproc) {
  cmd.add_option("--nproc", nproc,
                 "run as N processes on this machine that share the work (data-parallel training; sampling "
                 "and likelihoods split by rows)")
      ->capture_default_str();
}

bool should_launch(int nproc) {
  if (nproc < 1) throw InvalidArgument("--nproc must be at least 1");
  if (nproc == 1) return false;
  if (std::getenv("WORLD_SIZE"))
    throw InvalidArgument("--nproc " + std::to_string(nproc) +
                          " inside a job that a launcher started (WORLD_SIZE is set): give one or the other");
  return true;
}

int launch_local_job(int nproc) {
  const std::vector<std::string> args = without_nproc(g_command_line);
  const int port = free_loopback_port();
  // Ctrl-C reaches every process in the terminal's group: the launcher only waits for them.
  std::signal(SIGINT, ignore_signal);
  std::signal(SIGTERM, pass_on_terminate);
  g_children.assign(nproc, 0);
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<std::string> argv_strings = args, env_strings = job_environment(rank, nproc, port);
    std::vector<char*> argv = c_strings(argv_strings), envp = c_strings(env_strings);
    pid_t pid = 0;
    const int err = ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data());
    if (err != 0) {
      signal_children(SIGKILL);
      throw IOError("--nproc: cannot start process " + std::to_string(rank) + " (" + std::strerror(err) + ")");
    }
    g_children[rank] = pid;
  }
  using clock = std::chrono::steady_clock;
  constexpr auto kGrace = std::chrono::seconds(10);  // for the others to notice a failure
  int code = 0, rank0_code = 0, failed_rank = -1;
  std::optional<clock::time_point> kill_at;
  int running = nproc;
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, kill_at ? WNOHANG : 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pid == 0) {
      if (clock::now() >= *kill_at) signal_children(SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    const auto it = std::find(g_children.begin(), g_children.end(), pid);
    if (it == g_children.end()) continue;
    const int rank = static_cast<int>(it - g_children.begin());
    *it = 0;
    --running;
    const int c = exit_code_of(status);
    if (rank == 0) rank0_code = c;
    if (c != 0 && failed_rank < 0) {
      failed_rank = rank;
      code = c;
      // Processes that print their own error exit with a code; a signal leaves nothing said.
      if (WIFSIGNALED(status) && !g_terminate)
        std::cerr << "\nsbgm: error: process " << rank << " of " << nproc << " " << describe_status(status)
                  << "; stopping the others\n";
      if (c != 130) kill_at = clock::now() + kGrace;
    }
  }
  return rank0_code != 0 ? rank0_code : code;
}

Job join_job(const std::string& device, double timeout_seconds) {
  Job job;
  job.device = device;
  const auto env = process_group_env_from_environment();
  if (!env || env->world_size == 1) return job;
  if (device == "cuda") job.device = "cuda:" + std::to_string(env->local_rank);
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  job.comm = Communicator::connect(*env, parse_device(job.device), timeout);
  return job;
}

Job join_model_job(const std::string& device, int64_t threads) {
  Job job = join_job(device, kDefaultJobTimeout);
  configure_threads(static_cast<int>(threads));
  tune_allocator();
  return job;
}

bool is_secondary_rank() {
  const char* rank = std::getenv("RANK");
  return std::getenv("WORLD_SIZE") && rank && std::strcmp(rank, "0") != 0;
}

bool quiet_about_input_errors() { return std::getenv(kLaunchedBy) && is_secondary_rank(); }

}  // namespace sbgm::cli
