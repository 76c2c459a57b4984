#include "sbgm/io/atomic_file.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "sbgm/util/error.hpp"

namespace sbgm {

void write_path_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    write(tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw IOError("cannot write " + path);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  write_path_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IOError("cannot write " + path);
    write(out);
    out.flush();
    if (!out) throw IOError("cannot write " + path + " (disk full?)");
  });
}

}  // namespace sbgm
