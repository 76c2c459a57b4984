#include <ATen/ATen.h>

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli_common.hpp"
#include "commands.hpp"
#include "job.hpp"
#include "model_source.hpp"
#include "sbgm/data/dataset.hpp"
#include "sbgm/io/atomic_file.hpp"
#include "sbgm/plot/plots.hpp"
#include "sbgm/run/diagnose.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm::cli {
namespace {

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream s;
  s << std::setprecision(10) << v;
  return s.str();
}

std::string json_numbers(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json_number(v[i]);
  return out + "]";
}

void write_json(const std::string& path, const CalibrationReport& report, const std::string& model,
                const SamplerOptions& sampling) {
  write_file_atomically(path, [&](std::ostream& out) {
    out << "{\n  \"model\": \"" << model << "\",\n  \"simulations\": " << report.simulations
        << ",\n  \"samples\": " << report.samples << ",\n  \"hpd_samples\": " << report.hpd_samples
        << ",\n  \"sampler\": \"" << to_string(sampling.kind) << "\",\n  \"sampler_steps\": " << sampling.steps
        << ",\n  \"levels\": " << json_numbers(coverage_levels()) << ",\n  \"checks\": [\n";
    for (size_t i = 0; i < report.checks.size(); ++i) {
      const CalibrationCheck& c = report.checks[i];
      out << "    {\"name\": \"" << c.name << "\", \"ks_statistic\": " << json_number(c.test.statistic)
          << ", \"p_value\": " << json_number(c.test.p_value) << ", \"mean_coverage_gap\": " << json_number(c.mean_gap)
          << ", \"verdict\": \"" << verdict(c) << "\", \"coverage\": " << json_numbers(c.coverage) << "}"
          << (i + 1 < report.checks.size() ? "," : "") << "\n";
    }
    out << "  ],\n  \"ranks\": [";
    const at::Tensor ranks = report.ranks.contiguous();
    for (int64_t s = 0; s < ranks.size(0); ++s) {
      out << (s ? ", " : "") << "[";
      for (int64_t d = 0; d < ranks.size(1); ++d) out << (d ? ", " : "") << ranks[s][d].item<int64_t>();
      out << "]";
    }
    out << "]\n}\n";
  });
}

void write_coverage_csv(const std::string& path, const CalibrationReport& report) {
  write_file_atomically(path, [&](std::ostream& out) {
    out << "level";
    for (const auto& c : report.checks) out << "," << c.name;
    out << "\n";
    const std::vector<double> levels = coverage_levels();
    for (size_t i = 0; i < levels.size(); ++i) {
      out << levels[i];
      for (const auto& c : report.checks) out << "," << c.coverage[i];
      out << "\n";
    }
  });
}

}  // namespace

