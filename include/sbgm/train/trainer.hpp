#pragma once
// Fits a score network by denoising score matching: batches, loss, backward, clipping, fused
// Adam, EMA and learning-rate schedule, with state that can be saved and restored exactly
// (a resumed run ends with the same weights as an uninterrupted one). Reports through callbacks;
// never prints.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <atomic>
#include <functional>
#include <memory>

#include "sbgm/nets/condition.hpp"
#include "sbgm/nets/net_config.hpp"
#include "sbgm/train/flat_parameters.hpp"
#include "sbgm/train/optimizer.hpp"
#include "sbgm/train/train_config.hpp"

namespace sbgm {

class SDE;
class ScoreNet;

struct TrainProgress {
  int64_t step = 0;         // steps done
  int64_t total_steps = 0;
  double loss = 0;          // mean loss since the previous report
  double lr = 0;
  double steps_per_second = 0;
  double eta_seconds = 0;
};

struct TrainCallbacks {
  std::function<void(const TrainProgress&)> on_progress;  // every log_every steps and at the end
  std::function<void(int64_t step)> on_checkpoint;        // every checkpoint_every steps
  std::function<void(int64_t step)> on_eval;              // every eval_every steps
};

// Everything that changes during training; with the config it determines the rest of the run.
struct TrainState {
  at::Tensor params, ema, exp_avg, exp_avg_sq;  // flat buffers
  int64_t step = 0;
  at::Tensor rng_state;
};

class Trainer {
 public:
  // data: [N, ...] training samples (already scaled); cond: [N, ...] conditions or undefined. The
  // network takes ConditionInput{C, config.cond_dropout > 0}.net_dim() condition features.
  // ema_net: a network of the same architecture whose weights become the EMA (may be null).
  Trainer(std::shared_ptr<ScoreNet> net, std::shared_ptr<ScoreNet> ema_net, std::shared_ptr<const SDE> sde,
          Parameterization output, TrainConfig config, at::Tensor data, at::Tensor cond = {});

  enum class Outcome { Finished, Interrupted };
  // Trains until config.steps, or until *stop becomes true (checked between steps).
  Outcome run(const TrainCallbacks& callbacks = {}, const std::atomic<bool>* stop = nullptr);
  // One optimisation step; returns the loss (a 0-d tensor, not synchronised).
  at::Tensor step();

  int64_t step_count() const { return step_; }
  // The batch the last step trained on (model space, after augmentation).
  const at::Tensor& last_batch() const { return batch_; }
  const TrainConfig& config() const { return config_; }
  TrainState state() const;
  void restore(const TrainState& state);

 private:
  void next_batch();
  void sync_ema();

  std::shared_ptr<ScoreNet> net_, ema_net_;
  std::shared_ptr<const SDE> sde_;
  Parameterization output_;
  TrainConfig config_;
  at::Tensor data_, cond_;
  ConditionInput condition_;
  FlatParameters flat_;
  at::Tensor ema_;  // the EMA net's flat weights, or a buffer of our own
  std::vector<at::Tensor> buffers_, ema_buffers_;  // floating-point module buffers and their EMA
  FusedAdam adam_;
  at::Generator gen_;
  int64_t step_ = 0;
  // Per-step buffers, allocated once.
  at::Tensor batch_, batch_cond_, keep_, index_, t_, z_;
  at::Tensor epoch_perm_;
  int64_t epoch_ = -1;
};

}  // namespace sbgm
