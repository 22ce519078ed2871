// exit_codes.h — every exit status of the detflow command line, in one place.
//
// A supervisor (systemd Restart=on-failure, a container runtime, a shell script) reads
// these: 0 means there is nothing to restart; 2 means a restart will fail the same way
// until a person fixes the configuration; the others name what broke. The README's
// "Exit codes" table lists the same values; tests/apps/cli_test.cpp checks each one.
#pragma once

#include "detflow/error.h"
#include "detflow/pipeline/pipeline.h"

namespace detflow::app {

inline constexpr int exit_success = 0;              // a file finished, or a stop was requested (SIGINT/SIGTERM)
inline constexpr int exit_runtime_failure = 1;      // an unexpected failure (a bug, out of memory, a broken graph)
inline constexpr int exit_usage = 2;                // configuration: bad flags, keys or values, missing input files
inline constexpr int exit_model = 3;                // the model cannot be read, understood or run by any engine
inline constexpr int exit_output = 4;               // an output (sink) cannot be opened or failed while writing
inline constexpr int exit_source = 5;               // the source cannot be opened or gives no frame at start
inline constexpr int exit_source_lost = 6;          // a live source given up after source.max_reconnects
inline constexpr int exit_verify_disagreement = 7;  // an engine disagrees with ONNX Runtime: inspect --verify,
                                                    // or detflow run with engine.verify: strict
inline constexpr int exit_interrupted = 130;        // a second SIGINT/SIGTERM: immediate exit

// The exit status for a setup or run error of `kind`.
constexpr int exit_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::configuration:
      return exit_usage;
    case ErrorKind::model:
      return exit_model;
    case ErrorKind::source:
      return exit_source;
    case ErrorKind::source_lost:
      return exit_source_lost;
    case ErrorKind::output:
      return exit_output;
    case ErrorKind::verification:
      return exit_verify_disagreement;
  }
  return exit_runtime_failure;
}

// The exit status of a run that failed while frames flowed (RunSummary::failure_kind).
constexpr int exit_code_for(RunFailureKind kind) {
  switch (kind) {
    case RunFailureKind::sink:
      return exit_output;
    case RunFailureKind::source:
      return exit_source;
    case RunFailureKind::source_lost:
      return exit_source_lost;
    case RunFailureKind::none:
    case RunFailureKind::graph:
      break;
  }
  return exit_runtime_failure;
}

}  // namespace detflow::app
