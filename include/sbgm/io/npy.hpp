#pragma once
// NumPy .npy files (format 1.0-3.0): float32 or float64, C order, any rank. Reading checks the
// magic, header, dtype, order and that the file holds every byte its header promises; writing
// goes to a temporary file renamed into place, so a failure never leaves a partial file.

#include <ATen/core/Tensor.h>

#include <istream>
#include <string>

namespace sbgm {

// Returns a float32 (or float64 when keep_double) CPU tensor with the file's shape. Reads float32,
// float64, bool, uint8 and int8/16/32/64 files (the latter converted to floats).
at::Tensor read_npy(const std::string& path, bool keep_double = false);
// The same from a stream; name is what error messages call it.
at::Tensor read_npy(std::istream& in, const std::string& name, bool keep_double = false);

// Writes a float32 or float64 tensor (any device, any layout) as a C-order .npy file.
void write_npy(const std::string& path, const at::Tensor& tensor);

}  // namespace sbgm
