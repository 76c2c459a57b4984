#pragma once
// Process-wide numerics and threading settings, and explicit-seed random generators.

#include <ATen/core/Generator.h>
#include <c10/core/Device.h>

#include <cstdint>

namespace sbgm {

// Sets the intra-op thread count (OpenMP and BLAS alike) and flushes denormals to zero on every
// worker thread: denormal activations late in training cost ~2.5x on small networks.
// threads <= 0 means OMP_NUM_THREADS when it is set, else one thread per idle core, shared among
// the processes of a job on this machine (LOCAL_WORLD_SIZE).
void configure_threads(int threads);

// Keeps large temporary buffers mapped between uses instead of returning them to the kernel
// on every free: the sampler's activations are otherwise mapped and unmapped at every step.
void tune_allocator();

// A generator for `device` seeded with `seed` (CUDA: that device's default generator, reseeded).
at::Generator make_generator(c10::Device device, uint64_t seed);

// Parses "cpu" / "cuda" / "cuda:N"; throws InvalidArgument for anything else or when CUDA is
// asked for but this build or machine has none.
c10::Device parse_device(const std::string& name);

}  // namespace sbgm
