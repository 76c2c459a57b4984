#include "sbgm/data/image_files.hpp"

#include <ATen/ATen.h>
#include <zlib.h>

#include <memory>
#include <vector>

#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

// Reads a whole file, gunzipping it when it is gzip (zlib reads plain files as they are).
std::vector<uint8_t> read_bytes(const std::string& path) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) throw IOError(path + ": cannot open file");
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  for (;;) {
    const int n = gzread(file.get(), chunk, sizeof chunk);
    if (n < 0) throw IOError(path + ": cannot read (corrupt gzip stream?)");
    if (n == 0) break;
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
  const std::vector<uint8_t> bytes = read_bytes(path);
  at::ScalarType type;
  int element = 0;
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0 || !idx_type(bytes[2], type, element) || bytes[3] < 1)
    throw IOError(path + ": not an IDX file (bad magic number)");
  const int rank = bytes[3];
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  if (bytes.size() < header) throw IOError(path + ": truncated IDX header");
  std::vector<int64_t> shape;
  int64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    shape.push_back(big_endian32(&bytes[4 + 4 * i]));
    count *= shape.back();
  }
  const size_t expected = header + static_cast<size_t>(count) * element;
  if (bytes.size() != expected)
    throw IOError(path + ": IDX header promises " + std::to_string(expected - header) + " bytes of data, found " +
                  std::to_string(bytes.size() - header) + (bytes.size() < expected ? " (truncated)" : ""));
  if (count == 0) throw IOError(path + ": IDX file holds no values");
  at::Tensor x = at::empty(shape, at::TensorOptions().dtype(type));
  // IDX is big-endian: multi-byte elements are byte-swapped into place.
  auto* out = static_cast<uint8_t*>(x.data_ptr());
  const uint8_t* in = bytes.data() + header;
  for (int64_t i = 0; i < count; ++i)
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
