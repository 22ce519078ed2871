// detflow/error.h — the one exception type for setup and configuration errors.
//
// Contract: every error a user can cause before processing starts (a missing file, a
// bad model, an invalid configuration value, an unavailable engine that has no fallback)
// is thrown as detflow::Error. Its what() is one line that names the offending value and,
// where it helps, what would be accepted. The command line prints what() and exits
// non-zero. Per-frame failures are never thrown through the graph as Error: they are
// counted (see pipeline statistics).
#pragma once

#include <stdexcept>
#include <string>

namespace detflow {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace detflow
