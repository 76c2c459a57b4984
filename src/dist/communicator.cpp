#include "sbgm/dist/communicator.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdlib>
#include <limits>

#include "sbgm/util/error.hpp"

#ifdef SBGM_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef SBGM_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace sbgm {
namespace {

// The first line of an exception's message: c10d's errors carry stack traces and file names.
std::string first_line(const std::exception& e) {
  std::string s = e.what();
  const auto newline = s.find('\n');
  return newline == std::string::npos ? s : s.substr(0, newline);
}

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::optional<std::string>(v) : std::nullopt;
}

int env_int(const char* name, int lo, int hi) {
  const auto text = env(name);
  if (!text) throw InvalidArgument(std::string(name) + " is not set (a launcher sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)");
  char* end = nullptr;
  const long v = std::strtol(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || v < lo || v > hi)
    throw InvalidArgument(std::string(name) + "=" + *text + ": expected an integer in [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "]");
  return static_cast<int>(v);
}

}  // namespace

std::optional<ProcessGroupEnv> process_group_env_from_environment() {
  if (!env("WORLD_SIZE")) return std::nullopt;
  ProcessGroupEnv e;
  e.world_size = env_int("WORLD_SIZE", 1, 1 << 20);
  e.rank = env_int("RANK", 0, e.world_size - 1);
  e.local_rank = env("LOCAL_RANK") ? env_int("LOCAL_RANK", 0, e.world_size - 1) : e.rank;
  e.local_world_size = env("LOCAL_WORLD_SIZE") ? env_int("LOCAL_WORLD_SIZE", 1, e.world_size) : e.world_size;
  if (e.world_size > 1) {
    const auto addr = env("MASTER_ADDR");
    if (!addr || addr->empty()) throw InvalidArgument("MASTER_ADDR is not set (the address of rank 0)");
    e.master_addr = *addr;
    e.master_port = env_int("MASTER_PORT", 1, 65535);
  }
  return e;
}

#ifdef SBGM_WITH_GLOO
struct Communicator::Group {
  int rank = 0, size = 1;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef SBGM_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif

  // Runs a collective on the group that handles t's device and waits for it.
  template <class Op>
  void run(const at::Tensor& t, const char* what, Op op) const {
    try {
#ifdef SBGM_WITH_NCCL
      if (nccl && t.defined() && t.is_cuda()) {
        op(*nccl)->wait();
        return;
      }
#endif
      op(*gloo)->wait();
    } catch (const std::exception& e) {
      throw DistributedError("rank " + std::to_string(rank) + " of " + std::to_string(size) + ": " + what +
                             " failed, another process died or stopped answering (" + first_line(e) + ")");
    }
  }
};
#else
struct Communicator::Group {
  int rank = 0, size = 1;
};
#endif

Communicator::Communicator() = default;

Communicator Communicator::connect(const ProcessGroupEnv& env, c10::Device device, std::chrono::milliseconds timeout) {
  Communicator comm;
  if (env.world_size <= 1) return comm;
#ifdef SBGM_WITH_GLOO
  auto group = std::make_shared<Group>();
  group->rank = env.rank;
  group->size = env.world_size;
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(env.master_port);
    store_options.isServer = env.rank == 0;
    store_options.numWorkers = env.world_size;
    store_options.timeout = timeout;
    group->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // A job on loopback stays on loopback; otherwise Gloo picks the interface this host's name
    // resolves to, as torch.distributed does.
    const bool loopback = env.master_addr == "127.0.0.1" || env.master_addr == "localhost";
    options->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                        : c10d::ProcessGroupGloo::createDefaultDevice());
    group->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, env.rank, env.world_size, options);
#ifdef SBGM_WITH_NCCL
    if (device.is_cuda()) {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = timeout;
      group->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("nccl", group->store), env.rank, env.world_size, nccl_options);
    }
#endif
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                           ": could not join the job at " + where + " (" + first_line(e) + ")");
  }
  comm.group_ = std::move(group);
  return comm;
