#include "sbgm/nets/ensemble.hpp"

#include <ATen/ATen.h>

#include <string>

#include "sbgm/util/error.hpp"

namespace sbgm {
namespace {

// Member k's rows of a batch: the k-th of K near-equal consecutive parts (rows are drawn at
// random, so consecutive parts are random parts).
std::vector<at::Tensor> split_rows(const at::Tensor& v, int64_t k) {
  if (!v.defined()) return std::vector<at::Tensor>(static_cast<size_t>(k));
  return at::tensor_split(v, k, 0);
}

}  // namespace

EnsembleNet::EnsembleNet(std::vector<std::shared_ptr<ScoreNet>> members) : members_(std::move(members)) {
  if (members_.size() < 2) throw InvalidArgument("an ensemble needs at least two networks");
  for (size_t k = 0; k < members_.size(); ++k) register_module("member" + std::to_string(k), members_[k]);
}

at::Tensor EnsembleNet::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  const int64_t k = size();
  if (is_training()) return on_parts(x, t, y, /*manual=*/false);
  at::Tensor sum = members_[0]->forward(x, t, y);
  for (int64_t i = 1; i < k; ++i) sum = sum + members_[i]->forward(x, t, y);
  return sum / static_cast<double>(k);
}

bool EnsembleNet::supports_divergence() const {
  for (const auto& m : members_)
    if (!m->supports_divergence()) return false;
  return true;
}

bool EnsembleNet::prefers_own_divergence(const at::Tensor& x) const {
  for (const auto& m : members_)
    if (!m->prefers_own_divergence(x)) return false;
  return true;
}

at::Tensor EnsembleNet::forward_with_divergence(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y,
                                                at::Tensor& divergence) {
  at::Tensor out = members_[0]->forward_with_divergence(x, t, y, divergence);
  for (int64_t i = 1; i < size(); ++i) {
    at::Tensor d;
    out = out + members_[i]->forward_with_divergence(x, t, y, d);
    divergence = divergence + d;
  }
  divergence = divergence / static_cast<double>(size());
  return out / static_cast<double>(size());
}

bool EnsembleNet::supports_manual_backward() const {
  for (const auto& m : members_)
    if (!m->supports_manual_backward()) return false;
  return true;
}

at::Tensor EnsembleNet::forward_for_backward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  return on_parts(x, t, y, /*manual=*/true);
}

at::Tensor EnsembleNet::on_parts(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y, bool manual) {
  const int64_t k = size();
  const auto xs = split_rows(x, k), ts = split_rows(t, k), ys = split_rows(y, k);
  std::vector<at::Tensor> outs;
  parts_.clear();
  for (int64_t i = 0; i < k; ++i) {
    ScoreNet& member = *members_[i];
    outs.push_back(manual ? member.forward_for_backward(xs[i], ts[i], ys[i]) : member.forward(xs[i], ts[i], ys[i]));
    parts_.push_back(xs[i].size(0));
  }
  return at::cat(outs, 0);
}

void EnsembleNet::backward_into_grads(const at::Tensor& grad_output) {
  int64_t start = 0;
  for (int64_t i = 0; i < size(); ++i) {
    members_[i]->backward_into_grads(grad_output.narrow(0, start, parts_[i]));
    start += parts_[i];
  }
}

void EnsembleNet::draw_dropout_from(const at::Generator& gen, int64_t, int64_t) {
  for (const auto& member : members_) member->draw_dropout_from(gen, 0, 0);
}

void EnsembleNet::zero_output(int64_t dim) {
  for (const auto& member : members_) member->zero_output(dim);
}

}  // namespace sbgm
