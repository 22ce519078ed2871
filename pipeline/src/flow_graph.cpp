#include "flow_graph.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>

#include <oneapi/tbb/concurrent_queue.h>
#include <oneapi/tbb/flow_graph.h>
#include <spdlog/spdlog.h>

#include "detflow/error.h"

namespace detflow::detail {
namespace {

namespace flow = oneapi::tbb::flow;

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The limiter of the diagram: K reusable jobs (tokens) plus the live mode's one-slot
// mailbox. Admission assigns the sequence number under the same lock that decides which
// frame gets a slot, so sequence order is capture order. Invariant: a frame waits in the
// mailbox only while no slot is free, so a released slot always serves it first.
class FrameLimiter {
 public:
  FrameLimiter(int slots, int detection_interval)
      : detection_interval_(static_cast<std::uint64_t>(detection_interval)) {
    jobs_.reserve(static_cast<std::size_t>(slots));
    for (int slot = 0; slot < slots; ++slot) {
      jobs_.push_back(std::make_unique<FrameJob>());
      free_.push_back(jobs_.back().get());
    }
  }

  // File mode: blocks until a slot is free. nullptr when abandon() was called.
  FrameJob* admit_waiting(FramePtr frame) {
    std::unique_lock lock(mutex_);
    slot_freed_.wait(lock, [&] { return !free_.empty() || abandoned_; });
    if (abandoned_) return nullptr;
    return start(take_free_slot(), std::move(frame));
  }

  struct Offer {
    FrameJob* admitted = nullptr;   // put this into the graph
    bool replaced_waiting = false;  // a frame that was waiting has been dropped
  };
  // Live mode: never blocks.
  Offer offer(FramePtr frame) {
    std::lock_guard lock(mutex_);
    Offer offer;
    if (!free_.empty()) {
      offer.admitted = start(take_free_slot(), std::move(frame));
    } else {
      offer.replaced_waiting = waiting_ != nullptr;
      waiting_ = std::move(frame);
    }
    return offer;
  }

  struct Release {
    FrameJob* admitted = nullptr;    // the waiting frame, now in the released slot
    bool discarded_waiting = false;  // the waiting frame was thrown away (stopping)
  };
  Release release(FrameJob* job, bool admit_waiting) {
    job->result.frame.reset();  // the frame's pixels go as soon as the sinks are done
    std::lock_guard lock(mutex_);
    Release release;
    if (waiting_ && admit_waiting) {
      release.admitted = start(job, std::move(waiting_));
      waiting_.reset();
      return release;
    }
    release.discarded_waiting = waiting_ != nullptr;
    waiting_.reset();
    free_.push_back(job);
    slot_freed_.notify_one();
    return release;
  }

  void abandon() {
    std::lock_guard lock(mutex_);
    abandoned_ = true;
    slot_freed_.notify_all();
  }

 private:
  FrameJob* take_free_slot() {
    FrameJob* job = free_.back();
    free_.pop_back();
    return job;
  }
  FrameJob* start(FrameJob* job, FramePtr frame) {
    job->sequence = next_sequence_++;
    job->result.frame = std::move(frame);
    job->result.detections.clear();
    job->result.times = {};
    job->result.failed = false;
    job->result.failure.clear();
    job->result.detector_ran = detection_interval_ <= 1 || job->sequence % detection_interval_ == 0;
    return job;
  }

  std::mutex mutex_;
  std::condition_variable slot_freed_;
  std::vector<std::unique_ptr<FrameJob>> jobs_;
  std::vector<FrameJob*> free_;
  FramePtr waiting_;
  std::uint64_t next_sequence_ = 0;
  bool abandoned_ = false;
  const std::uint64_t detection_interval_;
};

// Per-frame failures can repeat every frame (a broken stream, a model that rejects every
// input): the first few are logged, then one summary line every few seconds.
class FailureLog {
 public:
  void report(std::int64_t frame_index, const std::string& failure) {
    std::lock_guard lock(mutex_);
    ++total_;
    const auto now = Clock::now();
    if (total_ <= kLoggedInFull) {
      spdlog::warn("frame {}: {}", frame_index, failure);
      if (total_ == kLoggedInFull) spdlog::warn("further frame failures are summarised every {} s", kSummarySeconds);
      last_summary_ = now;
      return;
    }
    ++since_summary_;
    if (now - last_summary_ >= std::chrono::seconds(kSummarySeconds)) {
      spdlog::warn("{} more frames failed (last: frame {}: {})", since_summary_, frame_index, failure);
      since_summary_ = 0;
      last_summary_ = now;
    }
  }

