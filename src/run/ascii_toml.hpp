#pragma once
// TOML text rewritten in ASCII before toml++ reads it. Debian's toml++ 3.3 reaches undefined
// behaviour (an "unreachable" branch of its Unicode whitespace test) on some non-ASCII characters
// where it looks for whitespace, error paths included (found by fuzz/fuzz_config.cpp). TOML
// allows non-ASCII characters only inside strings and comments, so the rewrite changes no
// config's meaning: in strings they become \uXXXX escapes (literal strings become basic ones),
// in comments spaces; lines stay where they were. Anywhere else they, malformed UTF-8 and
// unterminated strings are refused with InvalidArgument "ORIGIN:LINE: ...".

#include <string>

namespace sbgm {

std::string ascii_toml(const std::string& text, const std::string& origin);

}  // namespace sbgm
