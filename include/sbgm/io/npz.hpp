#pragma once
// NumPy .npz archives, as np.savez and np.savez_compressed write them: a zip file whose members
// NAME.npy are .npy arrays (stored or deflated; read through libzip).

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace sbgm {

// Every array of the archive by name (without ".npy"), as float64 CPU tensors. IOError names the
// file and the member when the archive or one of its arrays is malformed.
std::map<std::string, at::Tensor> read_npz(const std::string& path);

}  // namespace sbgm