 private:
  static constexpr std::int64_t kLoggedInFull = 5;
  static constexpr int kSummarySeconds = 5;
  std::mutex mutex_;
  std::int64_t total_ = 0;
  std::int64_t since_summary_ = 0;
  Clock::time_point last_summary_{};
};

// Run state shared by the node bodies and the capture thread.
class RunControl {
 public:
  RunControl(Source& source, std::atomic<bool>& stop_requested) : source_(source), stop_requested_(stop_requested) {}

  bool stopping() const { return stop_requested_.load() || fatal_.load(); }
  bool fatal() const { return fatal_.load(); }

  void fail(const std::string& failure, RunFailureKind kind) {
    {
      std::lock_guard lock(mutex_);
      if (!fatal_.load()) {
        failure_ = failure;
        failure_kind_ = kind;
      }
      fatal_.store(true);
    }
    source_.stop();
  }
  void request_clean_stop() {
    stop_requested_.store(true);
    source_.stop();
  }
  std::string failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
  }
  RunFailureKind failure_kind() const {
    std::lock_guard lock(mutex_);
    return failure_kind_;
  }

 private:
  Source& source_;
  std::atomic<bool>& stop_requested_;
  std::atomic<bool> fatal_{false};
  mutable std::mutex mutex_;
  std::string failure_;
  RunFailureKind failure_kind_ = RunFailureKind::none;
};

void finish_sinks(std::span<Sink* const> sinks, RunControl* control) {
  for (Sink* sink : sinks) {
    try {
      sink->finish();
    } catch (const std::exception& error) {
      spdlog::error("sink {}: finish failed: {}", sink->name(), error.what());
      if (control) control->fail("sink " + sink->name() + ": " + error.what(), RunFailureKind::sink);
    }
  }
}

}  // namespace

