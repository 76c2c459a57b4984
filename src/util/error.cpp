#include "sbgm/util/error.hpp"

#include <cctype>

namespace sbgm {
namespace {

// A key: letters, digits, '_' and '.', starting with a letter (so "{" in other text, such as a
// JSON fragment, is left alone).
bool is_key(const std::string& s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (const char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') return false;
  return true;
}

std::string word(const std::string& text, const std::function<std::string(const std::string&)>& name_of) {
  std::string out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t open = text.find('{', at);
    const size_t close = open == std::string::npos ? std::string::npos : text.find('}', open);
    if (close == std::string::npos) break;
    const std::string key = text.substr(open + 1, close - open - 1);
    out += text.substr(at, open - at);
    out += is_key(key) ? name_of(key) : text.substr(open, close - open + 1);
    at = close + 1;
  }
  return out + text.substr(at);
}

}  // namespace

InvalidArgument::InvalidArgument(const std::string& message)
    : std::invalid_argument(word(message, [](const std::string& key) { return key; })), text_(message) {}

std::string InvalidArgument::worded(const std::function<std::string(const std::string&)>& name_of) const {
  return word(text_, name_of);
}

}  // namespace sbgm
