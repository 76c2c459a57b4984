#include "sbgm/data/image_files.hpp"

#include <ATen/ATen.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>

#include <memory>
#include <vector>

#include "sbgm/io/read_limits.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

using GzFile = std::unique_ptr<gzFile_s, int (*)(gzFile)>;

GzFile open_gz(const std::string& path) {
  GzFile file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) throw IOError(path + ": cannot open file");
  return file;
}

// The most bytes the file can hold once gunzipped: its size when it is not compressed, DEFLATE's
// largest expansion of it otherwise; reading beyond the read limit is refused as well.
uint64_t readable_bytes(const std::string& path, gzFile file) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw IOError(path + ": cannot open file");
  const auto size = static_cast<uint64_t>(st.st_size);
  return gzdirect(file) ? size : size * kMaxDeflateRatio;
}

// Reads up to `count` bytes (gunzipped); returns how many there were.
uint64_t read_some(const std::string& path, gzFile file, uint8_t* out, uint64_t count) {
  uint64_t got = 0;
  while (got < count) {
    const auto want = static_cast<unsigned>(std::min<uint64_t>(count - got, 1u << 30));
    const int n = gzread(file, out + got, want);
    if (n < 0) throw IOError(path + ": cannot read (corrupt gzip stream?)");
    if (n == 0) break;
    got += static_cast<uint64_t>(n);
  }
  return got;
}

// Reads a whole file, gunzipping it when it is gzip (zlib reads plain files as they are), within
// what the file can hold and the read limit.
std::vector<uint8_t> read_bytes(const std::string& path) {
  GzFile file = open_gz(path);
  const uint64_t bound = readable_bytes(path, file.get());
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  for (;;) {
    const uint64_t n = read_some(path, file.get(), chunk, sizeof chunk);
    if (n == 0) break;
    if (bytes.size() + n > bound) throw IOError(path + ": a gzip stream that expands beyond what DEFLATE can");
    check_read_size(bytes.size() + n, path);
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  return bytes;
}

// The first `count` bytes of a file (gunzipped), fewer if it is shorter.
std::vector<uint8_t> read_head(const std::string& path, int count) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) return {};
  std::vector<uint8_t> head(count);
  const int n = gzread(file.get(), head.data(), count);
  head.resize(n > 0 ? n : 0);
  return head;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

uint32_t big_endian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// IDX element types: code -> (dtype, bytes per element).
bool idx_type(uint8_t code, at::ScalarType& type, int& size) {
  switch (code) {
    case 0x08: type = at::kByte; size = 1; return true;
    case 0x09: type = at::kChar; size = 1; return true;
    case 0x0B: type = at::kShort; size = 2; return true;
    case 0x0C: type = at::kInt; size = 4; return true;
    case 0x0D: type = at::kFloat; size = 4; return true;
    case 0x0E: type = at::kDouble; size = 8; return true;
  }
  return false;
}

constexpr int64_t kCifarSide = 32, kCifarPixels = 3 * kCifarSide * kCifarSide, kCifarRecord = 1 + kCifarPixels;

std::vector<uint8_t> read_cifar10_bytes(const std::string& path) {
  std::vector<uint8_t> bytes = read_bytes(path);
  if (bytes.empty() || bytes.size() % kCifarRecord != 0)
    throw IOError(path + ": " + std::to_string(bytes.size()) + " bytes is not a whole number of CIFAR-10 records (" +
                  std::to_string(kCifarRecord) + " bytes each)");
  for (size_t r = 0; r < bytes.size(); r += kCifarRecord)
    if (bytes[r] > 9)
      throw IOError(path + ": record " + std::to_string(r / kCifarRecord) + " has label " + std::to_string(bytes[r]) +
                    " (CIFAR-10 labels are 0-9; is this a CIFAR-10 binary batch?)");
  return bytes;
}

}  // namespace

bool is_idx_file(const std::string& path) {
  const std::vector<uint8_t> head = read_head(path, 4);
  int size = 0;
  at::ScalarType type;
  return head.size() == 4 && head[0] == 0 && head[1] == 0 && idx_type(head[2], type, size) && head[3] >= 1;
}

