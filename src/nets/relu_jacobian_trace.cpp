#include "relu_jacobian_trace.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace sbgm {

namespace {

constexpr int64_t kMaxStateBytes = int64_t{256} << 20;
// Float32 updates add about one rounding per switch; afresh every 64 calls they stay below the
// float32 tangents' own error (tested). The refresh costs about one tangent evaluation.
constexpr int64_t kRefreshCalls = 64;

struct Shape {
  int64_t dim;         // D
  int64_t width0;      // units of the first hidden layer
  int64_t n;           // length of g_k: units of the second hidden layer
  int64_t width_last;  // units of the last hidden layer
  int64_t n_last;      // length of r_k: units of layer L - 2 (L >= 3)
  int64_t hidden;      // L
};

// Row-major buffers, rows first. Masks: the units on at the last call, and now.
template <typename T>
struct Rows {
  const bool *was0, *was_last, *is0, *is_last;
  const T* u;       // [width0, D]: the x-columns of W_0
  const T* w1t;     // [width0, n]: row j is column j of W_1
  const T* vt;      // [width_last, D]: W_L transposed
  const T* w_last;  // [width_last, n_last]: W_{L-1}
  T *g, *r;         // [B, D, n], [B, D, n_last]
  T* trace;         // [B] (L <= 3)
};

// Indices where was and is (width bytes) differ, eight at a time: most words have no switch.
template <class F>
inline void for_each_switch(const bool* was, const bool* is, int64_t width, F&& f) {
  for (int64_t j0 = 0; j0 < width; j0 += 8) {
    const int64_t j1 = std::min(j0 + 8, width);
    uint64_t a = 0, b = 0;
    std::memcpy(&a, was + j0, j1 - j0);
    std::memcpy(&b, is + j0, j1 - j0);
    if (a != b)
      for (int64_t j = j0; j < j1; ++j)
        if (was[j] != is[j]) f(j, is[j] ? 1 : -1);
  }
}

// sum_i [pre_i > 0] a_i b_i, in independent partial sums so that it vectorises. The product is
// formed before the select: GCC 12.2's AVX-512 code for `partial += pre > 0 ? a * b : 0` sums the
// wrong lanes in float64 (this file is built for the baseline instruction set; see
// docs/benchmarks.md for the AVX-512 build that was tried and not kept).
template <typename T>
T masked_dot(const T* pre, const T* a, const T* b, int64_t n) {
  constexpr int kLanes = 16;
  T partial[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const T product = a[i + l] * b[i + l];
      partial[l] += pre[i + l] > 0 ? product : T(0);
    }
  T sum = 0;
  for (; i < n; ++i) sum += pre[i] > 0 ? a[i] * b[i] : T(0);
  for (int l = 0; l < kLanes; ++l) sum += partial[l];
  return sum;
}

// One row: a unit j of the first layer switching moves g_k by +-u_k[j] * (column j of W_1), one
// of the last layer (L >= 3) moves r_k by +-v_k[j] * (row j of W_{L-1}). With L <= 3 the trace
// is then sum_k (m_1 * g_k) . r_k (L = 2: v_k for r_k), which needs no product.
template <typename T>
void update_row(const Shape& s, const Rows<T>& a, const T* pre1, int64_t b) {
  const int64_t n = s.n, dim = s.dim;
  T* g = a.g + b * dim * n;
  T* r = s.hidden >= 3 ? a.r + b * dim * s.n_last : nullptr;
  const auto move = [](T* __restrict moved, const T* __restrict step, T c, int64_t len) {
    for (int64_t i = 0; i < len; ++i) moved[i] += c * step[i];
  };
  for_each_switch(a.was0 + b * s.width0, a.is0 + b * s.width0, s.width0, [&](int64_t j, int sign) {
    for (int64_t k = 0; k < dim; ++k) move(g + k * n, a.w1t + j * n, sign * a.u[j * dim + k], n);
  });
  if (r) {
    for_each_switch(a.was_last + b * s.width_last, a.is_last + b * s.width_last, s.width_last, [&](int64_t j, int sign) {
      for (int64_t k = 0; k < dim; ++k) move(r + k * s.n_last, a.w_last + j * s.n_last, sign * a.vt[j * dim + k], s.n_last);
    });
  }
  if (s.hidden > 3) return;
  const T* p = pre1 + b * n;
  T sum = 0;
  for (int64_t k = 0; k < dim; ++k) {
    if (r) {
      sum += masked_dot(p, g + k * n, r + k * n, n);
    } else {
      for (int64_t i = 0; i < n; ++i)
        if (p[i] > 0) sum += g[k * n + i] * a.vt[i * dim + k];
    }
  }
  a.trace[b] = sum;
}

// The weights the kept state depends on: W_0, W_1, W_{L-1}, W_L.
std::vector<at::Tensor> ends_of(const std::vector<at::Tensor>& weights) {
  const size_t hidden = weights.size() - 1;
  return {weights[0], weights[1], weights[hidden - 1], weights[hidden]};
}

}  // namespace

