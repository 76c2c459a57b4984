#include "sbgm/data/dataset.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "sbgm/data/image_files.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

constexpr int64_t kMaxCsvColumns = 65536;
// Values beyond this overflow float32 arithmetic (squares, standardisation) in training.
constexpr double kMaxMagnitude = 1e30;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Parses one CSV line into numbers; returns false if any field is not a number.
bool parse_row(const std::string& line, std::vector<double>& out) {
  out.clear();
  std::stringstream ss(line);
  std::string field;
  while (std::getline(ss, field, ',')) {
    const auto b = field.find_first_not_of(" \t\r");
    const auto e = field.find_last_not_of(" \t\r");
    if (b == std::string::npos) return false;
    const std::string f = field.substr(b, e - b + 1);
    char* end = nullptr;
    const double v = std::strtod(f.c_str(), &end);
    if (end != f.c_str() + f.size()) return false;
    out.push_back(v);
  }
  return !out.empty();
}

}  // namespace

at::Tensor read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IOError(path + ": cannot open file");
  std::vector<double> values, row;
  int64_t cols = -1, rows = 0, line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    // Every column becomes a network input: a row this wide is damage, not data.
    if (const auto columns = std::count(line.begin(), line.end(), ',') + 1; columns > kMaxCsvColumns)
      throw IOError(path + ":" + std::to_string(line_no) + ": " + std::to_string(columns) + " columns, more than the " +
                    std::to_string(kMaxCsvColumns) + " a CSV row may have (save wide data as .npy)");
    if (!parse_row(line, row)) {
      if (rows == 0 && cols < 0 && line_no == 1) continue;  // header
      throw IOError(path + ":" + std::to_string(line_no) + ": not a row of numbers");
    }
    if (cols < 0) cols = static_cast<int64_t>(row.size());
    if (static_cast<int64_t>(row.size()) != cols)
      throw IOError(path + ":" + std::to_string(line_no) + ": expected " + std::to_string(cols) + " columns, found " +
                    std::to_string(row.size()));
    values.insert(values.end(), row.begin(), row.end());
    ++rows;
  }
  if (rows == 0) throw IOError(path + ": no data rows");
  return at::tensor(values, at::TensorOptions().dtype(at::kDouble)).reshape({rows, cols});
}

void check_finite(const at::Tensor& x, const std::string& what) {
  const at::Tensor bad = at::logical_not(at::isfinite(x)).reshape({x.size(0), -1}).any(1);
  if (bad.any().item<bool>()) {
    const int64_t row = bad.nonzero()[0][0].item<int64_t>();
    throw InvalidArgument(what + " contains NaN or Inf (first at row " + std::to_string(row) + ")");
  }
}

void check_data_rows(const at::Tensor& x, const std::string& what, int64_t min_rows, bool allow_nan) {
  if (x.dim() < 2)
    throw InvalidArgument(what + ": expected an array of shape [N, D] (or [N, ...]), got rank " + std::to_string(x.dim()));
  if (x.size(0) < min_rows)
    throw InvalidArgument(what + ": has " + std::to_string(x.size(0)) + " rows, need at least " + std::to_string(min_rows));
  if (x.numel() == 0) throw InvalidArgument(what + ": has no values");
  if (!allow_nan) check_finite(x, what);
  const at::Tensor magnitude = x.abs();  // in the data's own type: no double copy of a large dataset
  const double largest = at::where(at::isfinite(magnitude), magnitude, 0.0).max().item<double>();
  if (largest > kMaxMagnitude) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3g", largest);
    throw InvalidArgument(what + ": holds values as large as " + text +
                          ", beyond what float32 training handles (above 1e30); rescale the data");
  }
}

at::Tensor load_data_file(const std::string& path, int64_t min_rows, bool keep_double, bool allow_nan) {
  at::Tensor x;
  if (ends_with(path, ".npy")) x = read_npy(path, keep_double);
  else if (ends_with(path, ".csv") || ends_with(path, ".txt")) x = keep_double ? read_csv(path) : read_csv(path).to(at::kFloat);
  else if (is_cifar10_file(path)) x = read_cifar10(path);
  else if (is_idx_file(path)) x = read_idx(path);
  else if (!std::ifstream(path)) throw IOError(path + ": cannot open file");
  else throw InvalidArgument(path + ": unknown data format (expected .npy, .csv, an IDX file or a CIFAR-10 .bin batch)");
  check_data_rows(x, path, min_rows, allow_nan);
  return x;
}

}  // namespace sbgm