bool is_cifar10_file(const std::string& path) { return ends_with(path, ".bin") || ends_with(path, ".bin.gz"); }

at::Tensor read_idx(const std::string& path) {
  // The header first: the data it declares is checked against what the file can hold and the
  // read limit before anything more is decompressed or allocated.
  GzFile file = open_gz(path);
  const uint64_t bound = readable_bytes(path, file.get());
  uint8_t magic[4] = {};
  at::ScalarType type;
  int element = 0;
  if (read_some(path, file.get(), magic, 4) != 4 || magic[0] != 0 || magic[1] != 0 || !idx_type(magic[2], type, element) ||
      magic[3] < 1)
    throw IOError(path + ": not an IDX file (bad magic number)");
  const int rank = magic[3];
  std::vector<uint8_t> dims(4 * static_cast<size_t>(rank));
  if (read_some(path, file.get(), dims.data(), dims.size()) != dims.size()) throw IOError(path + ": truncated IDX header");
  std::vector<int64_t> shape;
  uint64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    const uint32_t d = big_endian32(&dims[4 * i]);
    shape.push_back(d);
    // Saturated just above the bound: 32-bit sizes multiply past 64 bits in three steps.
    count = d == 0 || count == 0 ? 0 : count > (bound + 1) / d ? bound + 1 : count * d;
  }
  if (count == 0) throw IOError(path + ": IDX file holds no values");
  const uint64_t expected = count * static_cast<uint64_t>(element);
  if (count > bound || expected > bound)
    throw IOError(path + ": IDX header declares more data than the file can hold (truncated or damaged)");
  check_read_size(expected, path);
  std::vector<uint8_t> bytes(expected + 1);
  const uint64_t got = read_some(path, file.get(), bytes.data(), expected + 1);
  if (got != expected)
    throw IOError(path + ": IDX header promises " + std::to_string(expected) + " bytes of data, found " +
                  (got > expected ? "more" : std::to_string(got) + " (truncated)"));
  at::Tensor x = at::empty(shape, at::TensorOptions().dtype(type));
  // IDX is big-endian: multi-byte elements are byte-swapped into place.
  auto* out = static_cast<uint8_t*>(x.data_ptr());
  const uint8_t* in = bytes.data();
  for (uint64_t i = 0; i < count; ++i)
    for (int b = 0; b < element; ++b) out[i * element + b] = in[i * element + (element - 1 - b)];
  x = x.to(at::kFloat);
  // Labels [N] become rows [N, 1]; grey images [N, H, W] gain their channel axis.
  return rank == 1 || rank == 3 ? x.unsqueeze(1) : x;
}

at::Tensor read_cifar10(const std::string& path) {
  const std::vector<uint8_t> bytes = read_cifar10_bytes(path);
  const int64_t n = static_cast<int64_t>(bytes.size()) / kCifarRecord;
  const at::Tensor records = at::from_blob(const_cast<uint8_t*>(bytes.data()), {n, kCifarRecord}, at::kByte);
  return records.narrow(1, 1, kCifarPixels).to(at::kFloat).reshape({n, 3, kCifarSide, kCifarSide});
}

at::Tensor read_cifar10_labels(const std::string& path) {
  const std::vector<uint8_t> bytes = read_cifar10_bytes(path);
  const int64_t n = static_cast<int64_t>(bytes.size()) / kCifarRecord;
  const at::Tensor records = at::from_blob(const_cast<uint8_t*>(bytes.data()), {n, kCifarRecord}, at::kByte);
  return records.narrow(1, 0, 1).to(at::kFloat);
}

at::Tensor as_image_batch(const at::Tensor& x, const std::string& what) {
  if (x.dim() == 3) return x.unsqueeze(1);
  if (x.dim() == 4) return x;
  throw InvalidArgument(what + ": expected images [N, H, W] or [N, C, H, W], got rank " + std::to_string(x.dim()));
}

}  // namespace sbgm
