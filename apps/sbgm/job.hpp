#pragma once
// Commands that run as several processes (train, sample, loglik): the --nproc launcher, which
// starts the same command line as N local processes with torchrun's variables, and joining the
// job from inside one of them (or from a process that torchrun started).

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "sbgm/dist/communicator.hpp"

namespace sbgm::cli {

// The command line as main() received it, for the launcher to start again.
void remember_command_line(int argc, char** argv);

// Adds --nproc N to a command.
void add_nproc_option(CLI::App& cmd, int& nproc);

// True when this process should start a job of nproc processes rather than do the work itself:
// nproc > 1 and not already inside a job. InvalidArgument for nproc < 1, or nproc > 1 inside a
// job started by another launcher.
bool should_launch(int nproc);

// Starts the remembered command line, without --nproc, as nproc processes on this machine (ranks
// 0..nproc-1, rendezvous on 127.0.0.1 at a free port) and waits for them. Returns rank 0's exit
// code, or that of the first process that failed. When one fails the others stop on their own
// (their collectives fail as soon as it is gone); any still running after a grace period are
// killed. Ctrl-C reaches every process of the terminal's group, so the launcher ignores it and
// waits for them to save and exit; SIGTERM is passed on to them.
int launch_local_job(int nproc);

// This process's place in the job it was started in (a job of one when none): its communicator
// and its device ("cuda" becomes the GPU of its local rank).
struct Job {
  Communicator comm;
  std::string device;
};
Job join_job(const std::string& device, double timeout_seconds);
// join_job for the commands that use a saved model (sample, loglik, inpaint): the run's default
// timeout, `threads` intra-op threads (0: the cores) and the allocator tuned for repeated batches.
Job join_model_job(const std::string& device, int64_t threads);

// True for processes other than rank 0 of a job: they draw no progress and print no results.
bool is_secondary_rank();

// True for the processes of an --nproc job other than rank 0: every process checks the same
// command line and data, so rank 0 alone reports input errors.
bool quiet_about_input_errors();

}  // namespace sbgm::cli
