// detflow/pipeline/statistics.h — counters and latency distributions of a run.
//
// Statistics is a plain value (a snapshot). LatencyRecorder collects samples from
// several threads (lock-free, into a fixed log-scale histogram: bounded memory, about 2 %
// relative resolution) and summarises them. StatisticsRecorder groups the counters and
// recorders the flow graph updates while it runs; snapshot() may be called at any time
// from any thread.
// Units: milliseconds for latencies, frames per second for rates, kibibytes for memory.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "detflow/pipeline/frame.h"

namespace detflow {

struct LatencySummary {
  std::int64_t count = 0;
  double mean_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
};

struct Statistics {
  std::string camera;                 // the stream's name when a run has several streams; empty otherwise
  std::int64_t frames_read = 0;       // handed over by the source
  std::int64_t frames_processed = 0;  // reached the sinks with detections
  std::int64_t frames_detected = 0;   // of those, frames the detector ran on (detection interval)
  std::int64_t frames_dropped = 0;    // live mode: replaced before processing; also frames left over at a fatal stop
  std::int64_t frames_failed = 0;     // a stage failed (counted, not fatal)
  std::int64_t frames_corrupt = 0;    // the source skipped undecodable frames
  std::int64_t detections = 0;
  std::int64_t frames_total = -1;  // frames the run is expected to read (-1 when unknown or live)
  double elapsed_s = 0;
  double fps = 0;                                // processed / elapsed
  std::map<std::string, LatencySummary> stages;  // "preprocess", "inference", "postprocess", "sinks"
  LatencySummary capture_to_output;
  std::int64_t peak_resident_kb = 0;  // VmHWM of this process; 0 when unavailable
  // With lines or zones configured (tracking analytics): per line in/out per class, per zone
  // occupancy now and entered since the start, per class. Empty otherwise.
  std::optional<track::CountsSnapshot> counts;
  // The whole run of a multi-stream Pipeline: each stream's own statistics (camera set), in
  // the order of the streams. Empty for a single stream and in the per-stream entries.
  std::vector<Statistics> streams;

  // With counts: "counts": track::to_json(CountsSnapshot) (see track/event.h); "camera" when
  // camera is set; "streams": [each stream's to_json()] when streams is not empty.
  nlohmann::json to_json() const;
  // Multi-line human-readable table; with counts, one line per line and per zone after it;
  // then, for a multi-stream total, one section per stream ("camera NAME:" and its table).
  std::string to_text() const;
  // One line for periodic reports, e.g. "frames 120/795 (15 %), 23.1 fps, 0 dropped, 0 failed, p95 latency 88 ms";
  // prefixed "camera NAME: " when camera is set; with counts, ", line door in 3 out 1" per line and
  // ", zone lobby now 2 entered 7" per zone after it.
  std::string to_line() const;
};

// Thread-safe latency distribution. record() is wait-free (atomic increments), memory is
// fixed (a histogram of kBucketCount buckets spaced by a constant ratio between
// kMinimumMs and kMaximumMs; samples outside are clamped into the end buckets, the exact
// maximum is kept separately). Percentiles are reported at the bucket's centre, so they
// are within about 1 % of the true sample.
class LatencyRecorder {
 public:
  static constexpr double kMinimumMs = 0.001;
  static constexpr double kMaximumMs = 1.0e6;
  static constexpr int kBucketCount = 1024;

  void record(double milliseconds);
  LatencySummary summary() const;
  // Samples recorded so far that are at most `milliseconds` (cumulative, as a Prometheus
  // histogram bucket). At the bucket resolution: samples in the bucket holding the bound
  // (within about 2 % above it) count as below it. Non-decreasing in the bound.
  std::int64_t count_at_most(double milliseconds) const;
  std::int64_t count() const { return count_.load(std::memory_order_acquire); }
  double sum_ms() const { return sum_ms_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<std::int64_t>, kBucketCount> buckets_{};
  std::atomic<std::int64_t> count_{0};
  std::atomic<double> sum_ms_{0.0};
  std::atomic<double> max_ms_{0.0};
};

// Everything the flow graph counts while a run is going on. Counters are atomics; every
// member may be updated from any thread. Not copyable (take snapshot() instead).
class StatisticsRecorder {
 public:
  StatisticsRecorder();

  // Resets the clock that elapsed_s and fps are measured from (and restarts it).
  void start();
  // Freezes elapsed_s at now (the run is over); snapshots taken later report the same rate.
  void stop_clock();

  std::atomic<std::int64_t> frames_read{0};
  std::atomic<std::int64_t> frames_processed{0};
  std::atomic<std::int64_t> frames_detected{0};
  std::atomic<std::int64_t> frames_dropped{0};
  std::atomic<std::int64_t> frames_failed{0};
  std::atomic<std::int64_t> frames_corrupt{0};  // mirrored from SourceCounters by the owner
  std::atomic<std::int64_t> detections{0};
  std::atomic<std::int64_t> frames_total{-1};

  LatencyRecorder preprocess;
  LatencyRecorder inference;
  LatencyRecorder postprocess;
  LatencyRecorder sinks;
  LatencyRecorder capture_to_output;

  // Counters and latencies; `counts` is left empty (the tracking step owns them, see
  // Pipeline::snapshot()).
  Statistics snapshot() const;

 private:
  std::atomic<Clock::rep> started_{0};
  std::atomic<Clock::rep> stopped_{0};  // 0 while running
};

// Peak resident set size of this process in KiB (VmHWM in /proc/self/status); 0 when unknown.
std::int64_t peak_resident_kb();

}  // namespace detflow
