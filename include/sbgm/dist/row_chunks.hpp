#pragma once
// Work on the rows of a batch, a chunk of rows at a time, shared among the processes of a job:
// the one executor behind sampling, likelihoods and inverse problems. Each chunk draws from its
// own generator, seeded from the caller's generator (the same draws on every rank), the ranks take
// contiguous runs of whole chunks, and the rows every rank computed are gathered in order on
// every rank — so a result depends on the seed and the chunk size, never on how many processes
// shared the work.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

#include "sbgm/dist/communicator.hpp"
#include "sbgm/util/progress.hpp"

namespace sbgm {

// One chunk of rows, as the work sees it.
struct RowChunk {
  int64_t index = 0;        // among all the chunks
  int64_t start = 0;        // its first row among all the rows
  int64_t rows = 0;         // how many rows it has
  int64_t local_start = 0;  // its first row among this rank's rows
  uint64_t seed = 0;        // its own seed
  at::Generator gen;        // a generator on the work's device seeded with `seed`
  // Tells the progress callback how far through this chunk the work is (fraction in [0, 1]).
  std::function<void(double fraction)> report;
};

class RowChunks {
 public:
  // n rows in chunks of chunk_rows (at most n, at least 1); the seeds are drawn from gen on
  // options' device.
  RowChunks(int64_t n, int64_t chunk_rows, at::Generator gen, const at::TensorOptions& options,
            const Communicator& comm = Communicator());

  int64_t rows() const { return n_; }
  int64_t chunk_rows() const { return chunk_; }
  int64_t local_rows() const { return mine_.end - mine_.begin; }
  int64_t local_begin() const { return mine_.begin; }
  const Communicator& comm() const { return comm_; }

  // Runs work on each of this rank's chunks in order. progress hears (done, total) in
  // thousandths of a chunk: what the work reports through RowChunk::report, and each chunk's end.
  void for_each(const std::function<void(const RowChunk&)>& work, const ProgressFn& progress = {}) const;

  // This rank's rows ([local_rows(), ...]) as all the rows ([rows(), ...]) in order, on every rank.
  at::Tensor gather(const at::Tensor& local) const;

  // Progress units per chunk.
  static constexpr int64_t kUnitsPerChunk = 1000;

 private:
  int64_t n_, chunk_;
  at::Device device_;
  std::vector<uint64_t> seeds_;
  ChunkRange mine_;
  Communicator comm_;
};

}  // namespace sbgm
