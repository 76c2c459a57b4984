#pragma once
// Fits a score network by denoising score matching: batches, loss, backward, clipping, fused
// Adam, EMA and learning-rate schedule, with state that can be saved and restored exactly
// (a resumed run ends with the same weights as an uninterrupted one). Reports through callbacks;
// never prints.
//
// Data parallel over a Communicator's ranks: every rank draws the same global batch (the same
// generator, seed and state on each) and trains on its own contiguous slice of its rows; the
// gradients are averaged by one all-reduce per bucket, so every rank takes the same optimiser
// step. K steps on W ranks therefore equal K steps of one process with the whole batch, up to
// the order of floating-point sums, and a checkpoint from any number of ranks resumes on any
// other number.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <atomic>
#include <functional>
#include <limits>
#include <memory>

#include "sbgm/dist/communicator.hpp"
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
  double samples_per_second = 0;  // over all ranks
  double eta_seconds = 0;
  // With held-out rows: their loss under the EMA weights now, and the step of the best so far.
  double validation_loss = std::numeric_limits<double>::quiet_NaN();
  int64_t best_step = -1;
  // Steps since the previous report that changed nothing because their loss or gradient was not
  // finite (TrainConfig::skip_nonfinite); loss is the mean over the others (NaN if none).
  int64_t skipped = 0;
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
  // With held-out rows: the EMA weights of the best validation so far (undefined without).
  at::Tensor best_ema;
  double best_loss = std::numeric_limits<double>::infinity();
  int64_t best_step = 0, since_best = 0;  // validations since the best
};

class Trainer {
 public:
  // data: [N, ...] training samples (already scaled); cond: [N, ...] conditions or undefined. The
  // network takes ConditionInput{C, config.cond_dropout > 0}.net_dim() condition features.
  // ema_net: a network of the same architecture whose weights become the EMA (may be null).
  // comm: the ranks that train together; every rank holds the whole data, and rank 0's initial
  // weights are copied to the others. config.batch_size is the global batch and must split
  // evenly over the ranks.
  Trainer(std::shared_ptr<ScoreNet> net, std::shared_ptr<ScoreNet> ema_net, std::shared_ptr<const SDE> sde,
          Parameterization output, TrainConfig config, at::Tensor data, at::Tensor cond = {},
          Communicator comm = Communicator());

  // Held-out rows (model space, like data; conditions when the data has them). Their DSM loss
  // under the EMA weights is measured at every log step with times and noise drawn once (each
  // row repeated so that there are ≥ 4096 draws, up to 64 per row), so the measurements compare; the best EMA weights are kept beside the running ones, and with
  // config.patience > 0 training stops after that many validations without improvement. Every
  // rank measures all rows (the weights are the same everywhere), so the ranks agree unasked.
  void set_validation(at::Tensor data, at::Tensor cond = {});
  double validation_loss();
  // After training: the EMA network takes the best validated weights (for sampling).
  void use_best_ema();

  enum class Outcome { Finished, Interrupted, StoppedEarly };
  // Trains until config.steps, until *stop becomes true on any rank (checked between steps;
  // the ranks agree on the step they stop after), or until the patience runs out.
  Outcome run(const TrainCallbacks& callbacks = {}, const std::atomic<bool>* stop = nullptr);
  // One optimisation step; returns the loss over the global batch (a 0-d tensor, not
  // synchronised), or an undefined tensor for a step skipped as not finite.
  at::Tensor step();

  int64_t step_count() const { return step_; }
  // The rows of the batch this rank trained on in the last step (model space, after augmentation).
  const at::Tensor& last_batch() const { return batch_; }
  const at::Tensor& last_batch_cond() const { return batch_cond_; }
  const TrainConfig& config() const { return config_; }
  TrainState state() const;
  void restore(const TrainState& state);

 private:
  void next_batch();
  void sync_ema();
  // The step itself; with stop_requested, asks every rank to stop after it. Returns whether any
  // rank asked. loss: undefined after a skipped step.
  bool step(bool stop_requested, at::Tensor& loss);
  // Whether the (global) loss and gradient are finite, which every rank sees alike after the
  // all-reduce.
  bool finite_update(const at::Tensor& loss);
  // Averages the gradients (and the loss and stop flag beside them) over the ranks.
  void all_reduce_gradients();

  std::shared_ptr<ScoreNet> net_, ema_net_;
  std::shared_ptr<const SDE> sde_;
  Parameterization output_;
  TrainConfig config_;
  at::Tensor data_, cond_;
  ConditionInput condition_;
  Communicator comm_;
  int64_t local_rows_ = 0, first_row_ = 0;  // this rank's slice of the global batch
  FlatParameters flat_;
  at::Tensor ema_;  // the EMA net's flat weights, or a buffer of our own
  std::vector<at::Tensor> buffers_, ema_buffers_;  // floating-point module buffers and their EMA
  FusedAdam adam_;
  at::Generator gen_;
  int64_t step_ = 0;
  // Per-step buffers, allocated once: the global batch's random draws (index_, t_, z_, keep_,
  // noise_) and this rank's rows (batch_, batch_cond_).
  at::Tensor batch_, batch_cond_, keep_, index_, t_, z_, noise_;
  at::Tensor epoch_perm_;
  int64_t epoch_ = -1;
  // Validation: held-out rows with their fixed draws, and the best so far.
  at::Tensor val_data_, val_cond_, val_t_, val_z_;
  at::Tensor best_ema_;
  double best_loss_ = std::numeric_limits<double>::infinity();
  int64_t best_step_ = 0, since_best_ = 0;
};

}  // namespace sbgm
