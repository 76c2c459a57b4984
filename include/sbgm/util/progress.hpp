#pragma once
// How long work tells its caller how far it has come: one callback shape for sampling,
// likelihoods, inverse problems, diagnostics and the MAP, drawn by the CLI's progress line and
// Python's progress bars alike.

#include <cstdint>
#include <functional>

namespace sbgm {

// Called with (work done, total work) in units the work chooses; done never decreases and ends
// equal to total.
using ProgressFn = std::function<void(int64_t done, int64_t total)>;

}  // namespace sbgm
