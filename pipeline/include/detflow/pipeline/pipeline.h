// detflow/pipeline/pipeline.h — the flow graph from one or several sources to their sinks.
//
//  streams ─► limiter ─► preprocess ─► scheduler ─► infer ─► postprocess ─► sequencer ─► track + sinks
//  (capture,  (≤ K in    (parallel,    (round-robin  (N       (parallel)     (frame        (serial per
//   one        flight     shared)       across        engines,               order, per    stream, one
//   thread     per                      streams)      shared)                stream)       thread at a
//   each)      stream)                                                                     time)
//     ▲                                                                                         │
//     └──────────────────── token returned when a frame leaves ◄──────────────────────────────────┘
//
// One Pipeline runs one model for N named streams (cameras, files): one DetectorSetup, one set of
// inference workers shared by every stream. Everything else is per stream: the source and its
// capture thread, the in-flight limit K and the live/file policy, frame order, tracking and
// analytics state, sinks and statistics.
//
// Live mode (per stream): the source thread never waits on the graph; when all K slots are busy
// the newest frame replaces the one waiting and the drop is counted. File mode: every frame
// is processed; the source waits for a free slot.
// Fairness: the inference workers serve the streams that have a preprocessed frame waiting in
// round-robin order, one frame per stream per turn, so a file stream (which always has a frame
// ready) cannot take more than its share from a live camera.
//
// Pipeline owns the sources, the sinks and one engine per inference worker (made by the
// constructor with DetectorSetup::make_engine(); the DetectorSetup must outlive the
// Pipeline). run() blocks until every stream has ended (files at their end, live sources when
// stopped or given up), stop is requested, or a stream fails; it always waits for the graph and
// finishes every opened sink exactly once before returning. It opens the sinks first: a sink
// whose open() throws detflow::Error makes run() finish the sinks opened before it and rethrow
// (setup error; that sink is not finished). run() may be called once.
// A stage that throws for one frame fails that frame only (Statistics::frames_failed; it
// still reaches the sinks with FrameResult::failed set). A sink that throws from consume()
// ends its stream: that stream's summary is failed with the sink's message, its frames still in
// flight are counted as dropped; the other streams run on. The same holds for a source that
// fails or is given up. A sink that asks to stop (consume() returns false: a closed window)
// stops every stream.
// request_stop() and the snapshot/counter accessors may be called from any thread;
// request_stop() only sets an atomic flag and calls Source::stop(), so a signal-handling thread
// may call it.
// With tracking, the end of a stream (end of stream, stop request; not a fatal failure) ends
// every live track: their track_end events, and the zone exits they cause, reach that stream's
// sinks in one end-of-stream result (frame.h) before the sinks finish.
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

// What one stream may set for itself (see StreamSetup).
struct StreamOptions {
  int max_in_flight = 0;  // K, this stream's frames in the graph; 0 = workers (live) or workers + 1 (file), more at a
                          // detection interval
  std::int64_t max_frames = 0;  // stop this stream after this many captured frames; 0 = no limit
  bool tracking = false;        // see PipelineSettings::tracking
  track::TrackerSettings tracker;
  track::AnalyticsSettings analytics;
  int detection_interval = 1;  // see PipelineSettings::detection_interval
};

// The single-stream constructor reads every field. The multi-stream one reads only workers,
// stats_interval_s, on_statistics, progress and progress_interval_s: each stream's own options
// come with it (StreamSetup::options).
struct PipelineSettings {
  int workers = 1;  // inference workers (engine instances), >= 1, shared by all streams
  int max_in_flight =
      0;  // K, frames between source and sinks; 0 = workers (live) or workers + 1 (file), more at a detection interval
  std::int64_t max_frames = 0;  // stop after this many captured frames; 0 = no limit
  double stats_interval_s = 0;  // > 0: report statistics every N seconds while running
  // Called from a reporting thread every stats_interval_s with a snapshot (with several
  // streams: one call per stream, Statistics::camera set); empty: one line
  // (Statistics::to_line) is logged at info level instead.
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

// One named stream: its source, its sinks and its options. Names are unique within a
// Pipeline (the constructor throws detflow::Error for duplicates); they label statistics.
struct StreamSetup {
  std::string name;
  std::unique_ptr<Source> source;
  std::vector<std::unique_ptr<Sink>> sinks;
  StreamOptions options;
};

// How one stream ended.
struct StreamSummary {
  std::string name;
  Statistics statistics;  // camera = name
  bool failed = false;    // its sink or source failed fatally (the others ran on)
  std::string failure;    // why, one line
  RunFailureKind failure_kind = RunFailureKind::none;
};

struct RunSummary {
  // The whole run: every stream's counters summed, latencies over all frames; with one
  // stream, that stream's statistics (counts included).
  Statistics statistics;
  bool stopped_by_request = false;  // signal or a sink asked to stop
  bool failed = false;              // a stream failed fatally (with several: the first, named in `failure`)
  std::string failure;              // why, one line
  RunFailureKind failure_kind = RunFailureKind::none;
  std::vector<StreamSummary> streams;  // one per stream, in the order given
};

class Pipeline {
 public:
  // One stream (named ""): every field of `settings` applies.
  Pipeline(DetectorSetup& detector, std::unique_ptr<Source> source, std::vector<std::unique_ptr<Sink>> sinks,
           const PipelineSettings& settings);
  // Several named streams sharing the detector's workers. Throws detflow::Error for no stream,
  // a stream without a source, an empty or duplicate name, or options out of range.
  Pipeline(DetectorSetup& detector, std::vector<StreamSetup> streams, const PipelineSettings& settings);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  RunSummary run();
  void request_stop();

  std::size_t stream_count() const;
  const std::string& stream_name(std::size_t stream) const;
  // Index of the stream named `name`, or stream_count() when there is none.
  std::size_t stream_index(const std::string& name) const;
  const SourceInfo& source_info(std::size_t stream = 0) const;
  // Live statistics snapshot of the whole run (thread-safe): counters summed over the streams;
  // with one stream, its counts so far (lines, zones).
  Statistics snapshot() const;
  // One stream's snapshot (camera = its name; its counts so far).
  Statistics snapshot(std::size_t stream) const;
  // A stream's source state and supervision counters now (thread-safe).
  SourceCounters source_counters(std::size_t stream = 0) const;
  // The live counters and latency distributions behind snapshot(), for exporters that need
  // more than the summary (histogram buckets): of the whole run, or of one stream.
  // Thread-safe to read; they live as long as the Pipeline.
  const StatisticsRecorder& recorder() const;
  const StatisticsRecorder& recorder(std::size_t stream) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace detflow
