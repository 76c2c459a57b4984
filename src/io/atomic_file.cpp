#include "sbgm/io/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

constexpr const char* kTemporaryMark = ".tmp.";

[[noreturn]] void fail(const std::string& path, int error, const std::string& tmp, int fd) {
  if (fd >= 0) ::close(fd);
  ::unlink(tmp.c_str());
  throw IOError(path + ": cannot write: " + std::strerror(error));
}

}  // namespace

void write_bytes_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + kTemporaryMark + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, errno, tmp, -1);
  const char* data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path, errno, tmp, fd);
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  // A full disk can surface only when the data reach it: fsync and close are checked too.
  if (::fsync(fd) != 0 && errno != EINVAL) fail(path, errno, tmp, fd);
  if (::close(fd) != 0) fail(path, errno, tmp, -1);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail(path, errno, tmp, -1);
}

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  std::ostringstream out(std::ios::binary);
  write(out);
  if (!out) throw IOError(path + ": cannot write: the content could not be formed");
  write_bytes_atomically(path, out.str());
}

int remove_stale_temporary_files(const std::string& dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const auto mark = name.rfind(kTemporaryMark);
    if (mark == std::string::npos) continue;
    const std::string pid_text = name.substr(mark + std::strlen(kTemporaryMark));
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    // Alive (or not ours to ask about): leave it.
    if (pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM) continue;
    if (std::filesystem::remove(entry.path(), ec)) ++removed;
  }
  return removed;
}

}  // namespace sbgm