FlowGraphOutcome run_flow_graph(Source& source, std::span<Sink* const> sinks, FrameProcessor& processor,
                                const FlowGraphSettings& settings, StatisticsRecorder& statistics,
                                std::atomic<bool>& stop_requested, const std::function<void(FrameResult&)>& in_order,
                                const std::function<bool(FrameResult&)>& at_end) {
  if (settings.max_in_flight < 1) {
    throw Error("max_in_flight " + std::to_string(settings.max_in_flight) + " is invalid (expected >= 1)");
  }
  if (settings.detection_interval < 1) {
    throw Error("detection interval " + std::to_string(settings.detection_interval) + " is invalid (expected >= 1)");
  }
  const int workers = processor.inference_workers();
  if (workers < 1) throw Error("inference workers " + std::to_string(workers) + " is invalid (expected >= 1)");

  std::vector<Sink*> opened;
  try {
    for (Sink* sink : sinks) {
      sink->open(source.info());
      opened.push_back(sink);
    }
  } catch (...) {
    finish_sinks(opened, nullptr);
    throw;
  }

  const SourceInfo& source_info = source.info();
  std::int64_t expected_frames = source_info.live ? -1 : source_info.frame_count;
  if (expected_frames >= 0 && settings.max_frames > 0) expected_frames = std::min(expected_frames, settings.max_frames);
  statistics.frames_total.store(expected_frames);
  statistics.start();

  RunControl control(source, stop_requested);
  FrameLimiter limiter(settings.max_in_flight, settings.detection_interval);
  FailureLog failure_log;
  oneapi::tbb::concurrent_queue<int> idle_workers;
  for (int worker = 0; worker < workers; ++worker) idle_workers.push(worker);

  // A stage that throws fails its frame only: the frame keeps its slot and its place in
  // the order, and reaches the sinks marked failed so counts and ordering stay whole.
  const auto run_stage = [&](FrameJob& job, const char* stage, LatencyRecorder& latency, double& stage_ms,
                             const std::function<void()>& work) {
    if (job.result.failed || !job.result.detector_ran) return;  // skipped frames record no latency
    const auto start = Clock::now();
    try {
      work();
    } catch (const std::exception& error) {
      job.result.failed = true;
      job.result.failure = std::string(stage) + ": " + error.what();
    } catch (...) {
      job.result.failed = true;
      job.result.failure = std::string(stage) + ": unknown exception";
    }
    stage_ms = milliseconds_since(start);
    latency.record(stage_ms);
    if (job.result.failed) failure_log.report(job.result.frame->index, job.result.failure);
  };

  const auto deliver_to_sinks = [&](FrameJob& job) {
    FrameResult& result = job.result;
    const double waited_ms = milliseconds_since(result.frame->captured);
    result.times.queue_ms =
        std::max(0.0, waited_ms - result.times.preprocess_ms - result.times.inference_ms - result.times.postprocess_ms);
    if (control.fatal()) {
      statistics.frames_dropped.fetch_add(1);
      return;
    }
    const auto start = Clock::now();
    for (Sink* sink : opened) {
      try {
        if (!sink->consume(result)) control.request_clean_stop();
      } catch (const std::exception& error) {
        control.fail("sink " + sink->name() + ": " + error.what(), RunFailureKind::sink);
        break;
      }
    }
    statistics.sinks.record(milliseconds_since(start));
    if (control.fatal()) {
      statistics.frames_dropped.fetch_add(1);
      return;
    }
    if (result.failed) {
      statistics.frames_failed.fetch_add(1);
    } else {
      statistics.frames_processed.fetch_add(1);
      if (result.detector_ran) statistics.frames_detected.fetch_add(1);
      statistics.detections.fetch_add(static_cast<std::int64_t>(result.detections.size()));
    }
    statistics.capture_to_output.record(milliseconds_since(result.frame->captured));
  };

  // The in-order step (tracking): a failure there fails the frame, like any stage.
  const auto run_in_order = [&](FrameJob& job) {
    job.result.tracks.clear();
    job.result.events.clear();
    job.result.counts = nullptr;
    job.result.analytics = nullptr;
    if (!in_order || job.result.failed || control.fatal()) return;
    try {
      in_order(job.result);
    } catch (const std::exception& error) {
      job.result.failed = true;
      job.result.failure = std::string("tracking: ") + error.what();
      failure_log.report(job.result.frame->index, job.result.failure);
    }
  };

  flow::graph graph;
  using Job = FrameJob*;

  // Nodes, in the order of the diagram in pipeline.h.
  flow::broadcast_node<Job> admitted(graph);
  flow::function_node<Job, Job> preprocess(graph, flow::unlimited, [&](Job job) {
    run_stage(*job, "preprocess", statistics.preprocess, job->result.times.preprocess_ms,
              [&] { processor.preprocess(*job); });
    return job;
  });
  flow::function_node<Job, Job> infer(graph, static_cast<std::size_t>(workers), [&](Job job) {
    int worker = 0;
    // The node runs at most `workers` bodies at once, so an idle worker always exists.
    while (!idle_workers.try_pop(worker)) std::this_thread::yield();
    run_stage(*job, "inference", statistics.inference, job->result.times.inference_ms,
              [&] { processor.infer(*job, worker); });
    idle_workers.push(worker);
    return job;
  });
  flow::function_node<Job, Job> postprocess(graph, flow::unlimited, [&](Job job) {
    run_stage(*job, "postprocess", statistics.postprocess, job->result.times.postprocess_ms,
              [&] { processor.postprocess(*job); });
    return job;
  });
  flow::sequencer_node<Job> restore_order(graph,
                                          [](const Job& job) { return static_cast<std::size_t>(job->sequence); });
  // Tracking and the sinks share one serial node: two chained serial nodes do not keep order
  // in oneTBB (a serial function_node spawns its next queued body before it forwards the
  // current output, so frame n + 1 can overtake frame n between them; seen as swapped JSON
  // Lines under load).
  flow::function_node<Job, Job> track_and_deliver(graph, flow::serial, [&](Job job) {
    run_in_order(*job);
    deliver_to_sinks(*job);
    return job;
  });
  using ReturnToken = flow::multifunction_node<Job, std::tuple<Job>>;
  ReturnToken return_token(graph, flow::serial, [&](Job job, ReturnToken::output_ports_type& ports) {
    const auto release = limiter.release(job, !control.stopping());
    if (release.discarded_waiting) statistics.frames_dropped.fetch_add(1);
    if (release.admitted) std::get<0>(ports).try_put(release.admitted);
  });

  // Edges, in diagram order; the last one closes the loop for a frame waiting in live mode.
  flow::make_edge(admitted, preprocess);
  flow::make_edge(preprocess, infer);
  flow::make_edge(infer, postprocess);
  flow::make_edge(postprocess, restore_order);
  flow::make_edge(restore_order, track_and_deliver);
  flow::make_edge(track_and_deliver, return_token);
  flow::make_edge(flow::output_port<0>(return_token), admitted);

  // The capture thread decodes while the graph works; reserve_wait keeps wait_for_all
  // from returning before the capture thread has put its last frame.
  graph.reserve_wait();
  std::thread capture([&] {
    std::int64_t index = 0;
    try {
      while (!control.stopping()) {
        if (settings.max_frames > 0 && index >= settings.max_frames) break;
        auto frame = std::make_shared<Frame>();
        if (!source.read(*frame)) break;
        frame->index = index++;
        frame->captured = Clock::now();
        statistics.frames_read.fetch_add(1);
        if (settings.live) {
          const auto offer = limiter.offer(std::move(frame));
          if (offer.replaced_waiting) statistics.frames_dropped.fetch_add(1);
          if (offer.admitted) admitted.try_put(offer.admitted);
        } else {
          FrameJob* job = limiter.admit_waiting(std::move(frame));
          if (!job) {
            statistics.frames_dropped.fetch_add(1);
            break;
          }
          admitted.try_put(job);
        }
      }
    } catch (const Error& error) {
      control.fail(std::string("source: ") + error.what(),
                   error.kind() == ErrorKind::source_lost ? RunFailureKind::source_lost : RunFailureKind::source);
    } catch (const std::exception& error) {
      control.fail(std::string("source: ") + error.what(), RunFailureKind::source);
    }
    graph.release_wait();
  });

  std::string graph_failure;
  try {
    graph.wait_for_all();
  } catch (const std::exception& error) {
    graph_failure = std::string("flow graph: ") + error.what();
  } catch (...) {
    graph_failure = "flow graph: unknown exception";
  }
  if (!graph_failure.empty()) {
    // Node bodies catch everything, so this is resource exhaustion or a bug: wake the
    // capture thread, let the cancelled graph settle, and end the run as failed.
    control.fail(graph_failure, RunFailureKind::graph);
    limiter.abandon();
  }
  capture.join();
  if (!graph_failure.empty()) {
    try {
      graph.wait_for_all();
    } catch (...) {
      spdlog::error("flow graph failed again while draining");
    }
  }

  // The end of the stream for the in-order step (tracking: every live track ends), delivered
  // like a frame before the sinks finish so event outputs are complete.
  if (at_end && !control.fatal()) {
    FrameResult end;
    bool has_events = false;
    try {
      has_events = at_end(end);
    } catch (const std::exception& error) {
      spdlog::warn("end of stream: {}", error.what());
    }
    end.frame.reset();
    for (Sink* sink : opened) {
      if (!has_events) break;
      try {
        sink->consume(end);  // a stop request changes nothing now
      } catch (const std::exception& error) {
        control.fail("sink " + sink->name() + ": " + error.what(), RunFailureKind::sink);
        break;
      }
    }
  }

  finish_sinks(opened, &control);
  statistics.stop_clock();
  statistics.frames_corrupt.store(source.counters().corrupt_frames);

  FlowGraphOutcome outcome;
  outcome.failed = control.fatal();
  outcome.failure = control.failure();
  outcome.failure_kind = control.failure_kind();
  outcome.stopped_by_request = stop_requested.load();
  return outcome;
}

}  // namespace detflow::detail