#else
  (void)device;
  (void)timeout;
  throw InvalidArgument("this build of sbgm has no Gloo process groups (rebuild with libgloo-dev installed) and "
                        "cannot run " + std::to_string(env.world_size) + " processes");
#endif
}

bool Communicator::processes_supported() {
#ifdef SBGM_WITH_GLOO
  return true;
#else
  return false;
#endif
}

int Communicator::rank() const { return group_ ? group_->rank : 0; }
int Communicator::size() const { return group_ ? group_->size : 1; }

void Communicator::broadcast(at::Tensor& t) const {
  if (size() == 1) return;
#ifdef SBGM_WITH_GLOO
  std::vector<at::Tensor> tensors{t};
  group_->run(t, "broadcast", [&](auto& pg) { return pg.broadcast(tensors); });
#endif
}

void Communicator::all_reduce_sum(const std::vector<at::Tensor>& tensors) const {
  if (size() == 1 || tensors.empty()) return;
#ifdef SBGM_WITH_GLOO
  // One work item per bucket, all in flight before the first wait.
  std::vector<std::vector<at::Tensor>> lists;
  lists.reserve(tensors.size());
  for (const auto& t : tensors) lists.push_back({t});
  group_->run(tensors.front(), "all-reduce", [&](auto& pg) {
    std::vector<decltype(pg.allreduce(lists.front()))> works;
    for (auto& l : lists) works.push_back(pg.allreduce(l));
    for (size_t i = 0; i + 1 < works.size(); ++i) works[i]->wait();
    return works.back();
  });
#endif
}

at::Tensor Communicator::all_gather(const at::Tensor& t) const {
  if (size() == 1) return t.unsqueeze(0);
#ifdef SBGM_WITH_GLOO
  // The process group's threads write the outputs outside any InferenceMode, which they may
  // only do to ordinary tensors.
  c10::InferenceMode ordinary_tensors(false);
  const at::Tensor input = t.contiguous();
  std::vector<at::Tensor> inputs{input};
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < size(); ++r) outputs[0].push_back(at::empty_like(input));
  group_->run(input, "all-gather", [&](auto& pg) { return pg.allgather(outputs, inputs); });
  return at::stack(outputs[0]);
#else
  return t.unsqueeze(0);
#endif
}

void Communicator::barrier() const {
  if (size() == 1) return;
#ifdef SBGM_WITH_GLOO
  group_->run(at::Tensor(), "barrier", [&](auto& pg) { return pg.barrier(); });
#endif
}

ChunkRange chunks_of_rank(int64_t n, int64_t chunk, int rank, int size) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  const int64_t base = chunks / size, extra = chunks % size;
  ChunkRange r;
  r.first_chunk = rank * base + std::min<int64_t>(rank, extra);
  r.end_chunk = r.first_chunk + base + (rank < extra ? 1 : 0);
  r.begin = std::min(n, r.first_chunk * chunk);
  r.end = std::min(n, r.end_chunk * chunk);
  return r;
}

at::Tensor gather_rows(const Communicator& comm, const at::Tensor& local, int64_t n, int64_t chunk) {
  if (comm.size() == 1) return local;
  c10::InferenceMode ordinary_tensors(false);  // see all_gather
  // Every rank's rows padded to the most any rank has, gathered, and the padding dropped.
  const int64_t chunks = (n + chunk - 1) / chunk;
  const int64_t most = ((chunks + comm.size() - 1) / comm.size()) * chunk;
  std::vector<int64_t> shape = local.sizes().vec();
  shape[0] = most;
  at::Tensor padded = at::zeros(shape, local.options());
  padded.narrow(0, 0, local.size(0)).copy_(local);
  const at::Tensor all = comm.all_gather(padded);
  std::vector<at::Tensor> parts;
  for (int r = 0; r < comm.size(); ++r) {
    const ChunkRange range = chunks_of_rank(n, chunk, r, comm.size());
    parts.push_back(all[r].narrow(0, 0, range.end - range.begin));
  }
  return at::cat(parts);
}

}  // namespace sbgm
