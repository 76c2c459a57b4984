#include "sbgm/nets/summary_net.hpp"

#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <string>

#include "activation.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {
constexpr int64_t kHidden = 64;                     // hidden units of the summary's dense layers
constexpr int64_t kConvChannels[2] = {16, 32};      // channels of the cnn's two convolution blocks
constexpr int64_t kKernel = 5, kPool = 2;
}  // namespace

SummaryNet::SummaryNet(const NetConfig& config, int64_t cond_dim, int64_t set_element) : activation_(config.activation) {
  if (cond_dim < 1) throw InvalidArgument("{model.summary} needs conditions: train with {data.cond}");
  int64_t features = cond_dim;
  if (config.summary == SummaryKind::CNN) {
    channels_ = config.summary_channels;
    if (cond_dim % channels_ != 0)
      throw InvalidArgument("model.summary = cnn: the condition's " + std::to_string(cond_dim) +
                            " features are not model.summary_channels = " + std::to_string(channels_) +
                            " series of equal length");
    int64_t length = cond_dim / channels_;
    if (length < kPool * kPool)
      throw InvalidArgument("model.summary = cnn needs series of at least 4 steps; the condition has " +
                            std::to_string(length) + " per channel (use model.summary = mlp)");
    int64_t in = channels_;
    for (int64_t out : kConvChannels) {
      convolutions_->push_back(torch::nn::Conv1d(torch::nn::Conv1dOptions(in, out, kKernel).padding(kKernel / 2)));
      in = out;
      length /= kPool;
    }
    features = in * length;
  } else if (config.summary == SummaryKind::Set) {
    channels_ = set_element;
    if (channels_ < 1 || cond_dim % channels_ != 0)
      throw InvalidArgument("model.summary = set: the condition's " + std::to_string(cond_dim) +
                            " features are not elements of data.cond_set = " + std::to_string(channels_) +
                            " features each");
    element_->push_back(torch::nn::Linear(channels_, kHidden));
    element_->push_back(torch::nn::Linear(kHidden, kHidden));
    features = kHidden;
  } else if (config.summary != SummaryKind::MLP) {
    throw InvalidArgument("SummaryNet built without model.summary");
  }
  linear_->push_back(torch::nn::Linear(features, kHidden));
  if (config.summary == SummaryKind::MLP) linear_->push_back(torch::nn::Linear(kHidden, kHidden));
  linear_->push_back(torch::nn::Linear(kHidden, config.summary_dim));
  register_module("convolutions", convolutions_);
  register_module("element", element_);
  register_module("linear", linear_);
}

at::Tensor SummaryNet::forward(const at::Tensor& y) {
  at::Tensor h = y.reshape({y.size(0), -1});
  if (!element_->is_empty()) {
    // [B, elements, channels]: each element through the same layers, then their mean, which no
    // order of the elements changes.
    h = h.reshape({y.size(0), -1, channels_});
    for (const auto& layer : *element_) h = activate(layer->as<torch::nn::Linear>()->forward(h), activation_);
    h = h.mean(1);
  } else if (channels_ > 0) {
    h = h.reshape({y.size(0), channels_, -1});
    for (const auto& conv : *convolutions_)
      h = at::max_pool1d(activate(conv->as<torch::nn::Conv1d>()->forward(h), activation_), kPool);
    h = h.flatten(1);
  }
  const size_t last = linear_->size() - 1;
  for (size_t i = 0; i < last; ++i) h = activate(linear_[i]->as<torch::nn::Linear>()->forward(h), activation_);
  return linear_[last]->as<torch::nn::Linear>()->forward(h);
}

SummarizedConditionNet::SummarizedConditionNet(std::shared_ptr<SummaryNet> summary, std::shared_ptr<ScoreNet> net,
                                               bool droppable)
    // The summary is registered first, so the score network's output layer stays the last
    // parameter (GaussianBaselineNet zeroes it).
    : summary_(register_module("summary", std::move(summary))),
      net_(register_module("net", std::move(net))),
      droppable_(droppable) {}

at::Tensor SummarizedConditionNet::summarize(const at::Tensor& y) {
  if (!y.defined()) throw InvalidArgument("a network with a condition summary needs a condition");
  const bool cacheable = !is_training() && !at::GradMode::is_enabled();
  // Inference tensors keep no version counter (and cannot be changed outside inference mode).
  const int64_t version = y.is_inference() ? -1 : static_cast<int64_t>(y._version());
  // The same numbers: the same storage (kept alive by the cache, so it cannot be another's),
  // offset, shape, strides and type, not changed since (views share the version counter).
  const auto same = [&](const at::Tensor& a) {
    return a.defined() && a.has_storage() && y.has_storage() &&
           a.storage().unsafeGetStorageImpl() == y.storage().unsafeGetStorageImpl() &&
           a.storage_offset() == y.storage_offset() && a.sizes() == y.sizes() && a.strides() == y.strides() &&
           a.scalar_type() == y.scalar_type();
  };
  if (cacheable && same(cached_.y) && cached_.version == version) return cached_.summary;
  const at::Tensor rows = y.reshape({y.size(0), -1});
  at::Tensor out;
  if (!droppable_) {
    out = summary_->forward(rows);
  } else {
    const at::Tensor flag = rows.narrow(1, rows.size(1) - 1, 1);
    out = at::cat({summary_->forward(rows.narrow(1, 0, rows.size(1) - 1)) * flag, flag}, 1);
  }
  if (cacheable) cached_ = {y, out, version};
  else cached_ = {};
  return out;
}

at::Tensor SummarizedConditionNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  return net_->forward(x, t, summarize(y));
}

at::Tensor SummarizedConditionNet::forward_with_divergence(const at::Tensor& x, const at::Tensor& t,
                                                           const at::Tensor& y, at::Tensor& divergence) {
  return net_->forward_with_divergence(x, t, summarize(y), divergence);
}

}  // namespace sbgm
