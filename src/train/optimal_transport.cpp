#include "sbgm/train/optimal_transport.hpp"

#include <ATen/ATen.h>

#include <limits>

#include "sbgm/util/error.hpp"

namespace sbgm {

std::vector<int64_t> min_cost_assignment(const at::Tensor& cost) {
  if (cost.dim() != 2 || cost.size(0) != cost.size(1))
    throw InvalidArgument("an assignment needs a square cost matrix");
  const at::Tensor c = cost.to(at::kCPU, at::kDouble).contiguous();
  if (!at::isfinite(c).all().item<bool>()) throw InvalidArgument("the assignment's costs contain NaN or Inf");
  const int64_t n = c.size(0);
  const double* a = c.data_ptr<double>();
  // Shortest augmenting paths with potentials (Kuhn-Munkres in the Jonker-Volgenant form): rows
  // are added one at a time, each by a Dijkstra search over reduced costs a(i, j) - u_i - v_j >= 0.
  // Index 0 is a virtual column; rows and columns are 1-based inside.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0.0), v(n + 1, 0.0), min_reduced(n + 1);
  std::vector<int64_t> row_of(n + 1, 0), previous(n + 1, 0);
  std::vector<char> visited(n + 1);
  for (int64_t i = 1; i <= n; ++i) {
    row_of[0] = i;
    int64_t col = 0;
    std::fill(min_reduced.begin(), min_reduced.end(), inf);
    std::fill(visited.begin(), visited.end(), 0);
    do {
      visited[col] = 1;
      const int64_t row = row_of[col];
      double delta = inf;
      int64_t next = 0;
      for (int64_t j = 1; j <= n; ++j) {
        if (visited[j]) continue;
        const double reduced = a[(row - 1) * n + (j - 1)] - u[row] - v[j];
        if (reduced < min_reduced[j]) {
          min_reduced[j] = reduced;
          previous[j] = col;
        }
        if (min_reduced[j] < delta) {
          delta = min_reduced[j];
          next = j;
        }
      }
      for (int64_t j = 0; j <= n; ++j) {
        if (visited[j]) {
          u[row_of[j]] += delta;
          v[j] -= delta;
        } else {
          min_reduced[j] -= delta;
        }
      }
      col = next;
    } while (row_of[col] != 0);
    do {  // flip the augmenting path
      const int64_t back = previous[col];
      row_of[col] = row_of[back];
      col = back;
    } while (col != 0);
  }
  std::vector<int64_t> column(n);
  for (int64_t j = 1; j <= n; ++j) column[row_of[j] - 1] = j - 1;
  return column;
}

at::Tensor ot_paired_noise(const at::Tensor& x0, const at::Tensor& z) {
  if (x0.sizes() != z.sizes()) throw InvalidArgument("the data and the noise to pair must have one shape");
  at::NoGradGuard no_grad;
  const int64_t b = x0.size(0);
  const at::Tensor xf = x0.reshape({b, -1}).to(at::kDouble), zf = z.reshape({b, -1}).to(at::kDouble);
  // |x_i - z_j|^2 = |x_i|^2 + |z_j|^2 - 2 x_i . z_j
  const at::Tensor cost = xf.pow(2).sum(1, true) + zf.pow(2).sum(1).unsqueeze(0) - 2 * at::matmul(xf, zf.t());
  const std::vector<int64_t> column = min_cost_assignment(cost);
  const at::Tensor index = at::tensor(column, at::TensorOptions().dtype(at::kLong)).to(z.device());
  return z.index_select(0, index);
}

}  // namespace sbgm
