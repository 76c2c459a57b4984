#pragma once
// What every subcommand of the CLI shares: progress rendering, Ctrl-C, the run-config flags.

#include <CLI/CLI.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sbgm/run/model.hpp"
#include "sbgm/run/run_config.hpp"
#include "sbgm/sample/make_sampler.hpp"
#include "sbgm/solvers/ode.hpp"
#include "sbgm/train/trainer.hpp"

namespace sbgm::cli {

// Set by SIGINT/SIGTERM once install_interrupt_handler() ran; a second Ctrl-C exits at once.
extern std::atomic<bool> g_interrupted;
void install_interrupt_handler();

// True when standard error is a terminal (progress is drawn only then).
bool progress_enabled();

// Renders "label [####....] 42% (done/total) ETA" on one terminal line, throttled.
class ProgressLine {
 public:
  explicit ProgressLine(std::string label);
  ~ProgressLine();
  void update(int64_t done, int64_t total, const std::string& extra = "");
  void finish();

 private:
  std::string label_;
  double start_, last_draw_ = -1;
  bool drawn_ = false;
};

void print_train_progress(const TrainProgress& p, ProgressLine& line);
std::string format_duration(double seconds);

// How this invocation names the settings that library errors mention as {key} (util/error.hpp):
// by the flags that set them. Request parameters ({probes}, {lambda}, ...) have their flags, a
// config key with a shortcut flag its shortcut (add_shortcut registers it), and any other config
// key stays as written (a config file's spelling; train also takes it as --key). A command that
// spells a key its own way says so with name_setting before its work (the --gmm SDE flags).
void name_setting(const std::string& key, const std::string& flag);
std::string flag_for(const std::string& key);

// --precision, for the commands that sample (never for likelihoods, which stay full precision).
void add_precision_option(CLI::App& cmd, std::string& precision);

// --set-orders, for the commands that evaluate a model whose condition may be a declared set.
void add_set_orders_option(CLI::App& cmd, int64_t& set_orders);
// --support-draws (run/model.hpp, kSupportDraws by default); the option, to tell whether it was given.
CLI::Option* add_support_draws_option(CLI::App& cmd, int64_t& draws);

// Registers --section.key for every config key (and --set KEY=VALUE); apply() writes the ones given.
class ConfigFlags {
 public:
  void add_to(CLI::App& app);
  // Shortcut flags (--steps, --lr, ...) map to keys; call before add_to's options are parsed.
  void add_shortcut(CLI::App& app, const std::string& flag, const std::string& key, const std::string& help);
  void apply(RunConfig& config) const;
  bool given(const std::string& key) const;

 private:
  std::map<std::string, std::string> values_;  // key -> value as given
  std::vector<std::string> sets_;
};

// The ODE solver's flags, defined once for every command that integrates the probability flow:
// --solver, --controller, --rtol, --atol, --max-steps (fixed-step counts stay with each command).
struct SolverFlags {
  std::string solver = "dopri5", controller = "pi", error_control = "batch";
  SolverConfig config;
  // context prefixes each help text, e.g. "ode" for sample's options that only --sampler ode reads.
  void add_to(CLI::App& cmd, const std::string& context = "");
  // config with the named solver and controller (throws InvalidArgument on unknown names).
  SolverConfig resolve() const;
};

// The multistep solvers' flags (ddim, dpmpp2m, dpmpp3m, unipc): --schedule, --eta, --order, the
// restarts' --restarts, --restart-steps and --restart-range, and
// the plug-in reverse SDE's --lambda (also em's) and --ode-range. The karras schedule's curvature is --rho, shared
// with edm.
struct MultistepFlags {
  std::string schedule = "auto";
  std::vector<double> restart_range{Restart{}.low, Restart{}.high};
  std::vector<double> ode_range;  // empty: none
  MultistepConfig config;
  double lambda = 0;
  CLI::Option* lambda_option = nullptr;
  void add_to(CLI::App& cmd);
  // options with these flags' settings (rho from options.edm.rho); InvalidArgument for an unknown
  // schedule (the values are checked with the sampler, make_sampler).
  void apply(SamplerOptions& options) const;
};

// The sampler a command uses: the options its flags set, of the kind named by --sampler (empty:
// the run's own, sample.sampler) with --steps if given, else the steps sampling_for chooses.
SamplerOptions resolve_sampler(const Model& model, SamplerOptions flags, const std::string& name, bool steps_given);

// Fails with InvalidArgument unless path's directory exists and path ends with the extension.
void check_output_path(const std::string& path, const std::string& extension);

}  // namespace sbgm::cli
