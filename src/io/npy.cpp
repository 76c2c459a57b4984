#include "sbgm/io/npy.hpp"

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <algorithm>
#include <cctype>
#include <limits>
#include <sstream>

#include "sbgm/io/atomic_file.hpp"
#include "sbgm/io/read_limits.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// The header is a Python dict literal, {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), },
// parsed strictly: exactly these three keys, once each; the shape a tuple of integers.
class HeaderParser {
 public:
  HeaderParser(const std::string& path, const std::string& text) : path_(path), text_(text) {}

  NpyHeader parse() {
    NpyHeader h;
    bool seen[3] = {false, false, false};
    expect('{');
    while (!accept('}')) {
      const std::string key = string_literal();
      expect(':');
      int which = key == "descr" ? 0 : key == "fortran_order" ? 1 : key == "shape" ? 2 : -1;
      if (which < 0) throw fail("unexpected key '" + key + "'");
      if (seen[which]) throw fail("the key '" + key + "' appears twice");
      seen[which] = true;
      if (which == 0) h.descr = string_literal();
      else if (which == 1) h.fortran_order = boolean();
      else h.shape = shape();
      if (!accept(',')) {
        expect('}');
        break;
      }
    }
    skip_space();
    if (pos_ != text_.size()) throw fail("text after the dict");
    if (!seen[0]) throw fail("no descr");
    if (!seen[1]) throw fail("no fortran_order");
    if (!seen[2]) throw fail("no shape");
    return h;
  }

 private:
  IOError fail(const std::string& why) const { return IOError(path_ + ": malformed .npy header (" + why + ")"); }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) ++pos_;
  }
  bool accept(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c)) throw fail(std::string("expected '") + c + "'");
  }
  std::string string_literal() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) throw fail("expected a quoted string");
    const char quote = text_[pos_++];
    const size_t close = text_.find(quote, pos_);
    if (close == std::string::npos) throw fail("an unterminated string");
    std::string s = text_.substr(pos_, close - pos_);
    if (s.find('\\') != std::string::npos) throw fail("escapes in a string");
    pos_ = close + 1;
    return s;
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair<const char*, bool>{"True", true}, {"False", false}})
      if (text_.compare(pos_, std::strlen(word), word) == 0) {
        pos_ += std::strlen(word);
        return value;
      }
    throw fail("fortran_order is not True or False");
  }
  std::vector<int64_t> shape() {
    std::vector<int64_t> dims;
    expect('(');
    while (!accept(')')) {
      skip_space();
      const size_t first = pos_;
      int64_t v = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        const int digit = text_[pos_++] - '0';
        if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) throw fail("a dimension too large");
        v = v * 10 + digit;
      }
      if (pos_ == first) throw fail("the shape is not a tuple of non-negative integers");
      if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2's long integers
      dims.push_back(v);
      if (dims.size() > 64) throw fail("more than 64 dimensions");
      if (!accept(',')) {
        expect(')');
        break;
      }
    }
    return dims;
  }

  const std::string& path_;
  const std::string& text_;
  size_t pos_ = 0;
};

}  // namespace

at::Tensor read_npy(const std::string& path, bool keep_double) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError(path + ": cannot open file");
  return read_npy(in, path, keep_double);
}

