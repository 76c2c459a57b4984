#include "sbgm/io/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sbgm/util/error.hpp"

namespace sbgm {

RunLock::RunLock(const std::string& dir) {
  const std::string path = dir + "/" + file_name();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IOError(path + ": cannot open the run's lock file: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char text[32] = {};
    const ssize_t n = ::pread(fd_, text, sizeof(text) - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (error != EWOULDBLOCK) throw IOError(path + ": cannot lock the run directory: " + std::strerror(error));
    std::string holder = n > 0 ? std::string(text, static_cast<size_t>(n)) : std::string();
    holder = holder.substr(0, holder.find_first_not_of("0123456789"));
    throw InvalidArgument(dir + ": another sbgm run" + (holder.empty() ? "" : " (process " + holder + ")") +
                          " is training into this directory; wait for it or choose another {out}");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  // The id is for the message above only: failing to write it does not endanger the run.
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the lock
}

}  // namespace sbgm
