// sbgm: fit score-based diffusion models, sample from them, inspect checkpoints.
// Every error ends here: one line on stderr and a non-zero exit code.

#include <c10/util/Exception.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <new>
#include <string>

#include "cli_common.hpp"
#include "commands.hpp"
#include "job.hpp"
#include "sbgm/util/error.hpp"

namespace {

// LibTorch's messages, on one line: an allocation that failed says so plainly; otherwise the
// first line of the message.
std::string library_error_line(const std::string& what) {
  const auto bytes = what.find("you tried to allocate ");
  if (what.find("not enough memory") != std::string::npos || bytes != std::string::npos) {
    std::string line = "out of memory";
    if (bytes != std::string::npos) {
      const double n = std::atof(what.c_str() + bytes + 22);
      char text[64];
      std::snprintf(text, sizeof text, " (an allocation of %.3g GB failed)", n / 1e9);
      line += text;
    }
    return line + "; a smaller --batch-size, --chunk or model may fit";
  }
  return what.substr(0, what.find('\n'));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sbgm: score-based generative models (train, sample, loglik, info)", "sbgm"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sbgm 0.1.0");
  sbgm::cli::remember_command_line(argc, argv);
  sbgm::cli::Action action;
  sbgm::cli::add_train_command(app, action);
  sbgm::cli::add_sample_command(app, action);
  sbgm::cli::add_loglik_command(app, action);
  sbgm::cli::add_inpaint_command(app, action);
  sbgm::cli::add_diagnose_command(app, action);
  sbgm::cli::add_info_command(app, action);
  sbgm::cli::add_upgrade_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "sbgm: error: " << e.what() << " (see sbgm --help)\n";
    return 2;
  }
  try {
    return action ? action() : 2;
  } catch (const sbgm::InvalidArgument& e) {
    if (!sbgm::cli::quiet_about_input_errors())
      std::cerr << "\nsbgm: error: " << e.worded(sbgm::cli::flag_for) << "\n";
    return 2;
  } catch (const sbgm::IOError& e) {
    if (!sbgm::cli::quiet_about_input_errors()) std::cerr << "\nsbgm: error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "\nsbgm: error: " << library_error_line(e.what_without_backtrace()) << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "\nsbgm: error: out of memory (a smaller --batch-size, --chunk or model may fit)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "\nsbgm: error: " << e.what() << "\n";
    return 1;
  }
}
