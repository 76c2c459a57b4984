#pragma once
// The message of the exception a callable throws, for tests that check what an error says.

#include <exception>
#include <string>

// The message of the exception f throws, or "" when it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
