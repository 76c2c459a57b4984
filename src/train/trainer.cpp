#include "sbgm/train/trainer.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "sbgm/nets/module_buffers.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/optimal_transport.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace sbgm {

namespace {

// The spare elements that ride with the gradients through the all-reduce.
constexpr int64_t kLossSlot = 0, kStopSlot = 1, kSpareSlots = 2;
// Gradients are all-reduced in buckets of this many elements (16 MiB of float32), all in flight
// at once, so the process group's threads work on several at a time.
constexpr int64_t kBucketElements = int64_t{4} << 20;
// Held-out loss: about this many (row, t, z) draws at least.
constexpr int64_t kValidationDraws = 4096;

}  // namespace

Trainer::Trainer(std::shared_ptr<ScoreNet> net, std::shared_ptr<ScoreNet> ema_net, std::shared_ptr<const SDE> sde,
                 Parameterization output, TrainConfig config, at::Tensor data, at::Tensor cond, Communicator comm)
    : net_(std::move(net)),
      ema_net_(std::move(ema_net)),
      sde_(std::move(sde)),
      output_(output),
      config_(config),
      data_(std::move(data)),
      cond_(std::move(cond)),
      comm_(std::move(comm)),
      flat_(*net_, kSpareSlots),
      adam_(flat_.values(), config.adam),
      gen_(make_generator(data_.device(), config.seed)) {
  config_.validate();
  if (config_.dequantize && !(config_.level_width > 0))
    throw InvalidArgument("dequantised training needs the width of one pixel level in the model's units");
  if (data_.dim() < 2 || data_.size(0) < 1) throw InvalidArgument("training data must have shape [N, ...] with N >= 1");
  if (cond_.defined() && cond_.size(0) != data_.size(0))
    throw InvalidArgument("conditions have " + std::to_string(cond_.size(0)) + " rows but data has " +
                          std::to_string(data_.size(0)));
  if (config_.cond_dropout > 0 && !cond_.defined())
    throw InvalidArgument("train.cond_dropout needs conditions (data.cond)");
  if (cond_.defined()) condition_ = {cond_.numel() / cond_.size(0), config_.cond_dropout > 0};
  check_loss_config(config_.loss, output_, cond_.defined());
  if (config_.batch_size % comm_.size() != 0)
    throw InvalidArgument("train.batch_size " + std::to_string(config_.batch_size) + " does not split evenly over " +
                          std::to_string(comm_.size()) + " processes");
  local_rows_ = config_.batch_size / comm_.size();
  first_row_ = comm_.rank() * local_rows_;
  net_->draw_dropout_from(gen_, first_row_, config_.batch_size);
  {
    // Every rank starts from rank 0's weights (and buffers).
    at::NoGradGuard no_grad;
    comm_.broadcast(flat_.values());
    for (auto& b : module_buffers(*net_))
      if (b.is_floating_point()) comm_.broadcast(b);
  }
  if (ema_net_) {
    // The EMA network's own parameters become views of the EMA buffer.
    ema_ = FlatParameters(*ema_net_).values();
    ema_net_->eval();
  } else {
    ema_ = at::empty_like(flat_.values());
  }
  ema_.copy_(flat_.values());
  if (ema_net_) {
    // Floating-point buffers (running statistics, if a network has any) are averaged too.
    const auto buffers = module_buffers(*net_), ema_buffers = module_buffers(*ema_net_);
    for (size_t i = 0; i < buffers.size(); ++i)
      if (buffers[i].is_floating_point()) {
        ema_buffers[i].copy_(buffers[i]);
        buffers_.push_back(buffers[i]);
        ema_buffers_.push_back(ema_buffers[i]);
      }
  }
  const int64_t b = config_.batch_size;
  std::vector<int64_t> shape = data_.sizes().vec();
  shape[0] = b;
  z_ = at::empty(shape, data_.options());
  if (config_.dequantize) noise_ = at::empty(shape, data_.options());
  shape[0] = local_rows_;
  batch_ = at::empty(shape, data_.options());
  t_ = at::empty({b}, data_.options());
  index_ = at::empty({b}, data_.options().dtype(at::kLong));
  if (cond_.defined()) {
    std::vector<int64_t> cshape = cond_.sizes().vec();
    cshape[0] = local_rows_;
    batch_cond_ = at::empty(cshape, cond_.options());
    keep_ = at::empty({b}, cond_.options());
  }
}

