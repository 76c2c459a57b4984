#pragma once
// One table of names per enum feeds both directions of the string conversion, and the error
// for an unknown name lists the accepted ones.

#include <array>
#include <string>
#include <utility>

#include "sbgm/util/error.hpp"

namespace sbgm {

template <class E, std::size_t N>
using EnumNames = std::array<std::pair<E, const char*>, N>;

template <class E, std::size_t N>
std::string enum_to_string(E value, const EnumNames<E, N>& names) {
  for (const auto& [v, name] : names)
    if (v == value) return name;
  return "?";
}

template <class E, std::size_t N>
E enum_from_string(const std::string& text, const EnumNames<E, N>& names, const char* what) {
  std::string choices;
  for (const auto& [v, name] : names) {
    if (text == name) return v;
    choices += (choices.empty() ? "" : ", ") + std::string(name);
  }
  throw InvalidArgument("unknown " + std::string(what) + " '" + text + "' (expected one of: " + choices + ")");
}

}  // namespace sbgm
