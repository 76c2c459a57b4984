#include "sbgm/util/runtime.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <malloc.h>
#include <omp.h>

#include <string>
#include <cstdlib>
#include <thread>

#include "sbgm/util/error.hpp"

namespace sbgm {

void configure_threads(int threads) {
  // OpenMP may start with a single thread; 0 means one per core, as the user would expect, and
  // the processes of a job on one machine (LOCAL_WORLD_SIZE, set by torchrun and --nproc) share
  // the cores instead of each taking all of them.
  if (threads <= 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const char* local = std::getenv("LOCAL_WORLD_SIZE");
    const int processes = local ? std::max(1, std::atoi(local)) : 1;
    threads = std::max(1, cores / processes);
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
  at::Generator gen = at::detail::getCUDAHooks().getDefaultCUDAGenerator(device.has_index() ? device.index() : 0);
  gen.set_current_seed(seed);
  return gen;
}

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!at::hasCUDA()) throw InvalidArgument("--device " + name + ": this build or machine has no CUDA");
    try {
      return c10::Device(name);
    } catch (const std::exception&) {
    }
  }
  throw InvalidArgument("unknown device '" + name + "' (expected cpu, cuda or cuda:N)");
}

}  // namespace sbgm
