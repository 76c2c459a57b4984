#pragma once
// Errors a user can act on. The library throws these with a message that names the problem;
// the CLI catches them once, prints the message on one line and exits non-zero, and Python
// raises them as ValueError and OSError.

#include <functional>
#include <stdexcept>
#include <string>

namespace sbgm {

// A value the user gave (config key, request parameter, file content) is not acceptable.
//
// A message about settings names each as {key}: a config key ({sde.beta_min}, {data.cond}) or a
// request's parameter ({probes}, {lambda}). what() spells each key as it is; a front end words
// the message with its own names (the CLI its flags, Python its keywords), so the library never
// names a flag and no front end rewrites messages.
class InvalidArgument : public std::invalid_argument {
 public:
  explicit InvalidArgument(const std::string& message);

  // The message with every {key} replaced by name_of(key).
  std::string worded(const std::function<std::string(const std::string& key)>& name_of) const;

 private:
  std::string text_;  // the message as given, {key} and all
};

// A file could not be read or written, or is malformed.
class IOError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace sbgm
