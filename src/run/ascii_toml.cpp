#include "ascii_toml.hpp"

#include <cstdio>

#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

class AsciiToml {
 public:
  AsciiToml(const std::string& text, const std::string& origin) : text_(text), origin_(origin) {}

  std::string run() {
    while (i_ < text_.size()) {
      const char c = text_[i_];
      if (c == '#') comment();
      else if (c == '"' || c == '\'') string(c);
      else if (static_cast<unsigned char>(c) >= 0x80) throw fail("a non-ASCII character outside a string or comment");
      else copy();
    }
    return out_;
  }

 private:
  InvalidArgument fail(const std::string& why) const {
    return InvalidArgument(origin_ + ":" + std::to_string(line_) + ": " + why);
  }
  bool at(const char* s) const { return text_.compare(i_, std::char_traits<char>::length(s), s) == 0; }
  void copy() {
    if (text_[i_] == '\n') ++line_;
    out_ += text_[i_++];
  }
  // One UTF-8 character at i_ as an escape.
  std::string escaped_code_point() {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(i_ + k < text_.size() ? text_[i_ + k] : 0); };
    const unsigned char b0 = byte(0);
    const int length = b0 >= 0xF0 && b0 <= 0xF4 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 && b0 <= 0xDF ? 2 : 0;
    if (length == 0) throw fail("malformed UTF-8");
    uint32_t cp = b0 & (0xFF >> (length + 1));
    for (int k = 1; k < length; ++k) {
      if ((byte(k) & 0xC0) != 0x80) throw fail("malformed UTF-8");
      cp = (cp << 6) | (byte(k) & 0x3F);
    }
    const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) throw fail("malformed UTF-8");
    i_ += static_cast<size_t>(length);
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, cp <= 0xFFFF ? "\\u%04X" : "\\U%08X", cp);
    return buffer;
  }
  void comment() {
    while (i_ < text_.size() && text_[i_] != '\n') {
      if (static_cast<unsigned char>(text_[i_]) >= 0x80) {
        escaped_code_point();  // checked, then dropped
        out_ += ' ';
      } else {
        out_ += text_[i_++];
      }
    }
  }
  // A basic ("...", """...""") or literal ('...', '''...''') string, written as a basic one.
  void string(char quote) {
    const bool multi = quote == '"' ? at("\"\"\"") : at("'''");
    const std::string close(multi ? 3 : 1, quote);
    const bool literal = quote == '\'';
    out_ += multi ? "\"\"\"" : "\"";
    i_ += close.size();
    for (;;) {
      if (i_ >= text_.size()) throw fail("an unterminated string");
      if (at(close.c_str())) {
        // A multi-line string may end in up to two quotes of its own: """a"""" is 'a"'.
        size_t extra = 0;
        while (multi && extra < 2 && i_ + 3 + extra < text_.size() && text_[i_ + 3 + extra] == quote) ++extra;
        for (size_t k = 0; k < extra; ++k) out_ += literal ? "\\'" : "\\\"";
        i_ += close.size() + extra;
        out_ += multi ? "\"\"\"" : "\"";
        return;
      }
      const char c = text_[i_];
      if (c == '\n' && !multi) throw fail("an unterminated string");
      if (static_cast<unsigned char>(c) >= 0x80) {
        out_ += escaped_code_point();
      } else if (literal && (c == '\\' || c == '"')) {
        out_ += '\\';
        out_ += text_[i_++];
      } else if (!literal && c == '\\') {
        // An escape: its next character belongs to the string (no escape starts with non-ASCII).
        if (i_ + 1 >= text_.size() || static_cast<unsigned char>(text_[i_ + 1]) >= 0x80) throw fail("an invalid escape");
        out_ += text_[i_++];
        copy();
      } else {
        copy();
      }
    }
  }

  const std::string& text_;
  const std::string& origin_;
  std::string out_;
  size_t i_ = 0;
  size_t line_ = 1;
};

}  // namespace

std::string ascii_toml(const std::string& text, const std::string& origin) { return AsciiToml(text, origin).run(); }

}  // namespace sbgm
