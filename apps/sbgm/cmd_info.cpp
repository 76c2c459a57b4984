#include <iostream>
#include <sstream>

#include "cli_common.hpp"
#include "commands.hpp"
#include "model_source.hpp"
#include "sbgm/data/gaussian_mixture.hpp"
#include "sbgm/run/trained_model.hpp"

namespace sbgm::cli {
namespace {

void print_shape(const std::vector<int64_t>& shape) {
  std::cout << "data shape: [";
  for (size_t i = 0; i < shape.size(); ++i) std::cout << (i ? ", " : "") << shape[i];
  std::cout << "]\n";
}

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::string bounds_text(const Model& m) {
  const bool mapped = !m.bounds.none();
  const Bounds& b = mapped ? m.bounds : m.support;
  if (b.none()) return "none";
  std::string text;
  const int64_t n = b.lower.numel(), shown = std::min<int64_t>(n, 8);
  for (int64_t i = 0; i < shown; ++i)
    text += std::string(i ? ", " : "") + "[" + number_text(b.lower[i].item<double>()) + ", " +
            number_text(b.upper[i].item<double>()) + "]";
  if (shown < n) text += ", ... (" + std::to_string(n) + " features)";
  return text + (mapped ? " (modelled through a logit / log map)" : " (samples outside drawn again)");
}

std::string scaling_text(const Model& m) {
  if (m.scaling.is_identity()) return "none";
  if (const auto range = m.config.data.pixel_range(false))
    return "pixel levels 0.." + std::to_string(m.config.data.levels - 1) + " onto [" + number_text((*range)[0]) + ", " +
           number_text((*range)[1]) + "]";
  return "per-feature standardisation";
}

}  // namespace

void add_info_command(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("info", "print what a checkpoint (or an analytic mixture) holds");
  auto source = std::make_shared<ModelSource>();
  source->add_to(*cmd);
  cmd->callback([&action, source] {
    action = [source]() -> int {
      const Model m = source->load(c10::kCPU);
      if (m.analytic()) {
        std::cout << source->describe() << ": " << m.mixture->components() << " Gaussian components\n";
        print_shape(m.data_shape);
        std::cout << "parameters: " << m.parameter_count() << "\n";
        const SDEConfig& s = m.config.sde;
        std::cout << "sde: " << to_string(s.kind);
        if (s.kind == SDEKind::VP || s.kind == SDEKind::SubVP) std::cout << ", beta " << s.beta_min << " to " << s.beta_max;
        if (s.kind == SDEKind::VE) std::cout << ", sigma " << s.sigma_min << " to " << s.sigma_max;
        std::cout << ", T " << s.T << ", t_eps " << s.t_eps << ", prior std " << m.sde->prior_std() << "\n";
        return 0;
      }
      std::cout << "checkpoint: " << checkpoint_path(source->checkpoint()) << "\n";
      std::cout << "step: " << m.step << " of " << m.config.train.steps << "\n";
      print_shape(m.data_shape);
      std::cout << "condition features: " << m.cond_dim << "\n";
      std::cout << "bounds: " << bounds_text(m) << "\n";
      std::cout << "scaling: " << scaling_text(m) << "\n";
      std::cout << "parameters: " << m.parameter_count() << "\n";
      std::cout << "objective: "
                << (objective_of(m.config.model.output) == Objective::Flow ? "flow matching (the network predicts the velocity)"
                                                                            : "denoising score matching")
                << ", " << to_string(m.config.sde.kind) << (m.sde->has_reverse_sde() ? " SDE" : " path") << "\n";
      std::cout << "\n" << m.config.to_toml();
      return 0;
    };
  });
}

}  // namespace sbgm::cli
