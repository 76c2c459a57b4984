#pragma once
// Collectives across the processes of a data-parallel job, on PyTorch's own distributed engine
// (c10d): Gloo process groups for CPU tensors, NCCL for CUDA tensors where the build has it.
// A default-constructed Communicator is a job of one process, for which every collective is the
// identity, so code written for several ranks runs unchanged on one. The c10d headers stay in
// the .cpp: nothing that includes this pays for them.

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sbgm {

// Where this process stands in a job started by a launcher: torchrun's variables RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT (sbgm's --nproc sets
// the same ones).
struct ProcessGroupEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  // processes on this machine (they share its cores)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// The job this process belongs to, from the environment; nullopt when WORLD_SIZE is not set.
// InvalidArgument naming the variable when one is malformed, out of range or missing.
std::optional<ProcessGroupEnv> process_group_env_from_environment();

// A collective could not complete: another process died, stopped answering for longer than the
// timeout, or could not be reached. The message is one line that says which.
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Communicator {
 public:
  // A job of one process.
  Communicator();
  // Joins the job described by env: rank 0 hosts the rendezvous store at master_addr:master_port
  // and the others connect to it. Joining and every later collective wait at most `timeout` for
  // the other processes. CPU tensors go through Gloo; CUDA tensors through NCCL when this build
  // has it, Gloo otherwise.
  static Communicator connect(const ProcessGroupEnv& env, c10::Device device, std::chrono::milliseconds timeout);
  // Whether this build can join jobs of several processes: it needs Gloo's headers at build time
  // (Debian's libgloo-dev; not every PyTorch installation ships them).
  static bool processes_supported();

  int rank() const;
  int size() const;
  bool is_root() const { return rank() == 0; }

  // Tensors given to be written (broadcast, all_reduce_sum) must be ordinary tensors, not
  // InferenceMode ones: the process group's threads write them.
  // Rank 0's values of t, written into t on every rank.
  void broadcast(at::Tensor& t) const;
  // Each tensor (contiguous) replaced in place by its sum over the ranks. The reductions are
  // started together and then awaited, so several buckets travel concurrently.
  void all_reduce_sum(const std::vector<at::Tensor>& tensors) const;
  // Every rank's t (the same shape on each) stacked along a new first axis in rank order:
  // [size, ...t.shape], on every rank.
  at::Tensor all_gather(const at::Tensor& t) const;
  // Returns once every rank has called it.
  void barrier() const;

 private:
  struct Group;
  std::shared_ptr<Group> group_;
};

// The rows [begin, end) of `n` rows, split in chunks of `chunk` rows, that rank `rank` of `size`
// handles: a contiguous run of whole chunks, as even as whole chunks allow. Which generator a
// chunk uses depends only on the chunk, so the result does not depend on the number of ranks.
struct ChunkRange {
  int64_t first_chunk = 0, end_chunk = 0;  // chunks [first_chunk, end_chunk)
  int64_t begin = 0, end = 0;              // rows [begin, end)
};
ChunkRange chunks_of_rank(int64_t n, int64_t chunk, int rank, int size);

// Rows [n_local, ...] that each rank computed for its ChunkRange, concatenated in rank order into
// the [n, ...] of a one-process run, on every rank. local's trailing shape and dtype must agree
// across ranks.
at::Tensor gather_rows(const Communicator& comm, const at::Tensor& local, int64_t n, int64_t chunk);

}  // namespace sbgm