void Trainer::next_batch() {
  const int64_t n = data_.size(0), b = config_.batch_size;
  if (b <= n) {
    // Epochs without replacement. Each epoch's order depends only on (seed, epoch), so a
    // resumed run draws the same batches as an uninterrupted one.
    const int64_t per_epoch = n / b;
    const int64_t epoch = step_ / per_epoch, slot = step_ % per_epoch;
    if (epoch != epoch_) {
      at::Generator g = make_generator(at::kCPU, config_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1);
      epoch_perm_ = at::randperm(n, g, at::TensorOptions().dtype(at::kLong)).to(data_.device());
      epoch_ = epoch;
    }
    index_.copy_(epoch_perm_.narrow(0, slot * b, b));
  } else {
    index_.random_(0, n, gen_);
  }
  // Each rank keeps its slice of every global draw, so the global batch is the same for any
  // number of ranks.
  const at::Tensor mine = index_.narrow(0, first_row_, local_rows_);
  at::index_select_out(batch_, data_, 0, mine);
  if (cond_.defined()) at::index_select_out(batch_cond_, cond_, 0, mine);
  if (config_.hflip) {
    // Each image mirrored left-right with probability 1/2 (the last axis is the width).
    std::vector<int64_t> shape(batch_.dim(), 1);
    shape[0] = local_rows_;
    const at::Tensor coin = at::empty({b}, batch_.options()).bernoulli_(0.5, gen_);
    const at::Tensor flip = coin.narrow(0, first_row_, local_rows_).view(shape) > 0;
    batch_.copy_(at::where(flip, batch_.flip({-1}), batch_));
  }
  if (config_.dequantize) batch_.add_(noise_.uniform_(0.0, config_.level_width, gen_).narrow(0, first_row_, local_rows_));
  if (config_.cond_set > 0 && batch_cond_.defined()) {
    // Each row's elements in an order of its own: the sorting of uniform keys, drawn for the
    // global batch (as every draw here) so that any number of ranks trains on the same rows.
    const int64_t width = config_.cond_set, elements = batch_cond_.numel() / (local_rows_ * width);
    const at::Tensor keys = at::empty({b, elements}, batch_cond_.options()).uniform_(0.0, 1.0, gen_);
    const at::Tensor ranks = std::get<1>(keys.narrow(0, first_row_, local_rows_).sort(1));
    const at::Tensor order = ranks.unsqueeze(2).expand({-1, -1, width});
    batch_cond_.copy_(batch_cond_.reshape({local_rows_, elements, width}).gather(1, order).reshape(batch_cond_.sizes()));
  }
}

at::Tensor Trainer::step() {
  at::Tensor loss;
  step(false, loss);
  return loss;
}

