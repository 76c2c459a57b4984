#include "sbgm/io/tensor_file.hpp"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "sbgm/io/atomic_file.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

using Json = nlohmann::json;

constexpr const char* kChecksumKey = "crc32";
constexpr const char* kMetadataKey = "__metadata__";
// safetensors' own bound on the header; sbgm's headers are a few kilobytes.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kMaxRank = 16;

struct DType {
  const char* name;
  at::ScalarType type;
};
constexpr DType kDTypes[] = {{"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
                             {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
                             {"U8", at::kByte}};

const char* dtype_name(at::ScalarType type) {
  for (const DType& d : kDTypes)
    if (d.type == type) return d.name;
  throw InvalidArgument(std::string("tensor files do not hold ") + c10::toString(type) + " tensors");
}

bool dtype_of(const std::string& name, at::ScalarType& type) {
  for (const DType& d : kDTypes)
    if (name == d.name) {
      type = d.type;
      return true;
    }
  return false;
}

uLong checksum_text(uLong crc, const std::string& text) {
  return crc32(crc, reinterpret_cast<const Bytef*>(text.c_str()), static_cast<uInt>(text.size() + 1));  // with its NUL
}

// One tensor's entry in the header.
struct Entry {
  std::string name;
  at::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

// The checksum covers the data, then each metadata entry but itself (key NUL value NUL), then
// each tensor's entry in name order (name NUL dtype NUL sizes NUL offsets NUL): every byte of the
// file that means anything.
uLong checksum(uLong crc, const std::map<std::string, std::string>& metadata, std::vector<Entry> entries);

uLong checksum_bytes(uLong crc, const char* data, size_t size) {
  // zlib takes at most 4 GiB a call.
  while (size > 0) {
    const size_t n = std::min<size_t>(size, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(n));
    data += n;
    size -= n;
  }
  return crc;
}

std::string hex32(uLong v) {
  char text[9];
  std::snprintf(text, sizeof text, "%08lx", v & 0xffffffffUL);
  return text;
}

bool little_endian() {
  const uint16_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

uLong checksum(uLong crc, const std::map<std::string, std::string>& metadata, std::vector<Entry> entries) {
  for (const auto& [key, value] : metadata) {
    if (key == kChecksumKey) continue;
    crc = checksum_text(checksum_text(crc, key), value);
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (const Entry& e : entries) {
    std::string sizes;
    for (const int64_t d : e.shape) sizes += std::to_string(d) + ",";
    crc = checksum_text(checksum_text(checksum_text(crc, e.name), dtype_name(e.type)), sizes);
    crc = checksum_text(crc, std::to_string(e.begin) + "," + std::to_string(e.end));
  }
  return crc;
}

}  // namespace

void write_tensor_file(const std::string& path, const TensorFile& file) {
  if (!little_endian()) throw IOError(path + ": tensor files are written on little-endian machines only");
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [name, tensor] : file.tensors) tensors[name] = tensor.detach().to(at::kCPU).contiguous();
  Json header = Json::object();
  std::vector<Entry> entries;
  uint64_t offset = 0;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == kMetadataKey) throw InvalidArgument("tensor file: bad tensor name '" + name + "'");
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    entries.push_back({name, t.scalar_type(), t.sizes().vec(), offset, offset + bytes});
    header[name] = {{"dtype", dtype_name(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    crc = checksum_bytes(crc, static_cast<const char*>(t.data_ptr()), bytes);
    offset += bytes;
  }
  std::map<std::string, std::string> metadata = file.metadata;
  metadata[kChecksumKey] = hex32(checksum(crc, metadata, entries));
  header[kMetadataKey] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t length = text.size();
  out.append(reinterpret_cast<const char*>(&length), 8);
  out += text;
  for (const auto& [name, t] : tensors)
    out.append(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()) * t.element_size());
  write_bytes_atomically(path, out);
}

bool looks_like_tensor_file(std::string_view head) {
  if (head.size() < 9) return false;
  uint64_t length = 0;
  std::memcpy(&length, head.data(), 8);
  return length >= 2 && length <= kMaxHeaderBytes && head[8] == '{';
}

TensorFile parse_tensor_file(std::string_view bytes, const std::string& name) {
  auto fail = [&](const std::string& why) { return IOError(name + ": " + why); };
  if (!little_endian()) throw fail("tensor files are read on little-endian machines only");
  if (bytes.size() < 8) throw fail("too short for a tensor file (" + std::to_string(bytes.size()) + " bytes)");
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  if (header_length > kMaxHeaderBytes || header_length > bytes.size() - 8)
    throw fail("not a tensor file (its header length " + std::to_string(header_length) + " exceeds the file)");
  const std::string_view header_text = bytes.substr(8, header_length);
  const std::string_view data = bytes.substr(8 + header_length);

  // Repeated keys would silently take one of the values: refused.
  std::vector<std::set<std::string>> open_objects;
  bool repeated = false;
  const Json::parser_callback_t no_repeats = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) open_objects.emplace_back();
    else if (event == Json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    else if (event == Json::parse_event_t::key && !open_objects.empty() && parsed.is_string())
      repeated |= !open_objects.back().insert(parsed.get<std::string>()).second;
    return true;
  };
  const Json header = Json::parse(header_text.begin(), header_text.end(), no_repeats, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) throw fail("malformed tensor file header (not a JSON object)");
  if (repeated) throw fail("malformed tensor file header (a repeated key)");

  TensorFile file;
  std::vector<Entry> entries;
  for (const auto& item : header.items()) {
    const std::string& key = item.key();  // named, not bound: lambdas capture it
    const Json& value = item.value();
    if (key == kMetadataKey) {
      if (!value.is_object()) throw fail("malformed tensor file header (" + key + " is not an object)");
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string()) throw fail("malformed tensor file header (metadata '" + mkey + "' is not a string)");
        file.metadata[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& why) { return fail("malformed entry for tensor '" + key + "' (" + why + ")"); };
    if (key.empty()) throw fail("malformed tensor file header (an empty tensor name)");
    if (!value.is_object() || value.size() != 3 || !value.contains("dtype") || !value.contains("shape") ||
        !value.contains("data_offsets"))
      throw bad("expected dtype, shape and data_offsets");
    Entry e;
    e.name = key;
    const Json& dtype = value["dtype"];
    if (!dtype.is_string() || !dtype_of(dtype.get<std::string>(), e.type)) throw bad("unknown dtype");
    const Json& shape = value["shape"];
    if (!shape.is_array() || shape.size() > kMaxRank) throw bad("shape is not a list of at most 16 sizes");
    // The element count, saturated just above what the data could hold.
    const uint64_t cap = data.size() + 1;
    uint64_t count = 1, nonzero = 1;
    for (const Json& d : shape) {
      if (!d.is_number_unsigned()) throw bad("a size that is not a non-negative integer");
      const uint64_t size = d.get<uint64_t>();
      count = size == 0 || count == 0 ? 0 : count > cap / size ? cap : std::min(cap, count * size);
      // Even an empty tensor's other sizes must multiply within 64 bits (LibTorch checks them).
      if (size > 0 && nonzero > (uint64_t{1} << 62) / size) throw bad("a shape too large");
      if (size > 0) nonzero *= size;
      e.shape.push_back(static_cast<int64_t>(size));
    }
    const Json& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw bad("data_offsets is not a pair of non-negative integers");
    e.begin = offsets[0].get<uint64_t>();
    e.end = offsets[1].get<uint64_t>();
    const uint64_t element = c10::elementSize(e.type);
    if (e.begin > e.end || e.end > data.size() || count > data.size() || count * element != e.end - e.begin)
      throw bad("its byte range does not match its shape or lies outside the file");
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t next = 0;
  for (const Entry& e : entries) {
    if (e.begin != next) throw fail("malformed tensor file header (byte ranges overlap or leave gaps)");
    next = e.end;
  }
  if (next != data.size()) throw fail("truncated or padded tensor file (the header describes " + std::to_string(next) +
                                      " bytes of data, the file holds " + std::to_string(data.size()) + ")");

  const auto stored = file.metadata.find(kChecksumKey);
  if (stored == file.metadata.end()) throw fail("not an sbgm tensor file (no checksum)");
  const uLong crc = checksum(checksum_bytes(crc32(0L, Z_NULL, 0), data.data(), data.size()), file.metadata, entries);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // fuzzers reach what lies behind the checksum
  if (stored->second != hex32(crc)) throw fail("damaged file (its checksum does not match its contents)");
#endif

  for (const Entry& e : entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), data.data() + e.begin, e.end - e.begin);
    file.tensors[e.name] = std::move(t);
  }
  return file;
}

TensorFile read_tensor_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError(path + ": cannot open file");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IOError(path + ": cannot read the file");
  return parse_tensor_file(bytes, path);
}

}  // namespace sbgm
