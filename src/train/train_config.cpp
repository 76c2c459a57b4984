#include "sbgm/train/train_config.hpp"

#include <cmath>

#include "sbgm/util/enum_names.hpp"

namespace sbgm {
namespace {
constexpr EnumNames<LRSchedule, 3> kScheduleNames{
    {{LRSchedule::Constant, "constant"}, {LRSchedule::Cosine, "cosine"}, {LRSchedule::Auto, "auto"}}};
}

std::string to_string(LRSchedule s) { return enum_to_string(s, kScheduleNames); }
LRSchedule lr_schedule_from_string(const std::string& s) { return enum_from_string(s, kScheduleNames, "lr schedule"); }

void TrainConfig::validate() const {
  if (steps < 1) throw InvalidArgument("train.steps must be at least 1");
  if (schedule == LRSchedule::Auto) throw InvalidArgument("train.schedule: auto is settled by a run; a trainer needs constant or cosine");
  if (batch_size < 1) throw InvalidArgument("train.batch_size must be at least 1");
  if (cond_set < 0) throw InvalidArgument("a set's elements must have at least one feature");
  if (!(std::isfinite(lr) && lr > 0)) throw InvalidArgument("train.lr must be positive");
  if (warmup_steps < 0) throw InvalidArgument("train.warmup_steps must not be negative");
  if (!(min_lr_ratio >= 0 && min_lr_ratio <= 1)) throw InvalidArgument("train.min_lr_ratio must lie in [0, 1]");
  if (!(grad_clip >= 0)) throw InvalidArgument("train.grad_clip must not be negative");
  if (!(cond_dropout >= 0 && cond_dropout < 1)) throw InvalidArgument("train.cond_dropout must lie in [0, 1)");
  if (!(ema_decay >= 0 && ema_decay < 1)) throw InvalidArgument("train.ema_decay must lie in [0, 1)");
  if (log_every < 1) throw InvalidArgument("train.log_every must be at least 1");
  if (!(validation_fraction >= 0 && validation_fraction < 0.5))
    throw InvalidArgument("train.validation_fraction must lie in [0, 0.5)");
  if (patience < 0) throw InvalidArgument("train.patience must not be negative");
  if (validate_every < 0) throw InvalidArgument("train.validate_every must not be negative");
  if (patience > 0 && validation_fraction == 0)
    throw InvalidArgument("train.patience needs held-out rows (train.validation_fraction > 0)");
  if (checkpoint_every < 0) throw InvalidArgument("train.checkpoint_every must not be negative");
  if (eval_every < 0) throw InvalidArgument("train.eval_every must not be negative");
  if (!(adam.beta1 >= 0 && adam.beta1 < 1)) throw InvalidArgument("train.beta1 must lie in [0, 1)");
  if (!(adam.beta2 >= 0 && adam.beta2 < 1)) throw InvalidArgument("train.beta2 must lie in [0, 1)");
  if (!(adam.eps > 0)) throw InvalidArgument("train.eps must be positive");
  if (!(adam.weight_decay >= 0)) throw InvalidArgument("train.weight_decay must not be negative");
}

double TrainConfig::lr_at(int64_t step) const {
  if (step < warmup_steps) return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (schedule == LRSchedule::Constant) return lr;
  const int64_t decay_steps = std::max<int64_t>(steps - warmup_steps, 1);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / decay_steps);
  return lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + std::cos(M_PI * progress)));
}

}  // namespace sbgm
