#pragma once
// Writes a file under a temporary name in the same directory and renames it into place, so
// readers see either the old file or the complete new one, never a partial one.

#include <functional>
#include <ostream>
#include <string>

namespace sbgm {

// Calls write(stream) on a temporary file next to path, then renames it to path. On any error
// the temporary file is removed and IOError (or the writer's exception) propagates.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

// Same for writers that need a file name rather than a stream.
void write_path_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

}  // namespace sbgm
