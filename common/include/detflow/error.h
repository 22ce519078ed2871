// detflow/error.h — the one exception type for setup and configuration errors.
//
// Contract: every error a user can cause before processing starts (a missing file, a
// bad model, an invalid configuration value, an unavailable engine that has no fallback)
// is thrown as detflow::Error. Its what() is one line that names the offending value and,
// where it helps, what would be accepted. The command line prints what() and exits
// non-zero, with an exit code chosen by kind() (apps/exit_codes.h). Per-frame failures are
// never thrown through the graph as Error: they are counted (see pipeline statistics).
#pragma once

#include <stdexcept>
#include <string>

namespace detflow {

// What an Error is about; it decides the command line's exit code. A throw site that
// knows better than the default says so; the command line also tags the errors of a
// whole setup phase (everything the model loading throws is `model`).
enum class ErrorKind {
  configuration,  // bad flags, keys or values; missing or unreadable input files (the default)
  model,          // the model cannot be read, understood or run by any engine
  source,         // the source exists but cannot be opened or delivers no frame at start
  source_lost,    // a live source given up after source.max_reconnects reopenings
  output,         // an output (sink) cannot be opened or fails while writing
  verification,   // an engine disagrees with ONNX Runtime and engine.verify is strict
};

// "configuration", "model", "source", "source lost", "output", "verification".
const char* to_string(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_ = ErrorKind::configuration;
};

inline const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::configuration:
      return "configuration";
    case ErrorKind::model:
      return "model";
    case ErrorKind::source:
      return "source";
    case ErrorKind::source_lost:
      return "source lost";
    case ErrorKind::output:
      return "output";
    case ErrorKind::verification:
      return "verification";
  }
  return "unknown";
}

}  // namespace detflow