bool Trainer::step(bool stop_requested, at::Tensor& loss_out) {
  // The manual path needs no autograd at all; InferenceMode also skips autograd's dispatch.
  // (It is written for float32: reduced precision takes the autograd path.)
  const bool manual = net_->supports_manual_backward() && config_.precision == Precision::Float32;
  std::optional<c10::InferenceMode> no_autograd;
  if (manual) no_autograd.emplace();
  next_batch();
  t_.uniform_(0.0, 1.0, gen_);
  if (config_.loss.stratified_time) {
    t_.add_(at::arange(config_.batch_size, t_.options())).div_(static_cast<double>(config_.batch_size));
  }
  const ProposedTimes times = times_from_uniform(*sde_, t_, config_.loss);
  z_.normal_(0.0, 1.0, gen_);
  const at::Tensor t = times.t.narrow(0, first_row_, local_rows_);
  const at::Tensor importance = times.importance.defined() ? times.importance.narrow(0, first_row_, local_rows_) : at::Tensor();
  at::Tensor z = z_.narrow(0, first_row_, local_rows_);
  if (config_.loss.ot_coupling) z = ot_paired_noise(batch_, z);
  at::Tensor net_cond = condition_.present(batch_cond_);
  if (condition_.droppable)
    net_cond = condition_.dropped(batch_cond_, keep_.bernoulli_(1 - config_.cond_dropout, gen_).narrow(0, first_row_, local_rows_));

  at::Tensor loss;
  if (manual) {
    // The network writes every gradient itself: no autograd graph, no zeroing pass.
    DSMManual m = dsm_loss_manual(*net_, output_, *sde_, config_.loss.weighting, batch_, net_cond, t, z, importance);
    net_->backward_into_grads(m.grad_output);
    loss = m.loss;
  } else {
    flat_.zero_grad();
    {
      const AutocastScope autocast(data_.device().type(), config_.precision);
      loss = dsm_loss(*net_, output_, *sde_, config_.loss.weighting, batch_, net_cond, t, z, importance);
    }
    torch::autograd::backward({loss});
  }

  at::NoGradGuard no_grad;
  bool stop = stop_requested;
  if (comm_.size() > 1) {
    at::Tensor spare = flat_.spare();
    spare[kLossSlot].copy_(loss.detach());
    spare[kStopSlot].fill_(stop_requested ? 1.0 : 0.0);
    all_reduce_gradients();
    loss = spare[kLossSlot].clone();
    stop = spare[kStopSlot].item<double>() > 0;
  }
  if (config_.skip_nonfinite && !finite_update(loss)) {
    adam_.skip();
    ++step_;
    loss_out = at::Tensor();
    return stop;
  }
  if (config_.grad_clip > 0) {
    const double norm = flat_.grads().norm().item<double>();
    if (norm > config_.grad_clip) flat_.grads().mul_(config_.grad_clip / (norm + 1e-12));
  }
  adam_.step(flat_.values(), flat_.grads(), config_.lr_at(step_));
  ++step_;
  if (config_.ema_decay > 0) {
    // Warm-up of the decay so that short runs are not dominated by the initial weights.
    const double decay = std::min(config_.ema_decay, (1.0 + step_) / (10.0 + step_));
    ema_.lerp_(flat_.values(), 1.0 - decay);
    for (size_t i = 0; i < ema_buffers_.size(); ++i) ema_buffers_[i].lerp_(buffers_[i], 1.0 - decay);
  }
  loss_out = loss.detach();
  return stop;
}

bool Trainer::finite_update(const at::Tensor& loss) {
  return at::isfinite(loss).all().item<bool>() && at::isfinite(flat_.grads()).all().item<bool>();
}

void Trainer::all_reduce_gradients() {
  at::Tensor& buffer = flat_.grads_and_spare();
  std::vector<at::Tensor> buckets;
  for (int64_t start = 0; start < buffer.numel(); start += kBucketElements)
    buckets.push_back(buffer.narrow(0, start, std::min(kBucketElements, buffer.numel() - start)));
  comm_.all_reduce_sum(buckets);
  // Each rank's gradient is the mean over its equal share of the rows: the global mean is their mean.
  buffer.div_(static_cast<double>(comm_.size()));
}

