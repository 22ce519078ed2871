// flow_graph.h — the oneTBB flow graph behind Pipeline, with the per-frame work behind
// the FrameProcessor interface so tests can drive the graph with fake stages (no model).
// Internal to detflow_pipeline (and its tests); not a public header.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "detflow/pipeline/frame.h"
#include "detflow/pipeline/pipeline.h"
#include "detflow/pipeline/sink.h"
#include "detflow/pipeline/source.h"
#include "detflow/pipeline/statistics.h"
#include "detflow/pre/preprocess.h"
#include "detflow/tensor.h"

namespace detflow::detail {

// One in-flight frame: the graph's token. The graph owns max_in_flight of them and reuses
// each for many frames, so the tensors inside keep their buffers (no allocation per frame
// in steady state). A job is touched by one stage at a time.
struct FrameJob {
  std::uint64_t sequence = 0;   // admission order (dense, from 0): the sequencer's key
  FrameResult result;           // frame in, detections and timings out
  Tensor input;                 // preprocess -> infer
  Geometry geometry;            // preprocess -> postprocess
  std::vector<Tensor> outputs;  // infer -> postprocess
};

// The per-frame work. preprocess() and postprocess() may run concurrently for different
// jobs on any thread; infer() is called with worker in [0, inference_workers()) and never
// concurrently for the same worker. A stage signals a failure for its frame by throwing;
// the graph counts it and skips the remaining stages of that frame.
class FrameProcessor {
 public:
  virtual ~FrameProcessor() = default;
  virtual int inference_workers() const = 0;
  virtual void preprocess(FrameJob& job) = 0;
  virtual void infer(FrameJob& job, int worker) = 0;
  virtual void postprocess(FrameJob& job) = 0;
};

struct FlowGraphSettings {
  int max_in_flight = 2;        // K >= 1
  bool live = false;            // live: drop the waiting frame when K are busy; file: wait
  std::int64_t max_frames = 0;  // stop after this many frames read; 0 = no limit
  // >= 1: the stages run on frames whose admission sequence is a multiple of it; the others
  // skip preprocess, infer and postprocess (FrameResult::detector_ran = false) but still go
  // through the in-order step and the sinks, in order.
  int detection_interval = 1;
};

struct FlowGraphOutcome {
  bool stopped_by_request = false;                     // stop_requested was set, or a sink asked to stop
  bool failed = false;                                 // a sink or the source failed fatally
  std::string failure;                                 // the first fatal failure, one line
  RunFailureKind failure_kind = RunFailureKind::none;  // of the first fatal failure
};

// Opens every sink, runs source -> stages -> sinks until the stream ends, stop_requested
// becomes true or a sink fails, then waits for the graph and finishes every opened sink
// exactly once. A sink whose open() throws ends the run before any frame is read: the
// sinks opened before it are finished and the exception propagates. Whoever sets
// stop_requested from another thread must also call source.stop() to unblock a read.
// `in_order` (tracking) is the serial step between the sequencer and the sinks: called in
// frame order, from one thread at a time, for frames that did not fail; empty: none. What it
// throws fails that frame only.
// `at_end` (tracking) is called once after the last frame has left the graph and before the
// sinks finish, unless the run failed fatally; when it returns true, the result it filled
// (frame null: the end-of-stream result of frame.h) is given to every sink. What it throws is
// logged and ends nothing else.
FlowGraphOutcome run_flow_graph(Source& source, std::span<Sink* const> sinks, FrameProcessor& processor,
                                const FlowGraphSettings& settings, StatisticsRecorder& statistics,
                                std::atomic<bool>& stop_requested,
                                const std::function<void(FrameResult&)>& in_order = {},
                                const std::function<bool(FrameResult&)>& at_end = {});

}  // namespace detflow::detail
