#include "sbgm/util/autocast.hpp"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "sbgm/util/enum_names.hpp"

// LibTorch 2.4 replaced the per-device functions (set_enabled for CUDA, set_cpu_enabled, ...)
// by ones that take the device type; the old names are deprecated there.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define SBGM_AUTOCAST_BY_DEVICE_TYPE 1
#else
#define SBGM_AUTOCAST_BY_DEVICE_TYPE 0
#endif

namespace sbgm {
namespace {

constexpr EnumNames<Precision, 2> kPrecisionNames{{{Precision::Float32, "float32"}, {Precision::BFloat16, "bfloat16"}}};

bool autocast_enabled(c10::DeviceType device) {
#if SBGM_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

void set_autocast(c10::DeviceType device, bool enabled, c10::ScalarType dtype) {
#if SBGM_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_dtype(device, dtype);
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

c10::ScalarType autocast_dtype(c10::DeviceType device) {
#if SBGM_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                         : at::autocast::get_autocast_cpu_dtype();
#endif
}

}  // namespace

std::string to_string(Precision p) { return enum_to_string(p, kPrecisionNames); }
Precision precision_from_string(const std::string& s) {
  if (s == "fp32") return Precision::Float32;
  if (s == "bf16") return Precision::BFloat16;
  return enum_from_string(s, kPrecisionNames, "precision");
}

AutocastScope::AutocastScope(c10::DeviceType device, Precision precision) : device_(device) {
  if (precision == Precision::Float32) return;
  if (device != c10::DeviceType::CPU && device != c10::DeviceType::CUDA)
    throw InvalidArgument("bfloat16 autocast runs on CPU and CUDA only");
  active_ = true;
  was_enabled_ = autocast_enabled(device);
  was_dtype_ = autocast_dtype(device);
  set_autocast(device, true, c10::ScalarType::BFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(device_, was_enabled_, was_dtype_);
}

}  // namespace sbgm
