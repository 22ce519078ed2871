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
  std::size_t stream = 0;       // index of the stream the frame belongs to
  std::uint64_t sequence = 0;   // admission order within the stream (dense, from 0): the sequencer's key
  int worker = -1;              // the inference worker the scheduler gave this frame
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

// One stream's policy in the graph.
struct FlowGraphSettings {
  int max_in_flight = 2;        // K >= 1, this stream's frames in the graph at once
  bool live = false;            // live: drop the waiting frame when K are busy; file: wait
  std::int64_t max_frames = 0;  // stop after this many frames read; 0 = no limit
  // >= 1: the stages run on frames whose admission sequence is a multiple of it; the others
  // skip preprocess, infer and postprocess (FrameResult::detector_ran = false) but still go
  // through the in-order step and the sinks, in order.
  int detection_interval = 1;
};

// How one stream's run ended.
struct FlowGraphOutcome {
  bool stopped_by_request = false;                     // stop_requested was set, or a sink asked to stop
  bool failed = false;                                 // a sink or the source failed fatally
  std::string failure;                                 // the first fatal failure, one line
  RunFailureKind failure_kind = RunFailureKind::none;  // of the first fatal failure
};

// One stream of the graph. Everything referred to is owned by the caller and outlives the run.
// `in_order` (tracking) is the stream's serial step between its sequencer and its sinks:
// called in frame order, from one thread at a time, for frames that did not fail; empty: none.
// What it throws fails that frame only.
// `at_end` (tracking) is called once after the stream's last frame has left the graph and
// before its sinks finish, unless the stream failed fatally; when it returns true, the result
// it filled (frame null: the end-of-stream result of frame.h) is given to every sink of the
// stream. What it throws is logged and ends nothing else.
struct GraphStream {
  std::string name;  // prefixes per-frame failure logs when non-empty
  Source* source = nullptr;
  std::vector<Sink*> sinks;
  FlowGraphSettings settings;
  StatisticsRecorder* statistics = nullptr;
  std::function<void(FrameResult&)> in_order;
  std::function<bool(FrameResult&)> at_end;
};

// Opens every stream's sinks, then runs each stream source -> stages -> its sinks until every
// stream has ended (end of stream, its source or a sink failed fatally) or stop_requested
// becomes true, then waits for the graph. A stream's sinks are finished exactly once, as soon
// as its last frame has left the graph, so a finished file's outputs are complete while other
// streams still run. A sink whose open() throws ends the run before any frame is read: the
// sinks opened before it are finished and the exception propagates. Whoever sets
// stop_requested from another thread must also call every source's stop() to unblock a read.
// A sink asking to stop (consume() false) sets stop_requested and stops every source.
// Frames are recorded in their stream's statistics and, when `total` is given and differs, in
// `total` too. The inference workers serve streams in round-robin order (see
// InferenceScheduler in flow_graph.cpp). Returns one outcome per stream, in order.
std::vector<FlowGraphOutcome> run_flow_graph(std::span<const GraphStream> streams, FrameProcessor& processor,
                                             StatisticsRecorder* total, std::atomic<bool>& stop_requested);

// The default K of a stream (pipeline.max_in_flight 0): enough frames that every worker can
// run a detector frame at once. At detection interval N, `workers` detector frames in a row
// span (workers - 1) * N + 1 frames; the frames between them only wait for the in-order step.
// Capped at 4 frames per worker, so a long interval does not hold many decoded frames (there
// one inference already covers several frames). Files get one more frame, so preprocessing
// and output overlap inference; live sources do not (that frame would wait a whole inference
// while the mailbox holds a newer one). At N = 1: workers (live), workers + 1 (file).
int default_max_in_flight(int workers, int detection_interval, bool live);

// One stream (the form the tests of ordering, dropping and failures use).
FlowGraphOutcome run_flow_graph(Source& source, std::span<Sink* const> sinks, FrameProcessor& processor,
                                const FlowGraphSettings& settings, StatisticsRecorder& statistics,
                                std::atomic<bool>& stop_requested,
                                const std::function<void(FrameResult&)>& in_order = {},
                                const std::function<bool(FrameResult&)>& at_end = {});

}  // namespace detflow::detail
