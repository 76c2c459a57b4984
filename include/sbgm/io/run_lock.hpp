#pragma once
// One owner per run directory: a training run holds an exclusive lock on RUN/train.lock (flock)
// for its lifetime, so a second run into the same directory, fresh or resumed, refuses instead of
// interleaving its files with the first's. The kernel drops the lock when the holder exits, even
// by kill -9, so a dead run never blocks the next. Readers (sample, info) take no lock.

#include <string>

namespace sbgm {

class RunLock {
 public:
  // Locks dir/train.lock (creating it) and writes this process's id into it. Throws
  // InvalidArgument naming the holder's process id when another process holds it, IOError when
  // the file cannot be opened.
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  static std::string file_name() { return "train.lock"; }

 private:
  int fd_ = -1;
};

}  // namespace sbgm
