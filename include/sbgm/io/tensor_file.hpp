#pragma once
// Named tensors and string metadata in one file, in the safetensors layout (so other tools can
// read sbgm's files): an 8-byte little-endian header length, a JSON header giving each tensor's
// dtype, shape and byte range (and "__metadata__": string to string), then the raw bytes.
//
// The reader checks the whole header before it copies a byte: the header fits the file, the
// JSON is well formed without repeated keys, every dtype is known, every byte range matches its
// shape and dtype and the ranges tile the data exactly. So no file makes it read outside the
// file or allocate more than the file's size. A CRC-32 of the data and the metadata, kept in the
// metadata, catches damaged files before anything is interpreted. Every failure is an IOError
// "FILE: what is wrong".

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <string_view>

namespace sbgm {

struct TensorFile {
  std::map<std::string, std::string> metadata;
  std::map<std::string, at::Tensor> tensors;
};

// Writes the tensors (any device and layout; float64/32/16, bfloat16, int64/32/16/8, uint8) and
// the metadata, with the checksum added, atomically (io/atomic_file.hpp).
void write_tensor_file(const std::string& path, const TensorFile& file);

// Reads a file written by write_tensor_file; tensors come back on the CPU.
TensorFile read_tensor_file(const std::string& path);
// The same from the file's bytes; name is what error messages call it.
TensorFile parse_tensor_file(std::string_view bytes, const std::string& name);

// True when the bytes start like a tensor file (a plausible header length and a '{').
bool looks_like_tensor_file(std::string_view head);

}  // namespace sbgm
