// Dropout in the MLP (model.dropout): the manual training path drops exactly what autograd's
// does and back-propagates through the same masks; the masks of a process's rows are those one
// process draws for the whole batch; evaluation drops nothing. (Exact resumes and data-parallel
// runs with dropout: test_training.cpp, test_distributed.cpp.)
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "sbgm/nets/mlp.hpp"
#include "sbgm/util/runtime.hpp"

using namespace sbgm;

namespace {

std::shared_ptr<MLPScoreNet> mlp_with_dropout(double p) {
  torch::manual_seed(4);
  NetConfig config;
  config.width = 24;
  config.depth = 3;
  config.activation = Activation::Tanh;  // its backward reads the activation, not the pre-activation
  config.dropout = p;
  auto net = std::make_shared<MLPScoreNet>(config, 3, 2);
  net->to(at::kDouble);
  return net;
}

struct Inputs {
  at::Tensor x, t, y;
};

Inputs inputs(int64_t rows) {
  at::Generator gen = make_generator(at::kCPU, 9);
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  return {at::randn({rows, 3}, gen, opts), at::rand({rows}, gen, opts), at::randn({rows, 2}, gen, opts)};
}

}  // namespace

TEST(Dropout, ManualGradientsAreAutogradsThroughTheSameMasks) {
  auto net = mlp_with_dropout(0.3);
  net->train();
  const Inputs in = inputs(16);
  const at::Tensor upstream = at::randn({16, 3}, at::kDouble);
  const auto params = net->parameters();

  net->draw_dropout_from(make_generator(at::kCPU, 5), 0, 16);
  const at::Tensor out = net->forward(in.x, in.t, in.y);
  const auto expected = torch::autograd::grad({(out * upstream).sum()}, params);

  net->draw_dropout_from(make_generator(at::kCPU, 5), 0, 16);
  at::NoGradGuard no_grad;
  EXPECT_TRUE(at::allclose(net->forward_for_backward(in.x, in.t, in.y), out.detach(), 1e-12, 1e-12));
  net->backward_into_grads(upstream);
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(at::allclose(params[i].grad(), expected[i], 1e-10, 1e-10)) << i;

  // Another generator state drops other units: the output changes.
  net->draw_dropout_from(make_generator(at::kCPU, 6), 0, 16);
  EXPECT_FALSE(at::allclose(net->forward(in.x, in.t, in.y), out.detach(), 1e-6, 1e-6));
}

TEST(Dropout, AProcesssRowsGetTheMasksOfTheWholeBatch) {
  auto net = mlp_with_dropout(0.5);
  net->train();
  const Inputs in = inputs(8);
  at::NoGradGuard no_grad;
  net->draw_dropout_from(make_generator(at::kCPU, 2), 0, 8);
  const at::Tensor whole = net->forward(in.x, in.t, in.y);
  std::vector<at::Tensor> halves;
  for (int64_t first : {0, 4}) {
    net->draw_dropout_from(make_generator(at::kCPU, 2), first, 8);
    halves.push_back(net->forward(in.x.narrow(0, first, 4), in.t.narrow(0, first, 4), in.y.narrow(0, first, 4)));
  }
  EXPECT_TRUE(at::equal(at::cat(halves), whole));
}

TEST(Dropout, EvaluationDropsNothingAndTrainingKeepsTheMean) {
  auto dropped = mlp_with_dropout(0.25), plain = mlp_with_dropout(0.0);  // the same weights (same seed)
  const Inputs in = inputs(6);
  at::NoGradGuard no_grad;
  dropped->eval();
  plain->eval();
  EXPECT_TRUE(at::equal(dropped->forward(in.x, in.t, in.y), plain->forward(in.x, in.t, in.y)));

  // The first layer after a dropped activation sees it unbiased: with one hidden layer the
  // network is linear in the dropped activations, so the mean over many masks is the plain output.
  torch::manual_seed(4);
  NetConfig config;
  config.width = 24;
  config.depth = 1;
  config.dropout = 0.25;
  MLPScoreNet one(config, 3, 2);
  one.to(at::kDouble);
  one.eval();
  const at::Tensor x = in.x.narrow(0, 0, 1).expand({20000, 3}), t = in.t.narrow(0, 0, 1).expand({20000});
  const at::Tensor y = in.y.narrow(0, 0, 1).expand({20000, 2});
  const at::Tensor expected = one.forward(x.narrow(0, 0, 1), t.narrow(0, 0, 1), y.narrow(0, 0, 1));
  one.train();
  one.draw_dropout_from(make_generator(at::kCPU, 7), 0, 20000);
  const at::Tensor samples = one.forward(x, t, y);
  const at::Tensor se = samples.std(0) / std::sqrt(20000.0);
  EXPECT_TRUE(((samples.mean(0) - expected[0]).abs() < 5 * se).all().item<bool>())
      << samples.mean(0) << expected << se;
  EXPECT_TRUE((se > 0).all().item<bool>());
}
