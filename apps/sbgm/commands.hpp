#pragma once
// One function per subcommand: registers its options on the app and sets what it runs.

#include <CLI/CLI.hpp>

#include <functional>

namespace sbgm::cli {

// The action a parsed command line asks for; returns the process exit code.
using Action = std::function<int()>;

void add_train_command(CLI::App& app, Action& action);
void add_sample_command(CLI::App& app, Action& action);
void add_info_command(CLI::App& app, Action& action);
void add_loglik_command(CLI::App& app, Action& action);
void add_inpaint_command(CLI::App& app, Action& action);
void add_diagnose_command(CLI::App& app, Action& action);
void add_upgrade_command(CLI::App& app, Action& action);

}  // namespace sbgm::cli