void Trainer::set_validation(at::Tensor data, at::Tensor cond) {
  if (data.dim() != data_.dim() || data.sizes().slice(1) != data_.sizes().slice(1) || data.size(0) < 1)
    throw InvalidArgument("held-out rows must have the training data's shape");
  if (cond_.defined() != cond.defined() || (cond.defined() && cond.size(0) != data.size(0)))
    throw InvalidArgument("held-out rows need conditions exactly when the training data has them");
  // A few held-out rows would give a noisy loss with one (t, z) each: every row is taken often
  // enough for about kValidationDraws draws in all (up to 64 times each).
  const int64_t repeats = std::clamp<int64_t>(kValidationDraws / data.size(0), 1, 64);
  auto repeated = [repeats](const at::Tensor& x) {
    std::vector<int64_t> times(x.dim(), 1);
    times[0] = repeats;
    return x.repeat(times);
  };
  val_data_ = repeated(data);
  val_cond_ = cond.defined() ? repeated(cond) : at::Tensor();
  // One draw of times and noise for the whole run, from a generator of its own (the training
  // draws are untouched, so a run with validation trains exactly as one without).
  at::Generator gen = make_generator(val_data_.device(), config_.seed ^ 0x76616C6964ULL);
  const int64_t n = val_data_.size(0);
  val_t_ = at::empty({n}, val_data_.options()).uniform_(0.0, 1.0, gen).mul_(sde_->T() - sde_->t_eps()).add_(sde_->t_eps());
  val_z_ = at::empty_like(val_data_).normal_(0.0, 1.0, gen);
  if (config_.loss.ot_coupling)  // paired as training pairs them, batch by batch (validation_loss's chunks)
    for (int64_t start = 0; start < n; start += config_.batch_size) {
      const int64_t len = std::min(config_.batch_size, n - start);
      val_z_.narrow(0, start, len).copy_(ot_paired_noise(val_data_.narrow(0, start, len), val_z_.narrow(0, start, len)));
    }
  best_ema_ = at::empty_like(ema_);
  best_ema_.copy_(ema_);
}

double Trainer::validation_loss() {
  if (!val_data_.defined()) throw InvalidArgument("no held-out rows to validate on");
  sync_ema();
  // The EMA network (the weights a run keeps); without one, the current weights.
  ScoreNet& net = ema_net_ ? *ema_net_ : *net_;
  const bool was_training = net.is_training();
  net.eval();
  at::NoGradGuard no_grad;
  const int64_t n = val_data_.size(0), chunk = config_.batch_size;
  double sum = 0;
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t len = std::min(chunk, n - start);
    const at::Tensor y = val_cond_.defined() ? condition_.present(val_cond_.narrow(0, start, len)) : at::Tensor();
    sum += dsm_loss(net, output_, *sde_, config_.loss.weighting, val_data_.narrow(0, start, len), y,
                    val_t_.narrow(0, start, len), val_z_.narrow(0, start, len))
               .item<double>() *
           static_cast<double>(len);
  }
  net.train(was_training);
  return sum / static_cast<double>(n);
}

void Trainer::use_best_ema() {
  if (!best_ema_.defined()) return;
  at::NoGradGuard no_grad;
  ema_.copy_(best_ema_);
}

void Trainer::sync_ema() {
  // Without EMA the "EMA" weights are the weights; they are copied only when someone looks.
  if (config_.ema_decay > 0) return;
  ema_.copy_(flat_.values());
  for (size_t i = 0; i < ema_buffers_.size(); ++i) ema_buffers_[i].copy_(buffers_[i]);
}

