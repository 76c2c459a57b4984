#include "sbgm/util/runtime.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <malloc.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <utility>

#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

// Jiffies of all cores together: (busy, total), from /proc/stat's first line; {0, 0} when it
// cannot be read.
std::pair<uint64_t, uint64_t> cpu_jiffies() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  uint64_t v[8] = {};
  if (!(stat >> cpu) || cpu != "cpu") return {0, 0};
  for (uint64_t& x : v) stat >> x;
  if (!stat) return {0, 0};
  uint64_t total = 0;
  for (uint64_t x : v) total += x;
  const uint64_t idle = v[3] + v[4];  // idle and iowait
  return {total - idle, total};
}

// How many of `cores` cores other processes keep busy, measured once per process over a short
// interval while this process waits (so it counts only the others).
int busy_cores(int cores) {
  static const int busy = [cores] {
    const auto [busy0, total0] = cpu_jiffies();
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    const auto [busy1, total1] = cpu_jiffies();
    if (total1 <= total0) return 0;
    const double fraction = static_cast<double>(busy1 - busy0) / static_cast<double>(total1 - total0);
    return static_cast<int>(std::lround(fraction * cores));
  }();
  return busy;
}

// OMP_NUM_THREADS, the variable every OpenMP program and PyTorch honour: its first entry when it is
// a positive whole number, else 0 (unset or unreadable: the idle cores decide).
int threads_from_environment() {
  const char* value = std::getenv("OMP_NUM_THREADS");
  if (!value) return 0;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  if (end == value || (*end != '\0' && *end != ',') || n <= 0 || n > 4096) return 0;
  return static_cast<int>(n);
}

}  // namespace

void configure_threads(int threads) {
  // OpenMP may start with a single thread; 0 means OMP_NUM_THREADS when it is set, else one per
  // idle core. OpenMP's workers spin
  // while they wait for each other, so a worker sharing its core with another process stalls
  // the rest: with one of this machine's two cores busy, two threads trained 2.1x slower than one
  // (docs/benchmarks.md, "A busy machine"). The processes of a job on one machine
  // (LOCAL_WORLD_SIZE, set by torchrun and --nproc) share the cores instead of each taking all of
  // them (they start together, so they do not measure each other).
  if (threads <= 0) threads = threads_from_environment();
  if (threads <= 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const char* local = std::getenv("LOCAL_WORLD_SIZE");
    const int processes = local ? std::max(1, std::atoi(local)) : 1;
    threads = std::max(1, cores / processes);
    if (processes == 1) threads = std::max(1, threads - busy_cores(cores));
  }
  at::set_num_threads(threads);
  at::globalContext().setFlushDenormal(true);
  const int n = at::get_num_threads();
#pragma omp parallel num_threads(n)
  { at::globalContext().setFlushDenormal(true); }
}

void tune_allocator() {
  // 256 MiB: glibc serves anything smaller from the heap and keeps freed memory for reuse.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

at::Generator make_generator(c10::Device device, uint64_t seed) {
  if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Generator gen = at::globalContext().defaultGenerator(c10::Device(device.type(), device.has_index() ? device.index() : 0));
  gen.set_current_seed(seed);
  return gen;
}

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!at::hasCUDA()) throw InvalidArgument("{device} " + name + ": this build or machine has no CUDA");
    try {
      return c10::Device(name);
    } catch (const std::exception&) {
    }
  }
  throw InvalidArgument("unknown device '" + name + "' (expected cpu, cuda or cuda:N)");
}

}  // namespace sbgm
