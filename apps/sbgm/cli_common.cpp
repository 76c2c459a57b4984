#include "cli_common.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "job.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/sample_request.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm::cli {

std::atomic<bool> g_interrupted{false};

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

extern "C" void on_signal(int sig) {
  if (g_interrupted.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}
}  // namespace

void install_interrupt_handler() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

bool progress_enabled() { return ::isatty(STDERR_FILENO) == 1 && !is_secondary_rank(); }

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  const long t = std::lround(s);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%02ld:%02ld", t / 60, t % 60);
  return buf;
}

ProgressLine::ProgressLine(std::string label) : label_(std::move(label)), start_(now()) {}
ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(int64_t done, int64_t total, const std::string& extra) {
  if (!progress_enabled()) return;
  const double t = now();
  if (done < total && t - last_draw_ < 0.1) return;
  last_draw_ = t;
  const double frac = total > 0 ? static_cast<double>(done) / total : 1.0;
  const int width = 24, filled = static_cast<int>(frac * width);
  const double elapsed = t - start_;
  const double eta = frac > 0 ? elapsed * (1 - frac) / frac : -1;
  std::string bar(filled, '#');
  bar.append(width - filled, '.');
  std::fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %lld/%lld %s ETA %s", label_.c_str(), bar.c_str(), frac * 100,
               static_cast<long long>(done), static_cast<long long>(total), extra.c_str(), format_duration(eta).c_str());
  drawn_ = true;
}

void ProgressLine::finish() {
  if (drawn_) std::fputc('\n', stderr);
  drawn_ = false;
}

void print_train_progress(const TrainProgress& p, ProgressLine& line) {
  char extra[192];
  int used = std::snprintf(extra, sizeof extra, "loss %.4g lr %.2e %.3g it/s %.3g samples/s", p.loss, p.lr,
                           p.steps_per_second, p.samples_per_second);
  if (std::isfinite(p.validation_loss) && used > 0 && used < static_cast<int>(sizeof extra))
    std::snprintf(extra + used, sizeof extra - used, " held-out %.4g (best at %lld)", p.validation_loss,
                  static_cast<long long>(p.best_step));
  line.update(p.step, p.total_steps, extra);
}

namespace {

std::map<std::string, std::string>& setting_flags() {
  static std::map<std::string, std::string> flags{
      {"bound", "--bound"},       {"churn", "--churn"},         {"cond", "--cond"},
      {"data", "--data"},         {"device", "--device"},       {"draws", "--draws"},
      {"eta", "--eta"},           {"grid", "--grid"},           {"guidance", "--guidance"},
      {"lambda", "--lambda"},     {"levels", "--levels"},       {"mask", "--mask"},
      {"method", "--method"},     {"noise_std", "--noise-std"}, {"order", "--order"},
      {"precision", "--precision"}, {"out", "--out"},           {"prior", "--prior"},
      {"probes", "--probes"},     {"range", "--range"},         {"rho", "--rho"},
      {"restarts", "--restarts"}, {"restart_steps", "--restart-steps"}, {"restart_range", "--restart-range"},
      {"ode_range", "--ode-range"},
      {"sampler", "--sampler"},   {"set_orders", "--set-orders"}, {"snr", "--snr"},
      {"support_draws", "--support-draws"}, {"log_prob", "--log-prob"}};
  return flags;
}

}  // namespace

void name_setting(const std::string& key, const std::string& flag) { setting_flags()[key] = flag; }

std::string flag_for(const std::string& key) {
  const auto& flags = setting_flags();
  const auto it = flags.find(key);
  return it == flags.end() ? key : it->second;
}

void ConfigFlags::add_to(CLI::App& app) {
  for (const auto& key : RunConfig::keys()) {
    app.add_option_function<std::string>(
           "--" + key.name, [this, name = key.name](const std::string& v) { values_[name] = v; }, key.help)
        ->group("Config keys (override the config file)");
  }
  app.add_option("--set", sets_, "set any config key: --set section.key=value (repeatable)")
      ->group("Config keys (override the config file)");
}

void ConfigFlags::add_shortcut(CLI::App& app, const std::string& flag, const std::string& key, const std::string& help) {
  name_setting(key, flag);
  app.add_option_function<std::string>(flag, [this, key](const std::string& v) { values_[key] = v; }, help);
}

bool ConfigFlags::given(const std::string& key) const {
  if (values_.count(key)) return true;
  for (const auto& s : sets_)
    if (s.rfind(key + "=", 0) == 0) return true;
  return false;
}

void ConfigFlags::apply(RunConfig& config) const {
  for (const auto& s : sets_) {
    const auto eq = s.find('=');
    if (eq == std::string::npos) throw InvalidArgument("--set expects section.key=value, got '" + s + "'");
    config.set(s.substr(0, eq), s.substr(eq + 1));
  }
  for (const auto& [key, value] : values_) config.set(key, value);
}

