#pragma once
// How to train: optimiser, schedule, loss, EMA, and how often to log, evaluate and checkpoint.

#include <cstdint>
#include <string>

#include "sbgm/train/dsm_loss.hpp"
#include "sbgm/train/optimizer.hpp"
#include "sbgm/util/autocast.hpp"

namespace sbgm {

// Auto: not a schedule but a request that a run choose one (run/run_defaults.hpp).
enum class LRSchedule { Constant, Cosine, Auto };
std::string to_string(LRSchedule s);
LRSchedule lr_schedule_from_string(const std::string& s);

struct TrainConfig {
  int64_t steps = 20000;
  int64_t batch_size = 256;
  double lr = 1e-3;
  AdamConfig adam;                      // weight_decay > 0 makes it AdamW
  int64_t warmup_steps = 100;           // linear warm-up from 0 to lr
  LRSchedule schedule = LRSchedule::Cosine;
  double min_lr_ratio = 0.0;            // cosine decays to lr * min_lr_ratio at the last step
  double grad_clip = 0.0;               // clip the global gradient norm to this (0: off)
  bool hflip = false;                   // flip images [.., W] left-right with probability 1/2
  // Uniform dequantisation of integer pixel levels: each training value k becomes k + u,
  // u ~ U[0, 1) in level units (level_width in the model's units, set by the run from the pixel
  // scaling), so the model is trained on the density that bits/dim evaluates.
  bool dequantize = false;
  double level_width = 0.0;
  double cond_dropout = 0.0;            // P(a row trains without its condition): classifier-free guidance
  // > 0: each condition is a set of elements of this many features (data.cond_set): every row is
  // drawn with its elements in a random order, so the network learns that their order carries
  // nothing (what a set's training pairs in all orders would teach it).
  int64_t cond_set = 0;
  double ema_decay = 0.999;             // 0: no EMA (EMA weights equal the weights)
  DSMConfig loss;
  // bfloat16: the network's matrix products and convolutions run under bfloat16 autocast; the
  // weights, gradients, optimiser and loss stay float32.
  Precision precision = Precision::Float32;
  // Held-out rows (a fraction of the data chosen by the seed, never trained on): their loss
  // under the EMA weights is measured every validate_every steps, the best weights are kept, and
  // with patience > 0 training stops after that many validations without improvement.
  double validation_fraction = 0.0;
  int64_t patience = 0;
  int64_t validate_every = 0;           // steps between validations (0: at every log step)
  uint64_t seed = 0;
  int64_t log_every = 100;              // loss log rows and progress updates (and validations)
  int64_t checkpoint_every = 5000;      // 0: only at the end
  int64_t eval_every = 0;               // periodic evaluation samples (0: off)
  // A step whose loss or gradient is not finite (a rare bad batch, an overflow under bfloat16)
  // changes nothing — weights, Adam's moments and the EMA stay — and training goes on; the
  // progress counts such steps. Off: the first one stops the run (training_run says it diverged).
  bool skip_nonfinite = false;

  void validate() const;
  // The learning rate at a given step (0-based): warm-up, then constant or cosine decay.
  double lr_at(int64_t step) const;
};

}  // namespace sbgm