void add_diagnose_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "diagnose", "calibration of a conditional model on held-out simulations: SBC, expected coverage and TARP");
  struct Options {
    ModelSource source;
    std::string theta, cond, out, csv, png, sampler, device = "cpu";
    SolverFlags solver;
    MultistepFlags multistep;
    DiagnoseConfig config;
    int64_t threads = 0;
    uint64_t seed = 0;
    CLI::Option* steps_option = nullptr;
    SamplerOptions sampling;
  };
  auto opt = std::make_shared<Options>();
  opt->source.add_to(*cmd);
  cmd->add_option("--theta", opt->theta, "held-out parameters .npy/.csv [S, D], simulated independently of training")
      ->required();
  cmd->add_option("--cond", opt->cond, "their simulated observations .npy/.csv [S, C]")->required();
  cmd->add_option("--out", opt->out, "report .json: every check's test, coverage curve and verdict, and the ranks")
      ->required();
  cmd->add_option("--csv", opt->csv, "also the coverage curves as .csv (level, then one column per check)");
  cmd->add_option("--png", opt->png, "also the SBC rank histograms and coverage curves as .png");
  cmd->add_option("--samples", opt->config.samples, "posterior samples per simulation")->capture_default_str();
  cmd->add_option("--hpd-samples", opt->config.hpd_samples,
                  "of those, how many get a log-density through the probability-flow ODE for the highest-density "
                  "coverage (0: skip that check)")
      ->capture_default_str();
  add_set_orders_option(*cmd, opt->config.set_orders);
  cmd->add_option("--sampler", opt->sampler,
                  "em, pc, ancestral, ode, edm, ddim, dpmpp2m, dpmpp3m or unipc; default: the run's sample.sampler");
  opt->steps_option = cmd->add_option("--steps", opt->sampling.steps, "sampler steps (default as for sbgm sample)");
  opt->multistep.add_to(*cmd);
  opt->solver.add_to(*cmd, "likelihood");
  cmd->add_option("--seed", opt->seed, "random seed")->capture_default_str();
  cmd->add_option("--device", opt->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--threads", opt->threads, "CPU threads (0: one per core)")->capture_default_str();
  cmd->callback([&action, opt] {
    action = [opt]() -> int {
      check_output_path(opt->out, ".json");
      if (!opt->csv.empty()) check_output_path(opt->csv, ".csv");
      if (!opt->png.empty()) check_output_path(opt->png, ".png");
      DiagnoseRequest request;
      request.steps_given = opt->steps_option->count() > 0;
      if (request.steps_given && opt->sampling.steps < 1) throw InvalidArgument("--steps must be at least 1");
      if (!opt->sampler.empty()) sampler_kind_from_string(opt->sampler);
      if (opt->threads < 0) throw InvalidArgument("--threads must not be negative");
      request.config = opt->config;
      request.config.likelihood.solver = opt->solver.resolve();
      request.config.validate();
      const Job job = join_model_job(opt->device, opt->threads);
      Model model = opt->source.load(parse_device(job.device));
      if (model.cond_dim == 0)
        throw InvalidArgument(opt->source.describe() + " is unconditional: calibration needs a model of p(theta | x)");
      request.theta = load_data_file(opt->theta, 2, /*keep_double=*/true);
      request.x = load_data_file(opt->cond, 2, /*keep_double=*/true);
      if (request.x.size(0) != request.theta.size(0))
        throw InvalidArgument("--theta has " + std::to_string(request.theta.size(0)) + " rows but --cond has " +
                              std::to_string(request.x.size(0)));
      request.sampler = opt->sampler;
      request.sampling = opt->sampling;
      opt->multistep.apply(request.sampling);
      request.seed = opt->seed;
      ProgressLine line("diagnose");
      const Diagnosis diagnosis =
          run_diagnose_request(model, request, [&](int64_t d, int64_t t) { line.update(d, t); });
      line.finish();
      const CalibrationReport& report = diagnosis.report;
      const SamplerOptions& sampling = diagnosis.sampling;
      write_json(opt->out, report, opt->source.describe(), sampling);
      if (!opt->csv.empty()) write_coverage_csv(opt->csv, report);
      if (!opt->png.empty()) {
        std::vector<CoverageCurve> curves;
        for (const auto& c : report.checks)
          if (c.name.rfind("sbc", 0) != 0 || model.data_shape[0] <= 3) curves.push_back({c.name, c.coverage});
        plot_calibration(opt->png, report.ranks, report.samples, coverage_levels(), curves);
      }
      std::printf("%lld held-out simulations, %lld posterior samples each (%s, %lld steps)\n",
                  static_cast<long long>(report.simulations), static_cast<long long>(report.samples),
                  to_string(sampling.kind).c_str(), static_cast<long long>(sampling.steps));
      std::printf("%-16s %10s %10s %10s  %s\n", "check", "KS stat", "p-value", "cov. gap", "verdict");
      for (const auto& c : report.checks)
        std::printf("%-16s %10.4f %10.4g %+10.4f  %s\n", c.name.c_str(), c.test.statistic, c.test.p_value, c.mean_gap,
                    verdict(c).c_str());
      return 0;
    };
  });
}

}  // namespace sbgm::cli
