// detflow/pipeline/statistics.h — counters and latency distributions of a run.
//
// Statistics is a plain value (a snapshot). LatencyRecorder collects samples from
// several threads (lock-free append into a bounded reservoir) and summarises them.
// Units: milliseconds for latencies, frames per second for rates.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace detflow {

struct LatencySummary {
  std::int64_t count = 0;
  double mean_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
};

struct Statistics {
  std::int64_t frames_read = 0;       // handed over by the source
  std::int64_t frames_processed = 0;  // reached the sinks with detections
  std::int64_t frames_dropped = 0;    // live mode: replaced before processing
  std::int64_t frames_failed = 0;     // a stage failed (counted, not fatal)
  std::int64_t frames_corrupt = 0;    // the source skipped undecodable frames
  std::int64_t detections = 0;
  double elapsed_s = 0;
  double fps = 0;                                // processed / elapsed
  std::map<std::string, LatencySummary> stages;  // "preprocess", "inference", "postprocess", "sinks"
  LatencySummary capture_to_output;
  std::int64_t peak_resident_kb = 0;

  nlohmann::json to_json() const;
  // Multi-line human-readable table.
  std::string to_text() const;
};

}  // namespace detflow
