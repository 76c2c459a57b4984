#include "model_source.hpp"

#include <algorithm>

#include "cli_common.hpp"
#include "sbgm/data/gaussian_mixture.hpp"
#include "sbgm/run/trained_model.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm::cli {

void ModelSource::add_to(CLI::App& cmd) {
  cmd.add_option("--checkpoint", checkpoint_, "run directory or checkpoint file");
  cmd.add_option("--gmm", gmm_,
                 "instead of a checkpoint: an analytic Gaussian mixture, .npz with weights [K], means [K,D], covs [K,D,D]");
  cmd.add_flag("--raw-weights", raw_weights_, "use the raw weights instead of their EMA");
  cmd.add_option("--dtype", dtype_, "float32 or float64 (default: float32 for a checkpoint, float64 for --gmm)");
  t_eps_ = cmd.add_option("--t-eps", sde_config_.t_eps, "smallest diffusion time (default: the model's sde.t_eps)");
  sde_options_ = {
      cmd.add_option("--sde", sde_, "--gmm: SDE that diffuses the mixture (vp, subvp, ve, cosine), or linear: the straight path of flow matching")->capture_default_str(),
      cmd.add_option("--beta-min", sde_config_.beta_min, "--gmm: VP/SubVP beta_min")->capture_default_str(),
      cmd.add_option("--beta-max", sde_config_.beta_max, "--gmm: VP/SubVP beta_max")->capture_default_str(),
      cmd.add_option("--sigma-min", sde_config_.sigma_min, "--gmm: VE sigma_min")->capture_default_str(),
      cmd.add_option("--sigma-max", sde_config_.sigma_max, "--gmm: VE sigma_max")->capture_default_str(),
      cmd.add_option("--T", sde_config_.T, "--gmm: end time of the diffusion")->capture_default_str(),
  };
}

std::string ModelSource::describe() const { return analytic() ? "mixture " + gmm_ : "run " + checkpoint_; }

Model ModelSource::load(c10::Device device) const {
  if (checkpoint_.empty() == gmm_.empty()) throw InvalidArgument("give exactly one of --checkpoint and --gmm");
  if (!dtype_.empty() && dtype_ != "float32" && dtype_ != "float64")
    throw InvalidArgument("unknown --dtype '" + dtype_ + "' (expected float32 or float64)");
  if (t_eps_->count() > 0) name_setting("sde.t_eps", "--t-eps");
  const auto with_dtype = [this](Model m) {
    if (!dtype_.empty()) m.set_dtype(dtype_ == "float64" ? at::kDouble : at::kFloat);
    return m;
  };
  if (analytic()) {
    if (raw_weights_) throw InvalidArgument("--raw-weights applies only with --checkpoint (a mixture has no weights)");
    SDEConfig sde = sde_config_;
    sde.kind = sde_kind_from_string(sde_);
    for (const char* key : {"beta_min", "beta_max", "sigma_min", "sigma_max", "T"}) {
      std::string flag = std::string("--") + key;  // sde.beta_min is --beta-min here
      std::replace(flag.begin(), flag.end(), '_', '-');
      name_setting(std::string("sde.") + key, flag);
    }
    sde.validate();
    return with_dtype(mixture_model(read_gaussian_mixture(gmm_), sde, device));
  }
  for (const CLI::Option* o : sde_options_)
    if (o->count() > 0)
      throw InvalidArgument(o->get_name() + " applies only with --gmm (a checkpoint keeps the SDE it was trained with)");
  TrainedModel c = load_trained_model(checkpoint_, raw_weights_ ? Weights::Raw : Weights::Averaged);
  if (t_eps_->count() > 0) {
    c.config.sde.t_eps = sde_config_.t_eps;
    c.config.sde.validate();
  }
  return with_dtype(model_from(c, device));
}

}  // namespace sbgm::cli