Trainer::Outcome Trainer::run(const TrainCallbacks& callbacks, const std::atomic<bool>* stop) {
  using clock = std::chrono::steady_clock;
  net_->train();
  at::Tensor loss_sum = at::zeros({}, data_.options());
  int64_t since_report = 0, skipped = 0;
  auto report_start = clock::now();
  const int64_t first_step = step_;
  const auto run_start = report_start;
  // Validations happen at multiples of the validation interval only, so that a resumed run
  // validates at the same steps as an uninterrupted one.
  const int64_t validate_every = config_.validate_every > 0 ? config_.validate_every : config_.log_every;
  double last_validation = std::numeric_limits<double>::quiet_NaN();  // NaN: none since the last report
  auto validate = [&] {
    last_validation = validation_loss();
    if (last_validation < best_loss_) {
      best_loss_ = last_validation;
      best_step_ = step_;
      since_best_ = 0;
      best_ema_.copy_(ema_);
    } else {
      ++since_best_;
    }
  };
  auto report = [&] {
    TrainProgress p;
    p.step = step_;
    p.total_steps = config_.steps;
    p.loss = since_report > 0 ? loss_sum.item<double>() / since_report
                              : (skipped > 0 ? std::numeric_limits<double>::quiet_NaN() : 0.0);
    p.skipped = skipped;
    p.lr = config_.lr_at(std::max<int64_t>(step_ - 1, 0));
    const double elapsed = std::chrono::duration<double>(clock::now() - run_start).count();
    p.steps_per_second = elapsed > 0 ? (step_ - first_step) / elapsed : 0.0;
    p.samples_per_second = p.steps_per_second * static_cast<double>(config_.batch_size);
    p.eta_seconds = p.steps_per_second > 0 ? (config_.steps - step_) / p.steps_per_second : 0.0;
    if (val_data_.defined()) {
      p.validation_loss = last_validation;
      p.best_step = best_step_;
      last_validation = std::numeric_limits<double>::quiet_NaN();
    }
    if (callbacks.on_progress) callbacks.on_progress(p);
    loss_sum.zero_();
    since_report = 0;
    skipped = 0;
  };
  at::Tensor loss;
  while (step_ < config_.steps) {
    const bool stop_requested = stop && stop->load();
    if (stop_requested && comm_.size() == 1) {
      if (since_report + skipped > 0) report();
      sync_ema();
      return Outcome::Interrupted;
    }
    // Several ranks agree on stopping through the step's all-reduce: all of them finish it.
    const bool stopping = step(stop_requested, loss);
    if (loss.defined()) {
      loss_sum.add_(loss);
      ++since_report;
    } else {
      ++skipped;
    }
    const bool validating = val_data_.defined() && (step_ % validate_every == 0 || step_ == config_.steps);
    if (validating) validate();
    if (stopping && step_ < config_.steps) {
      report();
      sync_ema();
      return Outcome::Interrupted;
    }
    if (step_ % config_.log_every == 0 || step_ == config_.steps) report();
    if (validating && config_.patience > 0 && since_best_ >= config_.patience && step_ < config_.steps) {
      if (step_ % config_.log_every != 0) report();
      sync_ema();
      return Outcome::StoppedEarly;
    }
    if (config_.eval_every > 0 && step_ % config_.eval_every == 0 && callbacks.on_eval) {
      sync_ema();
      callbacks.on_eval(step_);
    }
    if (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0 && step_ < config_.steps &&
        callbacks.on_checkpoint)
      callbacks.on_checkpoint(step_);
  }
  sync_ema();
  return Outcome::Finished;
}

TrainState Trainer::state() const {
  TrainState s;
  s.params = flat_.values().clone();
  s.ema = config_.ema_decay > 0 ? ema_.clone() : flat_.values().clone();
  s.exp_avg = adam_.exp_avg().clone();
  s.exp_avg_sq = adam_.exp_avg_sq().clone();
  s.step = step_;
  s.rng_state = gen_.get_state();
  if (best_ema_.defined()) {
    s.best_ema = best_ema_.clone();
    s.best_loss = best_loss_;
    s.best_step = best_step_;
    s.since_best = since_best_;
  }
  return s;
}

void Trainer::restore(const TrainState& s) {
  if (s.params.numel() != flat_.numel() || s.ema.numel() != flat_.numel())
    throw IOError("checkpoint weights do not match the model (" + std::to_string(s.params.numel()) + " vs " +
                  std::to_string(flat_.numel()) + " parameters)");
  at::NoGradGuard no_grad;
  flat_.values().copy_(s.params);
  ema_.copy_(s.ema);
  adam_.restore(s.exp_avg, s.exp_avg_sq, s.step);
  step_ = s.step;
  gen_.set_state(s.rng_state);
  epoch_ = -1;
  if (best_ema_.defined() && s.best_ema.defined()) {
    // (A checkpoint from a run without validation starts the bookkeeping afresh.)
    best_ema_.copy_(s.best_ema);
    best_loss_ = s.best_loss;
    best_step_ = s.best_step;
    since_best_ = s.since_best;
  } else if (best_ema_.defined()) {
    best_ema_.copy_(ema_);
  }
}

}  // namespace sbgm
