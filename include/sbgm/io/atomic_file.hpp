#pragma once
// Writes a file under a temporary name in the same directory, flushes it to the disk and renames
// it into place, so readers see either the old file or the complete new one, never a partial
// one. A failed write (disk full, read-only directory, no permission) throws IOError naming the
// file and the system's reason, removes the temporary file and leaves the old file untouched.

#include <functional>
#include <ostream>
#include <string>

namespace sbgm {

// The bytes as the file's whole content.
void write_bytes_atomically(const std::string& path, const std::string& bytes);

// Collects what write(stream) writes (in memory), then writes it as above. Exceptions of the
// writer propagate and nothing is written.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

// Removes temporary files that writes into dir left behind when their process was killed
// (names ending in ".tmp.<process id>" of processes that no longer run). Returns how many.
int remove_stale_temporary_files(const std::string& dir);

}  // namespace sbgm
