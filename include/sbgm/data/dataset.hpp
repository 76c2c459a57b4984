#pragma once
// Loading user data: .npy ([N, ...], float32/float64) or CSV (rows of numbers, optional header),
// checked for shape and finiteness with errors that name the file and the problem.

#include <ATen/core/Tensor.h>

#include <string>

namespace sbgm {

// Reads rows of comma-separated numbers (as float64); a first line that is not numeric is taken as
// a header.
at::Tensor read_csv(const std::string& path);

// Reads .npy or .csv (by extension) as float32 [N, ...] (float64 when keep_double and the file
// holds doubles) and checks N >= min_rows, rank >= 2 and (unless allow_nan, for observations with
// unobserved entries) that every value is finite.
at::Tensor load_data_file(const std::string& path, int64_t min_rows = 1, bool keep_double = false,
                          bool allow_nan = false);

// The checks load_data_file makes of what it read, for rows that come from memory (the Python
// package's arrays): rank >= 2, N >= min_rows, some values, finite (unless allow_nan) and within
// what float32 training handles. InvalidArgument naming `what` and the problem.
void check_data_rows(const at::Tensor& x, const std::string& what, int64_t min_rows = 1, bool allow_nan = false);

// Throws InvalidArgument("<what> contains NaN or Inf (first at row r)") when x is not all finite.
void check_finite(const at::Tensor& x, const std::string& what);

}  // namespace sbgm
