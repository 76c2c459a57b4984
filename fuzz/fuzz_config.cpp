// TOML run configs (`--config`, and the config inside every checkpoint).
#include "fuzz_input.hpp"
#include "sbgm/run/run_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sbgm::fuzz::expect_clean([&] {
    sbgm::RunConfig config;
    config.merge_toml(std::string(reinterpret_cast<const char*>(data), size), "input.toml");
    config.validate();
    sbgm::RunConfig again;
    again.merge_toml(config.to_toml(), "round trip");
  });
  return 0;
}
