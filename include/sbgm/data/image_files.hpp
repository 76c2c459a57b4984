#pragma once
// Image datasets in their distribution formats, read as float32 pixel levels [N, C, H, W]:
//   IDX (MNIST, Fashion-MNIST; gzipped or not): magic 0x00 0x00 <type> <rank>, big-endian sizes,
//     then the values. A rank-3 file [N, H, W] of images reads as [N, 1, H, W]; a rank-1 file (labels)
//     as [N, 1].
//   CIFAR-10 binary (data_batch_k.bin, test_batch.bin): records of one label byte and 3 x 32 x 32
//     pixel bytes, channel-major; read as [N, 3, 32, 32] (cifar10_labels gives the labels).
// Malformed files (wrong magic, truncated, sizes that disagree) throw IOError naming the file.

#include <ATen/core/Tensor.h>

#include <string>

namespace sbgm {

// Whether path is an IDX file (by its magic number; gzip is looked through).
bool is_idx_file(const std::string& path);
// Whether path names a CIFAR-10 binary batch (by its .bin extension).
bool is_cifar10_file(const std::string& path);

at::Tensor read_idx(const std::string& path);
at::Tensor read_cifar10(const std::string& path);
at::Tensor read_cifar10_labels(const std::string& path);  // [N, 1]

// Images [N, H, W] -> [N, 1, H, W]; [N, C, H, W] as is; any other rank throws InvalidArgument.
at::Tensor as_image_batch(const at::Tensor& x, const std::string& what);

}  // namespace sbgm
