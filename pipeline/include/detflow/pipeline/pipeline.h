// detflow/pipeline/pipeline.h — the flow graph from a source to sinks.
//
//  source ─► limiter ─► preprocess ─► infer ─► postprocess ─► sequencer ─► track ─► sinks
//  (capture) (≤ K in    (parallel)    (N       (parallel)     (frame        (serial,  (in order,
//             flight)                  engines)                order)        tracker + one thread)
//     ▲                                                                      analytics)      │
//     └──────────────────── token returned when a frame leaves ◄──────────────────────────────┘
//
// Live mode: the source thread never waits on the graph; when all K slots are busy the
// newest frame replaces the one waiting and the drop is counted. File mode: every frame
// is processed; the source waits for a free slot.
//
// Pipeline owns the source, the sinks and one engine per inference worker (made by the
// constructor with DetectorSetup::make_engine(); the DetectorSetup must outlive the
// Pipeline). run() blocks until the stream ends, stop is requested or a sink fails; it
// always waits for the graph and finishes every opened sink exactly once before
// returning. It opens the sinks first: a sink whose open() throws detflow::Error makes
// run() finish the sinks opened before it and rethrow (setup error; that sink is not
// finished). run() may be called once.
// A stage that throws for one frame fails that frame only (Statistics::frames_failed; it
// still reaches the sinks with FrameResult::failed set). A sink that throws from consume()
// ends the run: RunSummary::failed with the sink's message; frames still in flight are
// counted as dropped.
// request_stop() and snapshot() may be called from any thread; request_stop() only sets an
// atomic flag and calls Source::stop(), so a signal-handling thread may call it.
// With tracking, the end of the run (end of stream, stop request; not a fatal failure) ends
// every live track: their track_end events, and the zone exits they cause, reach the sinks in
// one end-of-stream result (frame.h) before the sinks finish.
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
#include "detflow/track/analytics.h"
#include "detflow/track/tracker.h"

namespace detflow {

struct PipelineSettings {
  int workers = 1;              // inference workers (engine instances), >= 1
  int max_in_flight = 0;        // K, frames between source and sinks; 0 = workers (live) or workers + 1 (file)
  std::int64_t max_frames = 0;  // stop after this many captured frames; 0 = no limit
  double stats_interval_s = 0;  // > 0: report statistics every N seconds while running
  // Called from a reporting thread every stats_interval_s with a snapshot; empty: one
  // line (Statistics::to_line) is logged at info level instead.
  std::function<void(const Statistics&)> on_statistics;
  // Progress on stderr: when stderr is a terminal and the frame count is known, a bar with
  // ETA redrawn in place; otherwise one plain line every progress_interval_s.
  bool progress = true;
  double progress_interval_s = 10;
  // Tracking: one serial step after the sequencer, in frame order, fills FrameResult::tracks,
  // events and counts (timestamps: the frame's pts, else its capture time). Settings are
  // validated (with the model's labels) when the Pipeline is built.
  bool tracking = false;
  track::TrackerSettings tracker;
  track::AnalyticsSettings analytics;
  // The detector runs on every N-th frame that enters the graph (the 1st, the N+1th, ...; as
  // DeepStream's nvinfer `interval`, which counts the skipped frames: N - 1). The frames between
  // skip preprocess, inference and postprocess (FrameResult::detector_ran = false): every track
  // reported on the last detected frame is carried on at its measured velocity, flagged
  // predicted. Every frame still reaches the sinks, in order. >= 1; above 1 needs tracking (the
  // constructor throws detflow::Error otherwise).
  int detection_interval = 1;
};

// What ended a failed run (the command line's exit code depends on it).
enum class RunFailureKind {
  none,
  sink,         // a sink threw from consume() or finish(): an output failure
  source,       // the source threw while reading (e.g. a frame it cannot convert)
  source_lost,  // a live source was given up after source.max_reconnects reopenings
  graph,        // the flow graph itself failed (resource exhaustion or a bug)
};

struct RunSummary {
  Statistics statistics;
  bool stopped_by_request = false;  // signal or a sink asked to stop
  bool failed = false;              // a sink or the source failed fatally
  std::string failure;              // why, one line
  RunFailureKind failure_kind = RunFailureKind::none;
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
  const SourceInfo& source_info() const;
  // Live statistics snapshot (thread-safe); with lines or zones, the counts so far.
  Statistics snapshot() const;
  // The source's state and supervision counters now (thread-safe).
  SourceCounters source_counters() const;
  // The live counters and latency distributions behind snapshot(), for exporters that need
  // more than the summary (histogram buckets). Thread-safe to read; lives as long as the
  // Pipeline.
  const StatisticsRecorder& recorder() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace detflow
