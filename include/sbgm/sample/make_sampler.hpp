#pragma once
// Every sampler by name, from one set of options: what the CLI and the benchmarks build from flags.

#include <memory>
#include <optional>
#include <string>

#include "sbgm/sample/edm_heun.hpp"
#include "sbgm/sample/multistep.hpp"
#include "sbgm/sample/predictor_corrector.hpp"
#include "sbgm/sample/sampler.hpp"
#include "sbgm/solvers/ode.hpp"

namespace sbgm {

class SDE;

enum class SamplerKind { EulerMaruyama, PredictorCorrector, Ancestral, ProbabilityFlow, EDMHeun, DDIM, DPMSolverPP2M,
                         DPMSolverPP3M, UniPC };
std::string to_string(SamplerKind kind);  // em, pc, ancestral, ode, edm, ddim, dpmpp2m, dpmpp3m, unipc
SamplerKind sampler_kind_from_string(const std::string& name);
// The few-step solvers of sample/multistep.hpp (one network evaluation per step).
bool is_multistep(SamplerKind kind);
// The samplers that follow any member of the plug-in reverse SDEs' lambda family (em, ddim,
// dpmpp2m), and the member each sampler follows when none is given: 0 (the reverse SDE) for em,
// pc and ancestral, 1 (the probability-flow ODE) for the others.
bool takes_lambda(SamplerKind kind);
double own_lambda(SamplerKind kind);

struct SamplerOptions {
  SamplerKind kind = SamplerKind::EulerMaruyama;
  int64_t steps = 1000;  // em, pc, ancestral, multistep: steps; edm: noise levels; ode: steps of a fixed-step solver
  PredictorKind predictor = PredictorKind::EulerMaruyama;  // pc
  int64_t corrector_steps = 1;                             // pc
  double snr = 0.16;                                       // pc
  SolverConfig solver;                                     // ode (its steps are taken from `steps`)
  EDMHeunConfig edm;                                       // edm (its steps are taken from `steps`)
  MultistepConfig multistep;  // ddim, dpmpp2m, dpmpp3m, unipc (method and steps are taken from `kind`, `steps`)
  // em, ddim, dpmpp2m: the plug-in reverse SDE's lambda (0: the reverse SDE, 1: the probability-
  // flow ODE); unset, each sampler's own (em 0, the multistep solvers 1).
  std::optional<double> lambda;
};

// Throws InvalidArgument naming the bad option.
std::unique_ptr<Sampler> make_sampler(const SamplerOptions& options);

// Whether the sampler draws no fresh noise after its start, so that its draws follow the
// probability-flow ODE (by a solver of it, or by the score through the path's exact relation to
// the velocity, which gives back the same field): ode, deterministic edm (churn 0), em, ddim and
// dpmpp2m at lambda 1 (ddim with eta 0), dpmpp3m, unipc. Not pc, ancestral or a reverse SDE.
bool follows_the_ode(const SamplerOptions& options);

// The samplers follows_the_ode accepts, in words, for the errors that send a user to them.
extern const char* const samplers_that_follow_the_ode;

// Throws InvalidArgument when the sampler cannot run on sde: every sampler but the ODE and the
// multistep solvers (which need only m(t) and sigma(t)) integrates the reverse SDE (or EDM's noise
// levels), which the linear path of flow matching does not have at t = T (SDE::has_reverse_sde).
void check_sampler_fits(SamplerKind kind, const SDE& sde);

}  // namespace sbgm
