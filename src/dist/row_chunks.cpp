#include "sbgm/dist/row_chunks.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {
namespace {

// One seed for each of `chunks` chunks, drawn from gen (the same on every rank).
std::vector<uint64_t> chunk_seeds(at::Generator gen, int64_t chunks, const at::TensorOptions& options) {
  const at::Tensor drawn =
      at::randint(std::numeric_limits<int64_t>::max(), {chunks}, gen, options.dtype(at::kLong)).cpu();
  const int64_t* p = drawn.data_ptr<int64_t>();
  return std::vector<uint64_t>(p, p + chunks);
}

}  // namespace

RowChunks::RowChunks(int64_t n, int64_t chunk_rows, at::Generator gen, const at::TensorOptions& options,
                     const Communicator& comm)
    : n_(n), chunk_(std::min(chunk_rows, n)), device_(options.device()), comm_(comm) {
  if (n < 1) throw InvalidArgument("there must be at least one row, got " + std::to_string(n));
  if (chunk_rows < 1) throw InvalidArgument("a chunk must have at least one row, got " + std::to_string(chunk_rows));
  seeds_ = chunk_seeds(gen, (n_ + chunk_ - 1) / chunk_, options);
  mine_ = chunks_of_rank(n_, chunk_, comm_.rank(), comm_.size());
}

void RowChunks::for_each(const std::function<void(const RowChunk&)>& work, const ProgressFn& progress) const {
  const int64_t total = (mine_.end_chunk - mine_.first_chunk) * kUnitsPerChunk;
  for (int64_t c = mine_.first_chunk; c < mine_.end_chunk; ++c) {
    const int64_t units_before = (c - mine_.first_chunk) * kUnitsPerChunk;
    RowChunk chunk;
    chunk.index = c;
    chunk.start = c * chunk_;
    chunk.rows = std::min(chunk_, n_ - chunk.start);
    chunk.local_start = chunk.start - mine_.begin;
    chunk.seed = seeds_[c];
    chunk.gen = make_generator(device_, chunk.seed);
    // Never backwards, even when a solver's step is rejected and tried again shorter.
    int64_t reported = units_before;
    if (progress) {
      chunk.report = [&reported, &progress, total, units_before](double fraction) {
        const double f = std::clamp(fraction, 0.0, 1.0);
        const int64_t done = units_before + static_cast<int64_t>(std::floor(kUnitsPerChunk * f + 1e-9));
        if (done < reported) return;
        reported = done;
        progress(done, total);
      };
    } else {
      chunk.report = [](double) {};
    }
    work(chunk);
    if (progress) progress(units_before + kUnitsPerChunk, total);
  }
}

at::Tensor RowChunks::gather(const at::Tensor& local) const {
  if (local.size(0) != local_rows())
    throw InvalidArgument("gathering " + std::to_string(local.size(0)) + " rows where this process has " +
                          std::to_string(local_rows()));
  return gather_rows(comm_, local, n_, chunk_);
}

}  // namespace sbgm
