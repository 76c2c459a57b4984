#include "sbgm/sample/make_sampler.hpp"

#include "sbgm/sample/ancestral.hpp"
#include "sbgm/sample/euler_maruyama.hpp"
#include "sbgm/sample/probability_flow.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/enum_names.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<SamplerKind, 9> kSamplerNames{{{SamplerKind::EulerMaruyama, "em"},
                                                   {SamplerKind::PredictorCorrector, "pc"},
                                                   {SamplerKind::Ancestral, "ancestral"},
                                                   {SamplerKind::ProbabilityFlow, "ode"},
                                                   {SamplerKind::EDMHeun, "edm"},
                                                   {SamplerKind::DDIM, "ddim"},
                                                   {SamplerKind::DPMSolverPP2M, "dpmpp2m"},
                                                   {SamplerKind::DPMSolverPP3M, "dpmpp3m"},
                                                   {SamplerKind::UniPC, "unipc"}}};
}  // namespace

std::string to_string(SamplerKind kind) { return enum_to_string(kind, kSamplerNames); }
SamplerKind sampler_kind_from_string(const std::string& name) { return enum_from_string(name, kSamplerNames, "sampler"); }

bool is_multistep(SamplerKind kind) {
  return kind == SamplerKind::DDIM || kind == SamplerKind::DPMSolverPP2M || kind == SamplerKind::DPMSolverPP3M ||
         kind == SamplerKind::UniPC;
}

void check_sampler_fits(SamplerKind kind, const SDE& sde) {
  if (kind == SamplerKind::ProbabilityFlow || is_multistep(kind) || sde.has_reverse_sde()) return;
  throw InvalidArgument("the " + to_string(kind) + " sampler needs a reverse SDE, which the " + to_string(sde.kind()) +
                        " path (flow matching) does not have at t = T: sample it with the ode sampler or a "
                        "multistep one (ddim, dpmpp2m, dpmpp3m, unipc)");
}

bool takes_lambda(SamplerKind kind) {
  return kind == SamplerKind::EulerMaruyama || kind == SamplerKind::DDIM || kind == SamplerKind::DPMSolverPP2M ||
         kind == SamplerKind::UniPC;
}

double own_lambda(SamplerKind kind) {
  const bool reverse_sde = kind == SamplerKind::EulerMaruyama || kind == SamplerKind::PredictorCorrector ||
                           kind == SamplerKind::Ancestral;
  return reverse_sde ? 0.0 : 1.0;
}

const char* const samplers_that_follow_the_ode =
    "ode; em, ddim (eta 0), dpmpp2m or unipc at lambda 1; dpmpp3m; edm without churn";

bool follows_the_ode(const SamplerOptions& o) {
  const double lambda = o.lambda.value_or(is_multistep(o.kind) ? o.multistep.lambda : own_lambda(o.kind));
  switch (o.kind) {
    case SamplerKind::ProbabilityFlow:
    case SamplerKind::DPMSolverPP3M:
      return true;
    case SamplerKind::EDMHeun:
      return o.edm.churn == 0;
    case SamplerKind::EulerMaruyama:
    case SamplerKind::DPMSolverPP2M:
    case SamplerKind::UniPC:
      return lambda == 1;
    case SamplerKind::DDIM:
      return lambda == 1 && o.multistep.eta == 0;
    case SamplerKind::PredictorCorrector:
    case SamplerKind::Ancestral:
      return false;
  }
  return false;
}

std::unique_ptr<Sampler> make_sampler(const SamplerOptions& o) {
  if (o.lambda && !takes_lambda(o.kind))
    throw InvalidArgument("{lambda} applies to the em, ddim, dpmpp2m and unipc samplers only");
  if (o.multistep.restart.times > 0 && !is_multistep(o.kind))
    throw InvalidArgument("{restarts} apply to the ddim, dpmpp2m, dpmpp3m and unipc samplers only");
  if (o.multistep.ode_range && !is_multistep(o.kind))
    throw InvalidArgument("{ode_range} applies to the ddim, dpmpp2m and unipc samplers only");
  switch (o.kind) {
    case SamplerKind::EulerMaruyama:
      return std::make_unique<EulerMaruyama>(EulerMaruyamaConfig{o.steps, true, o.lambda.value_or(0.0)});
    case SamplerKind::PredictorCorrector:
      return std::make_unique<PredictorCorrector>(
          PredictorCorrectorConfig{o.steps, o.predictor, o.corrector_steps, o.snr, true});
    case SamplerKind::Ancestral:
      return std::make_unique<AncestralSampler>(AncestralConfig{o.steps, true});
    case SamplerKind::ProbabilityFlow: {
      SolverConfig solver = o.solver;
      solver.steps = o.steps;
      return std::make_unique<ProbabilityFlowSampler>(solver);
    }
    case SamplerKind::EDMHeun: {
      EDMHeunConfig edm = o.edm;
      edm.steps = o.steps;
      return std::make_unique<EDMHeunSampler>(edm);
    }
    case SamplerKind::DDIM:
    case SamplerKind::DPMSolverPP2M:
    case SamplerKind::DPMSolverPP3M:
    case SamplerKind::UniPC: {
      MultistepConfig multistep = o.multistep;
      multistep.steps = o.steps;
      if (o.lambda) multistep.lambda = *o.lambda;
      multistep.method = o.kind == SamplerKind::DDIM            ? MultistepMethod::DDIM
                         : o.kind == SamplerKind::DPMSolverPP2M ? MultistepMethod::DPMSolverPP2M
                         : o.kind == SamplerKind::DPMSolverPP3M ? MultistepMethod::DPMSolverPP3M
                                                                : MultistepMethod::UniPC;
      return std::make_unique<MultistepSampler>(multistep);
    }
  }
  return nullptr;
}

}  // namespace sbgm
