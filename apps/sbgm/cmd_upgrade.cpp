#include <filesystem>
#include <iostream>
#include <optional>

#include "cli_common.hpp"
#include "commands.hpp"
#include "sbgm/io/run_lock.hpp"
#include "sbgm/run/checkpoint.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm::cli {
// Converts a checkpoint of format 1 (a LibTorch archive, RUN/checkpoint.pt) into the current
// format beside it (RUN/checkpoint.safetensors), read back and checked before it counts; the old file stays.
void add_upgrade_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("upgrade", "convert a checkpoint of an older sbgm (checkpoint.pt) to the current format");
  auto source = std::make_shared<std::string>();
  cmd->add_option("run", *source, "run directory or checkpoint.pt file (read with LibTorch's loader: only files you trust)")
      ->required();
  cmd->callback([&action, source] {
    action = [source]() -> int {
      std::error_code ec;
      const bool directory = std::filesystem::is_directory(*source, ec);
      const std::string old = directory ? *source + "/checkpoint.pt" : *source;
      // RUN/checkpoint.pt -> RUN/checkpoint.safetensors, model.pt -> model.safetensors.
      const bool pt = old.size() > 3 && old.compare(old.size() - 3, 3, ".pt") == 0;
      const std::string target = (pt ? old.substr(0, old.size() - 3) : old) + ".safetensors";
      std::optional<RunLock> lock;
      if (directory) lock.emplace(*source);  // no run trains there meanwhile
      const Checkpoint c = load_legacy_checkpoint(old);
      save_checkpoint(c, target);
      load_checkpoint(target);
      std::cout << "wrote " << target << " (step " << c.state.step << "; " << old << " is kept)\n";
      return 0;
    };
  });
}

}  // namespace sbgm::cli
