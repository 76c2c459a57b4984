#include <iostream>
#include <numeric>

#include "cli_common.hpp"
#include "commands.hpp"
#include "sbgm/run/checkpoint.hpp"
#include "sbgm/run/model.hpp"

namespace sbgm::cli {

void add_info_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("info", "print what a checkpoint holds");
  auto checkpoint = std::make_shared<std::string>();
  cmd->add_option("--checkpoint", *checkpoint, "run directory or checkpoint file")->required();
  cmd->callback([&action, checkpoint] {
    action = [checkpoint]() -> int {
      const Checkpoint c = load_checkpoint(*checkpoint);
      const Model m = model_from_checkpoint(c, true, c10::kCPU);
      std::cout << "checkpoint: " << checkpoint_path(*checkpoint) << "\n";
      std::cout << "step: " << c.state.step << " of " << c.config.train.steps << "\n";
      std::cout << "data shape: [";
      for (size_t i = 0; i < c.data_shape.size(); ++i) std::cout << (i ? ", " : "") << c.data_shape[i];
      std::cout << "]\n";
      std::cout << "condition features: " << c.cond_dim << "\n";
      std::cout << "scaling: " << (c.scaling.is_identity() ? "none" : "per-feature standardisation") << "\n";
      std::cout << "parameters: " << m.parameter_count() << "\n";
      std::cout << "\n" << c.config.to_toml();
      return 0;
    };
  });
}

}  // namespace sbgm::cli