at::Tensor read_npy(std::istream& in, const std::string& path, bool keep_double) {
  char magic[8] = {};
  in.read(magic, 8);
  const auto got = static_cast<size_t>(in.gcount());
  if (std::memcmp(magic, "\x93NUMPY", std::min<size_t>(got, 6)) != 0 || got == 0) throw IOError(path + ": not a .npy file");
  if (got < 8) throw IOError(path + ": truncated .npy header");
  const int major = static_cast<unsigned char>(magic[6]);
  uint32_t header_len = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) throw IOError(path + ": truncated .npy header");
    header_len = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) throw IOError(path + ": truncated .npy header");
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  } else {
    throw IOError(path + ": unsupported .npy version " + std::to_string(major));
  }
  if (header_len > (1u << 20)) throw IOError(path + ": malformed .npy header (too long)");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) throw IOError(path + ": truncated .npy header");
  const NpyHeader h = HeaderParser(path, header).parse();

  // Floats as they are; booleans and integers (masks, 8-bit images, labels) become floats.
  at::ScalarType dtype;
  const std::string kind = h.descr.size() > 1 && (h.descr[0] == '<' || h.descr[0] == '=' || h.descr[0] == '|')
                               ? h.descr.substr(1) : h.descr;
  if (kind == "f4") dtype = at::kFloat;
  else if (kind == "f8") dtype = at::kDouble;
  else if (kind == "b1") dtype = at::kByte;  // read as bytes: any nonzero byte is true
  else if (kind == "u1") dtype = at::kByte;
  else if (kind == "i1") dtype = at::kChar;
  else if (kind == "i2") dtype = at::kShort;
  else if (kind == "i4") dtype = at::kInt;
  else if (kind == "i8") dtype = at::kLong;
  else
    throw IOError(path + ": unsupported dtype '" + h.descr +
                  "' (expected little-endian float32/64, bool, uint8 or int8/16/32/64)");
  if (h.fortran_order) throw IOError(path + ": Fortran-ordered arrays are not supported (save with C order)");

  // The data must be in the stream: the shape is checked against what is left before allocating.
  const std::streampos start = in.tellg();
  in.seekg(0, std::ios::end);
  const std::streamoff left = in.tellg() - start;
  in.seekg(start);
  if (start < 0 || left < 0 || !in) throw IOError(path + ": cannot read the data");
  const uint64_t element = c10::elementSize(dtype);
  // The element count, saturated just above what the stream could hold.
  const uint64_t cap = static_cast<uint64_t>(left) / element + 1;
  uint64_t count = 1, nonzero = 1;
  for (const int64_t dim : h.shape) {
    const auto d = static_cast<uint64_t>(dim);
    count = d == 0 || count == 0 ? 0 : count > cap / d ? cap : std::min(cap, count * d);
    // Even an empty array's other sizes must multiply within 64 bits (LibTorch checks them).
    if (d > 0 && nonzero > (uint64_t{1} << 62) / d) throw IOError(path + ": malformed .npy header (a shape too large)");
    if (d > 0) nonzero *= d;
  }
  const uint64_t bytes = count * element;
  if (bytes > static_cast<uint64_t>(left))
    throw IOError(path + ": truncated .npy data (the header's shape needs more bytes than the file's " +
                  std::to_string(left) + ")");
  check_read_size(bytes, path);
  at::Tensor t = at::empty(h.shape, at::TensorOptions().dtype(dtype));
  if (bytes > 0 && !in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes)))
    throw IOError(path + ": truncated .npy data (header promises " + std::to_string(bytes) + " bytes)");
  if (kind == "b1") t = t.ne(0);
  if (dtype == at::kDouble) return keep_double ? t : t.to(at::kFloat);
  if (dtype != at::kFloat) t = t.to(keep_double ? at::kDouble : at::kFloat);
  return t;
}

void write_npy(const std::string& path, const at::Tensor& tensor) {
  if (tensor.scalar_type() != at::kFloat && tensor.scalar_type() != at::kDouble)
    throw InvalidArgument("write_npy: only float32 and float64 tensors can be written");
  const at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) shape += (i ? ", " : "") + std::to_string(t.size(i));
  shape += t.dim() == 1 ? ",)" : ")";
  std::string dict = std::string("{'descr': '") + (t.scalar_type() == at::kFloat ? "<f4" : "<f8") +
                     "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so that the data starts on a 64-byte boundary; the header ends in '\n'.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  write_file_atomically(path, [&](std::ostream& out) {
    out.write("\x93NUMPY\x01\x00", 8);
    const uint16_t len = static_cast<uint16_t>(dict.size());
    const char len_bytes[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
    out.write(len_bytes, 2);
    out.write(dict.data(), static_cast<std::streamsize>(dict.size()));
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
  });
}

}  // namespace sbgm
