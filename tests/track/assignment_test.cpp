// The linear assignment solver against brute force on small matrices, and its shapes.
#include <algorithm>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "detflow/track/assignment.h"

namespace detflow::track {
namespace {

// Smallest summed cost over all complete matchings of the smaller side (permutations).
double brute_force(const std::vector<float>& cost, int rows, int columns) {
  const bool transpose = rows > columns;
  const int small = transpose ? columns : rows, large = transpose ? rows : columns;
  std::vector<int> order(static_cast<std::size_t>(large));
  std::iota(order.begin(), order.end(), 0);
  double best = std::numeric_limits<double>::infinity();
  do {
    double sum = 0;
    for (int i = 0; i < small; ++i) {
      const int j = order[static_cast<std::size_t>(i)];
      sum +=
          transpose ? cost[static_cast<std::size_t>(j * columns + i)] : cost[static_cast<std::size_t>(i * columns + j)];
    }
    best = std::min(best, sum);
  } while (std::next_permutation(order.begin(), order.end()));
  return best;
}

TEST(LinearAssignment, FindsTheOptimumOfRandomMatricesOfEveryShape) {
  std::mt19937 random(7);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  LinearAssignment solver;
  std::vector<int> result;
  for (int trial = 0; trial < 300; ++trial) {
    const int rows = 1 + trial % 6, columns = 1 + (trial / 6) % 6;
    std::vector<float> cost(static_cast<std::size_t>(rows * columns));
    for (auto& entry : cost) entry = value(random);
    solver.solve(cost, rows, columns, result);
    ASSERT_EQ(result.size(), static_cast<std::size_t>(rows));
    double sum = 0;
    std::vector<char> column_used(static_cast<std::size_t>(columns), 0);
    int assigned = 0;
    for (int row = 0; row < rows; ++row) {
      const int column = result[static_cast<std::size_t>(row)];
      if (column < 0) continue;
      ASSERT_LT(column, columns);
      ASSERT_FALSE(column_used[static_cast<std::size_t>(column)]) << "column assigned twice";
      column_used[static_cast<std::size_t>(column)] = 1;
      sum += cost[static_cast<std::size_t>(row * columns + column)];
      ++assigned;
    }
    EXPECT_EQ(assigned, std::min(rows, columns));
    EXPECT_NEAR(sum, brute_force(cost, rows, columns), 1e-4) << rows << "x" << columns << " trial " << trial;
  }
}

TEST(LinearAssignment, PrefersTheGlobalOptimumOverGreedy) {
  // Greedy takes (0,0) = 0.1 and then must take (1,1) = 0.9: 1.0. Optimal: 0.2 + 0.3 = 0.5.
  const std::vector<float> cost{0.1f, 0.2f, 0.3f, 0.9f};
  LinearAssignment solver;
  std::vector<int> result;
  solver.solve(cost, 2, 2, result);
  EXPECT_EQ(result, (std::vector<int>{1, 0}));
}

TEST(LinearAssignment, EmptyInputsAssignNothing) {
  LinearAssignment solver;
  std::vector<int> result{5};
  solver.solve({}, 0, 3, result);
  EXPECT_TRUE(result.empty());
  solver.solve({}, 2, 0, result);
  EXPECT_EQ(result, (std::vector<int>{-1, -1}));
}

}  // namespace
}  // namespace detflow::track
