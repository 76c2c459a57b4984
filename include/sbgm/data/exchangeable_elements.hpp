#pragma once
// Whether a posterior's conditions are sets: elements of w features each (iid draws for one θ,
// such as slcp's four points) whose order carries nothing, found from the training pairs so that
// the defaults can treat them as data.cond_set does (docs/sbi.md, "Conditions that are sets").
//
// Exchangeable elements given θ make the pairs (θ, x) and (θ, x with its elements permuted) one
// distribution, so every moment of an element, alone or with θ, is the same for each element, and
// every moment of two elements the same for each pair. The test compares, per row, each element's
// features, their products, and their products with θ's (standardised, pooled over the elements)
// with the first element's, and the products of neighbouring elements (a with a + 1, and the other
// way round) with those of the first pair: under exchangeability the differences have mean zero.
// Hotelling's T² of their mean, on the rank of their covariance, with Hotelling's factor for the
// covariance estimated from the rows, and the chi-squared's tail by Wilson and Hilferty's cube
// root (a normal deviate; accurate to a few percent of p at the levels used here).
//
// Second moments only: elements that differ in higher moments alone pass. Sets of many elements
// compare too many moments to be tested (kMostSetMoments); declare those (data.cond_set).

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace sbgm {

// The moments one test may compare, and the rows it needs per moment compared: fewer rows leave a
// width untested (and so not taken for a set).
constexpr int64_t kMostSetMoments = 512;
constexpr int64_t kRowsPerSetMoment = 5;
// Rows used at most (every k-th of them): the test's power is ample long before.
constexpr int64_t kMostSetTestRows = 20000;
// A width is taken for a set where its test's p-value is at least this (a set missed is the
// defaults' behaviour before this test; a set declared that is none loses information).
constexpr double kSetTestLevel = 0.01;

struct ExchangeabilityTest {
  int64_t width = 0;       // features per element
  bool tested = false;     // false: not whole elements, one element, or too few rows for the moments
  int64_t moments = 0;     // differences compared (their covariance's rank)
  double statistic = 0;    // T², scaled to follow chi-squared(moments) under exchangeability
  double p_value = 0;      // its upper tail
  bool exchangeable() const { return tested && p_value >= kSetTestLevel; }
};

// The test of elements of width features in cond [N, F] (F a multiple of width) with data [N, D]
// (θ). Rows need not be standardised. InvalidArgument for rows of different counts or width < 1.
ExchangeabilityTest test_exchangeable_elements(const at::Tensor& data, const at::Tensor& cond, int64_t width);

// The smallest width (a divisor of F that gives at least two elements) whose elements pass the
// test, with its test; width 0 and tested false when none does.
ExchangeabilityTest find_set_elements(const at::Tensor& data, const at::Tensor& cond);

}  // namespace sbgm
