#include "detflow/track/assignment.h"

#include <algorithm>
#include <limits>

namespace detflow::track {

void LinearAssignment::solve(std::span<const float> cost, int rows, int columns, std::vector<int>& row_to_column) {
  row_to_column.assign(static_cast<std::size_t>(rows > 0 ? rows : 0), -1);
  if (rows <= 0 || columns <= 0) return;
  if (rows > columns) {
    // The method needs rows <= columns: solve the transpose and invert the answer.
    transposed_.resize(cost.size());
    for (int row = 0; row < rows; ++row) {
      for (int column = 0; column < columns; ++column) {
        transposed_[static_cast<std::size_t>(column) * rows + row] =
            cost[static_cast<std::size_t>(row) * columns + column];
      }
    }
    // The nested call takes the rows <= columns path, which touches neither transposed buffer.
    solve(transposed_, columns, rows, transposed_result_);
    for (int column = 0; column < columns; ++column) {
      const int row = transposed_result_[static_cast<std::size_t>(column)];
      if (row >= 0) row_to_column[static_cast<std::size_t>(row)] = column;
    }
    return;
  }

  // Potentials u (rows) and v (columns), 1-based with a virtual column 0; column_owner_[j] is the
  // row assigned to column j. Each row is added by a Dijkstra-like search for the cheapest
  // augmenting path in reduced costs, then the potentials are moved so reduced costs stay >= 0.
  const auto n = static_cast<std::size_t>(rows);
  const auto m = static_cast<std::size_t>(columns);
  constexpr double infinity = std::numeric_limits<double>::infinity();
  row_potential_.assign(n + 1, 0.0);
  column_potential_.assign(m + 1, 0.0);
  column_owner_.assign(m + 1, 0);
  way_.assign(m + 1, 0);
  minimum_.resize(m + 1);
  used_.resize(m + 1);
  for (std::size_t row = 1; row <= n; ++row) {
    column_owner_[0] = static_cast<int>(row);
    std::size_t current_column = 0;
    std::fill(minimum_.begin(), minimum_.end(), infinity);
    std::fill(used_.begin(), used_.end(), 0);
    do {
      used_[current_column] = 1;
      const auto current_row = static_cast<std::size_t>(column_owner_[current_column]);
      double delta = infinity;
      std::size_t next_column = 0;
      const float* cost_row = cost.data() + (current_row - 1) * m;
      for (std::size_t column = 1; column <= m; ++column) {
        if (used_[column]) continue;
        const double reduced = cost_row[column - 1] - row_potential_[current_row] - column_potential_[column];
        if (reduced < minimum_[column]) {
          minimum_[column] = reduced;
          way_[column] = static_cast<int>(current_column);
        }
        if (minimum_[column] < delta) {
          delta = minimum_[column];
          next_column = column;
        }
      }
      for (std::size_t column = 0; column <= m; ++column) {
        if (used_[column]) {
          row_potential_[static_cast<std::size_t>(column_owner_[column])] += delta;
          column_potential_[column] -= delta;
        } else {
          minimum_[column] -= delta;
        }
      }
      current_column = next_column;
    } while (column_owner_[current_column] != 0);
    // Flip the augmenting path.
    do {
      const auto previous = static_cast<std::size_t>(way_[current_column]);
      column_owner_[current_column] = column_owner_[previous];
      current_column = previous;
    } while (current_column != 0);
  }
  for (std::size_t column = 1; column <= m; ++column) {
    if (column_owner_[column] > 0) {
      row_to_column[static_cast<std::size_t>(column_owner_[column] - 1)] = static_cast<int>(column - 1);
    }
  }
}

}  // namespace detflow::track
