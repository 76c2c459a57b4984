#pragma once
// Errors a user can act on. The library throws these with a message that names the problem;
// the CLI catches them once, prints the message on one line and exits non-zero.

#include <stdexcept>
#include <string>

namespace sbgm {

// A value the user gave (config key, flag, file content) is not acceptable.
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A file could not be read or written, or is malformed.
class IOError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace sbgm
