#pragma once
// How much memory reading one input may take. Every reader checks what a file declares (shapes,
// member sizes, header fields) against what the file can hold before allocating: its own size,
// or for compressed data DEFLATE's largest expansion (1032:1). Above that, a user-settable limit
// covers the rest: SBGM_MAX_READ_BYTES (bytes) when set, the machine's physical memory otherwise.

#include <cstdint>
#include <string>

namespace sbgm {

// DEFLATE (zip, gzip) never expands data by more than this factor.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint64_t max_read_bytes();

// Throws IOError "NAME: reading it needs N bytes, above the limit of M (SBGM_MAX_READ_BYTES)"
// when bytes exceed max_read_bytes().
void check_read_size(uint64_t bytes, const std::string& name);

}  // namespace sbgm
