#include "sbgm/io/npy.hpp"

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "sbgm/io/atomic_file.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

NpyHeader parse_header(const std::string& path, const std::string& header) {
  auto fail = [&](const std::string& why) { return IOError(path + ": malformed .npy header (" + why + ")"); };
  NpyHeader h;
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')"))) throw fail("no descr");
  h.descr = m[1];
  if (!std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*(True|False))"))) throw fail("no fortran_order");
  h.fortran_order = m[1] == "True";
  if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) throw fail("no shape");
  std::stringstream dims(m[1].str());
  std::string item;
  while (std::getline(dims, item, ',')) {
    const auto first = item.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    try {
      size_t used = 0;
      const long long v = std::stoll(item.substr(first), &used);
      if (v < 0) throw fail("negative dimension");
      h.shape.push_back(v);
    } catch (const std::logic_error&) {
      throw fail("bad shape '" + m[1].str() + "'");
    }
  }
  return h;
}

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
  const NpyHeader h = parse_header(path, header);

  // Floats as they are; booleans and integers (masks, 8-bit images, labels) become floats.
  at::ScalarType dtype;
  const std::string kind = h.descr.size() > 1 && (h.descr[0] == '<' || h.descr[0] == '=' || h.descr[0] == '|')
                               ? h.descr.substr(1) : h.descr;
  if (kind == "f4") dtype = at::kFloat;
  else if (kind == "f8") dtype = at::kDouble;
  else if (kind == "b1") dtype = at::kBool;
  else if (kind == "u1") dtype = at::kByte;
  else if (kind == "i1") dtype = at::kChar;
  else if (kind == "i2") dtype = at::kShort;
  else if (kind == "i4") dtype = at::kInt;
  else if (kind == "i8") dtype = at::kLong;
  else
    throw IOError(path + ": unsupported dtype '" + h.descr +
                  "' (expected little-endian float32/64, bool, uint8 or int8/16/32/64)");
  if (h.fortran_order) throw IOError(path + ": Fortran-ordered arrays are not supported (save with C order)");

  at::Tensor t = at::empty(h.shape, at::TensorOptions().dtype(dtype));
  const std::streamsize bytes = static_cast<std::streamsize>(t.numel() * t.element_size());
  if (bytes > 0 && !in.read(static_cast<char*>(t.data_ptr()), bytes))
    throw IOError(path + ": truncated .npy data (header promises " + std::to_string(bytes) + " bytes)");
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