bool ReluJacobianTrace::applies(const std::vector<int64_t>& widths, const at::Tensor& x) {
  if (widths.size() < 3 || !x.device().is_cpu() || x.dim() < 1) return false;
  const size_t hidden = widths.size() - 1;
  const int64_t dim = widths.back();
  const int64_t kept = dim * (widths[1] + (hidden >= 3 ? widths[hidden - 2] : 0));
  return x.size(0) * (kept * static_cast<int64_t>(x.element_size()) + widths[0] + widths[hidden - 1]) <= kMaxStateBytes;
}

bool ReluJacobianTrace::built_for(const std::vector<at::Tensor>& weights, int64_t batch) const {
  if (batch != batch_ || weights_.empty() || weights[0].scalar_type() != weights_[0].scalar_type()) return false;
  const std::vector<at::Tensor> ends = ends_of(weights);
  for (size_t i = 0; i < ends.size(); ++i)
    if (!ends[i].sizes().equals(weights_[i].sizes()) || !at::equal(ends[i], weights_[i])) return false;
  return true;
}

void ReluJacobianTrace::restart(const std::vector<at::Tensor>& weights, int64_t dim, const std::vector<at::Tensor>& pre) {
  // g and r from scratch: one [B * D, width] product each.
  const size_t hidden = pre.size();
  const int64_t batch = pre[0].size(0);
  batch_ = batch;
  weights_.clear();
  for (const at::Tensor& w : ends_of(weights)) weights_.push_back(w.detach().clone(at::MemoryFormat::Contiguous));
  u_ = weights_[0].narrow(1, 0, dim).contiguous();
  w1t_ = weights_[1].t().contiguous();
  vt_ = weights_[3].t().contiguous();
  first_mask_ = (pre[0] > 0).contiguous();
  last_mask_ = (pre[hidden - 1] > 0).contiguous();
  g_ = at::mm((first_mask_.unsqueeze(1) * u_.t().unsqueeze(0)).reshape({batch * dim, -1}), w1t_)
           .view({batch, dim, -1})
           .contiguous();
  if (hidden >= 3) {
    r_ = at::mm((last_mask_.unsqueeze(1) * weights_[3].unsqueeze(0)).reshape({batch * dim, -1}), weights_[2])
             .view({batch, dim, -1})
             .contiguous();
  }
  calls_since_restart_ = 0;
}

at::Tensor ReluJacobianTrace::operator()(const std::vector<at::Tensor>& weights, int64_t dim,
                                         const std::vector<at::Tensor>& pre_activations) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> pre;
  for (const at::Tensor& p : pre_activations) pre.push_back(p.contiguous());
  const size_t hidden = pre.size();
  const int64_t batch = pre[0].size(0);
  if (!built_for(weights, batch) || ++calls_since_restart_ >= kRefreshCalls) restart(weights, dim, pre);
  const at::Tensor first_is = (pre[0] > 0).contiguous(), last_is = (pre[hidden - 1] > 0).contiguous();
  const Shape shape{dim,
                    u_.size(0),
                    g_.size(2),
                    weights_[2].size(0),
                    hidden >= 3 ? r_.size(2) : 0,
                    static_cast<int64_t>(hidden)};
  at::Tensor trace = at::empty({batch}, pre[0].options());
  AT_DISPATCH_FLOATING_TYPES(pre[0].scalar_type(), "relu_jacobian_trace", [&] {
    using T = scalar_t;
    const Rows<T> rows{first_mask_.data_ptr<bool>(), last_mask_.data_ptr<bool>(), first_is.data_ptr<bool>(),
                       last_is.data_ptr<bool>(),     u_.data_ptr<T>(),            w1t_.data_ptr<T>(),
                       vt_.data_ptr<T>(),            weights_[2].data_ptr<T>(),   g_.data_ptr<T>(),
                       hidden >= 3 ? r_.data_ptr<T>() : nullptr,                  trace.data_ptr<T>()};
    const T* pre1 = pre[1].data_ptr<T>();
    at::parallel_for(0, batch, 64, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) update_row(shape, rows, pre1, b);
    });
  });
  first_mask_ = first_is;
  last_mask_ = last_is;
  if (hidden <= 3) return trace;
  // The middle, M_{L-2} W_{L-2} ... W_2 M_1, as forward tangents started from g.
  at::Tensor tangent = (g_ * (pre[1] > 0).unsqueeze(1)).reshape({batch * dim, -1});
  for (size_t i = 2; i + 1 < hidden; ++i)
    tangent = at::mm(tangent, weights[i].t()).view({batch, dim, -1}).mul_((pre[i] > 0).unsqueeze(1)).reshape({batch * dim, -1});
  return (tangent.view({batch, dim, -1}) * r_).sum(at::IntArrayRef{1, 2});
}

}  // namespace sbgm
