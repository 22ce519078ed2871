// detflow/pipeline/pipeline.h — the flow graph from a source to sinks.
//
//  source ─► limiter ─► preprocess ─► infer ─► postprocess ─► sequencer ─► sinks
//  (capture) (≤ K in    (parallel)    (N       (parallel)     (frame        (in order,
//             flight)                  engines)                order)        one thread)
//     ▲                                                                        │
//     └──────────────────── token returned when a frame leaves ◄──────────────┘
//
// Live mode: the source thread never waits on the graph; when all K slots are busy the
// newest frame replaces the one waiting and the drop is counted. File mode: every frame
// is processed; the source waits for a free slot.
//
// Pipeline owns the source, the sinks and one engine per inference worker. run() blocks
// until the stream ends, stop is requested or a sink fails; it always waits for the graph
// and finishes every sink before returning. request_stop() is async-signal-safe in effect
// (it only sets an atomic flag and calls Source::stop()).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "detflow/pipeline/detector.h"
#include "detflow/pipeline/frame.h"
#include "detflow/pipeline/sink.h"
#include "detflow/pipeline/source.h"
#include "detflow/pipeline/statistics.h"

namespace detflow {

struct PipelineSettings {
  int workers = 1;              // inference workers (engine instances)
  int max_in_flight = 0;        // K; 0 = 2 x workers
  std::int64_t max_frames = 0;  // stop after this many captured frames; 0 = no limit
  double stats_interval_s = 0;  // > 0: report statistics every N seconds while running
  bool progress = true;         // progress bar / periodic progress lines on stderr
};

struct RunSummary {
  Statistics statistics;
  bool stopped_by_request = false;  // signal or a sink asked to stop
  bool failed = false;              // a sink or the source failed fatally
  std::string failure;              // why, one line
};

class Pipeline {
 public:
  Pipeline(DetectorSetup& detector, std::unique_ptr<Source> source, std::vector<std::unique_ptr<Sink>> sinks,
           const PipelineSettings& settings);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  RunSummary run();
  void request_stop();
  // Live statistics snapshot (thread-safe).
  Statistics snapshot() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace detflow
