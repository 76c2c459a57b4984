#include "sbgm/io/read_limits.hpp"

#include <unistd.h>

#include <cstdlib>

#include "sbgm/util/error.hpp"

namespace sbgm {

uint64_t max_read_bytes() {
  if (const char* text = std::getenv("SBGM_MAX_READ_BYTES"); text && *text) {
    char* end = nullptr;
    const double v = std::strtod(text, &end);
    if (*end != '\0' || !(v >= 1) || v > 1.8e19)
      throw InvalidArgument(std::string("SBGM_MAX_READ_BYTES: expected a number of bytes, got '") + text + "'");
    return static_cast<uint64_t>(v);
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : uint64_t{1} << 34;
}

void check_read_size(uint64_t bytes, const std::string& name) {
  const uint64_t limit = max_read_bytes();
  if (bytes > limit)
    throw IOError(name + ": reading it needs " + std::to_string(bytes) + " bytes, above the limit of " +
                  std::to_string(limit) + " (SBGM_MAX_READ_BYTES)");
}

}  // namespace sbgm