void SolverFlags::add_to(CLI::App& cmd, const std::string& context) {
  const std::string pre = context.empty() ? "" : context + ", ";
  cmd.add_option("--solver", solver, pre + "ODE solver: dopri5, tsit5, bosh3, heun, rk4 or euler")->capture_default_str();
  cmd.add_option("--controller", controller,
                 pre + "adaptive step control: pi, or integral (scipy's solve_ivp step for step)")
      ->capture_default_str();
  cmd.add_option("--error-control", error_control,
                 pre + "adaptive solver: row (each point its own steps and error) or batch (one step for all)")
      ->capture_default_str();
  cmd.add_option("--rtol", config.rtol, pre + "adaptive solver: relative tolerance")->capture_default_str();
  cmd.add_option("--atol", config.atol, pre + "adaptive solver: absolute tolerance")->capture_default_str();
  cmd.add_option("--max-steps", config.max_steps, pre + "adaptive solver: give up after this many steps")
      ->capture_default_str();
}

SolverConfig SolverFlags::resolve() const {
  SolverConfig c = config;
  c.kind = solver_kind_from_string(solver);
  c.control = step_control_from_string(controller);
  if (error_control != "row" && error_control != "batch")
    throw InvalidArgument("unknown error control '" + error_control + "' (expected row or batch)");
  c.per_row = error_control == "row";
  return c;
}

void MultistepFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--schedule", schedule,
                 "ddim, dpmpp2m, dpmpp3m, unipc: step times, logsnr (uniform in log-SNR), time (uniform in t) or "
                 "karras (EDM's noise levels, curvature --rho), or adaptive (placed where the model's flow bends, found "
                 "by a 100-step pilot solve of 256 rows); auto: logsnr, time on a flow model's linear path")
      ->capture_default_str();
  cmd.add_option("--eta", config.eta, "ddim: share of fresh noise per step, 0 (deterministic) to 1 (ancestral)")
      ->capture_default_str();
  cmd.add_option("--order", config.order, "unipc: the predictor's order (1-3; the corrector adds one)")
      ->capture_default_str();
  cmd.add_option("--restarts", config.restart.times,
                 "ddim, dpmpp2m, dpmpp3m, unipc on the flow: restart sampling, times the noise is raised from sigma/m = "
                 "low back to high and solved down again (--restart-range, --restart-steps; each costs its steps)")
      ->capture_default_str();
  cmd.add_option("--restart-steps", config.restart.steps, "steps of each restart's solve")->capture_default_str();
  cmd.add_option("--restart-range", restart_range,
                 "LOW,HIGH: the noise-to-signal ratios sigma/m between which the restarts go")
      ->delimiter(',')
      ->expected(2)
      ->capture_default_str();
  lambda_option = cmd.add_option("--lambda", lambda,
                                 "em, ddim, dpmpp2m, unipc: the plug-in reverse SDE dx = [f - (1 - lambda/2) g^2 s] dt + "
                                 "sqrt(1 - lambda) g dw, from 0 (the reverse SDE; em's default) to 1 (the "
                                 "probability-flow ODE; the default of ddim, dpmpp2m and unipc)");
  cmd.add_option("--ode-range", ode_range,
                 "LOW,HIGH: ddim, dpmpp2m, unipc with --lambda below 1: the steps that start at noise-to-signal ratios "
                 "sigma/m in [LOW, HIGH] follow the probability-flow ODE instead (noise above and below; none by default)")
      ->delimiter(',')
      ->expected(2);
}

void MultistepFlags::apply(SamplerOptions& options) const {
  options.multistep = config;
  options.multistep.schedule = step_schedule_from_string(schedule);
  options.multistep.rho = options.edm.rho;
  options.multistep.restart.low = restart_range[0];
  options.multistep.restart.high = restart_range[1];
  if (ode_range.size() == 2) options.multistep.ode_range = std::pair{ode_range[0], ode_range[1]};
  if (lambda_option->count() > 0) options.lambda = lambda;
}

SamplerOptions resolve_sampler(const Model& model, SamplerOptions flags, const std::string& name, bool steps_given) {
  SampleRequest request;
  request.sampler = name;
  request.sampling = flags;
  request.steps_given = steps_given;
  return resolve_sampling(model, request);
}

void check_output_path(const std::string& path, const std::string& extension) {
  if (path.size() < extension.size() || path.compare(path.size() - extension.size(), extension.size(), extension) != 0)
    throw InvalidArgument(path + ": output file must end in " + extension);
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw InvalidArgument(path + ": directory " + dir + " does not exist");
}

void add_precision_option(CLI::App& cmd, std::string& precision) {
  cmd.add_option("--precision", precision,
                 "float32, or bfloat16: the network's products and convolutions under autocast (trained networks; "
                 "faster where the hardware has bfloat16, at bfloat16's rounding)")
      ->capture_default_str();
}

CLI::Option* add_support_draws_option(CLI::App& cmd, int64_t& draws) {
  draws = kSupportDraws;
  return cmd
      .add_option("--support-draws", draws,
                  "a model kept within its box by rejection: the draws per condition that estimate the share inside, "
                  "which normalises log p (its error, shared by all rows of a condition, shrinks as one over the root "
                  "of this)")
      ->capture_default_str();
}

void add_set_orders_option(CLI::App& cmd, int64_t& set_orders) {
  cmd.add_option("--set-orders", set_orders,
                 "a model whose condition is a declared set (data.cond_set): average its score over this many "
                 "orders of the set's elements (all of them when there are no more), at as many network "
                 "evaluations")
      ->capture_default_str();
}

}  // namespace sbgm::cli
