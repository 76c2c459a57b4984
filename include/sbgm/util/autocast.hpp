#pragma once
// Mixed precision by autocast: inside an AutocastScope, matrix products and convolutions on one
// device type run in bfloat16 while the weights, their gradients, the optimiser state and every
// other operation stay in float32 (bfloat16 has float32's exponent range, so no loss scaling is
// needed, unlike float16).

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace sbgm {

enum class Precision { Float32, BFloat16 };
std::string to_string(Precision p);
Precision precision_from_string(const std::string& s);

// Turns autocast on for `device` while alive (nothing at all for Precision::Float32) and restores
// the previous state on exit, dropping the cached bfloat16 copies of the weights when the
// outermost scope closes (they are stale after the optimiser step). Run backward outside it.
class AutocastScope {
 public:
  AutocastScope(c10::DeviceType device, Precision precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_;
  bool active_ = false;
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::ScalarType::Float;
};

}  // namespace sbgm
