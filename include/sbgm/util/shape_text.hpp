#pragma once
// A tensor shape as error messages write it: "[2, 28, 28]".

#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace sbgm {

inline std::string shape_text(c10::ArrayRef<int64_t> shape) {
  std::string s;
  for (auto v : shape) s += (s.empty() ? "" : ", ") + std::to_string(v);
  return "[" + s + "]";
}

}  // namespace sbgm
