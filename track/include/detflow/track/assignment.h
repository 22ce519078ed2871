// detflow/track/assignment.h — optimal linear assignment (the Hungarian method with potentials,
// Jonker-Volgenant style shortest augmenting paths), O(rows^2 * columns) for rows <= columns.
//
// The tracker uses it per connected component of its gated track/detection graph, so the
// matrices it solves are small; the solver keeps its buffers between calls (no allocation in
// steady state). Not thread-safe: one solver per thread.
#pragma once

#include <span>
#include <vector>

namespace detflow::track {

class LinearAssignment {
 public:
  // Minimises the summed cost over a complete matching of the smaller side: every row is
  // assigned when rows <= columns, every column otherwise. `cost` is row-major rows x columns
  // and must be finite. Fills row_to_column (size rows) with the chosen column or -1.
  void solve(std::span<const float> cost, int rows, int columns, std::vector<int>& row_to_column);

 private:
  std::vector<double> row_potential_, column_potential_, minimum_;
  std::vector<int> column_owner_, way_;
  std::vector<char> used_;
  std::vector<float> transposed_;
  std::vector<int> transposed_result_;
};

}  // namespace detflow::track
