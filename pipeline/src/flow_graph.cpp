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

// The limiter of the diagram, one per stream: K reusable jobs (tokens) plus the live mode's
// one-slot mailbox. Admission assigns the sequence number under the same lock that decides
// which frame gets a slot, so sequence order is capture order. Invariant: a frame waits in the
// mailbox only while no slot is free, so a released slot always serves it first.
class FrameLimiter {
 public:
  FrameLimiter(std::size_t stream, int slots, int detection_interval)
      : stream_(stream), detection_interval_(static_cast<std::uint64_t>(detection_interval)) {
    jobs_.reserve(static_cast<std::size_t>(slots));
    for (int slot = 0; slot < slots; ++slot) {
      jobs_.push_back(std::make_unique<FrameJob>());
      jobs_.back()->stream = stream;
      free_.push_back(jobs_.back().get());
    }
  }

  int slots() const { return static_cast<int>(jobs_.size()); }

  // File mode: blocks until a slot is free. nullptr when abandon() was called.
  FrameJob* admit_waiting(FramePtr frame) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !free_.empty() || abandoned_; });
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
    changed_.notify_all();
    return release;
  }

  // After the capture loop: blocks until every job has come back (the stream's last frame has
  // left the graph). False when abandon() was called first.
  bool wait_until_idle() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return (free_.size() == jobs_.size() && !waiting_) || abandoned_; });
    return !abandoned_;
  }

  void abandon() {
    std::lock_guard lock(mutex_);
    abandoned_ = true;
    changed_.notify_all();
  }

 private:
  FrameJob* take_free_slot() {
    FrameJob* job = free_.back();
    free_.pop_back();
    return job;
  }
  FrameJob* start(FrameJob* job, FramePtr frame) {
    job->stream = stream_;
    job->sequence = next_sequence_++;
    job->worker = -1;
    job->result.frame = std::move(frame);
    job->result.detections.clear();
    job->result.times = {};
    job->result.failed = false;
    job->result.failure.clear();
    job->result.detector_ran = detection_interval_ <= 1 || job->sequence % detection_interval_ == 0;
    return job;
  }

  std::mutex mutex_;
  std::condition_variable changed_;  // a slot came back, or abandoned
  std::vector<std::unique_ptr<FrameJob>> jobs_;
  std::vector<FrameJob*> free_;
  FramePtr waiting_;
  std::uint64_t next_sequence_ = 0;
  bool abandoned_ = false;
  const std::size_t stream_;
  const std::uint64_t detection_interval_;
};

// The scheduler of the diagram: who gets an inference worker next. Streams are served in
// round-robin order, one frame per stream with a preprocessed frame waiting, per turn.
// Why round robin and not first come, first served: every stream has its own in-flight limit,
// but a file stream refills its slots the moment a frame leaves, so under FIFO its share of
// the workers grows with its K (a file with K = 2 next to four cameras with K = 1 took 2/6 of
// the frames, leaving each camera 83 % of an equal share). Frames cost the same inference
// whichever stream they come from, so plain round robin is deficit round robin with equal
// quanta: each stream that has work gets an equal share, idle streams' shares go to the
// others, and a camera's frame waits at most one frame of each other stream.
// Bounded: a stream never has more than its K frames waiting; the queues are rings sized once.
class InferenceScheduler {
 public:
  InferenceScheduler(const std::vector<int>& slots_per_stream, int workers) {
    queues_.resize(slots_per_stream.size());
    for (std::size_t stream = 0; stream < queues_.size(); ++stream) {
      queues_[stream].ring.assign(static_cast<std::size_t>(std::max(1, slots_per_stream[stream])), nullptr);
    }
    for (int worker = workers - 1; worker >= 0; --worker) idle_workers_.push_back(worker);
  }

  // A preprocessed frame wants a worker. Returns the frame to run now (not necessarily this
  // one: the stream whose turn it is), its `worker` set; nullptr when every worker is busy.
  FrameJob* submit(FrameJob* job) {
    std::lock_guard lock(mutex_);
    queues_[job->stream].push(job);
    if (idle_workers_.empty()) return nullptr;
    const int worker = idle_workers_.back();
    idle_workers_.pop_back();
    return take_next(worker);
  }

  // `worker` has finished a frame: the next frame for it, or nullptr (it goes idle).
  FrameJob* next_for(int worker) {
    std::lock_guard lock(mutex_);
    FrameJob* job = take_next(worker);
    if (!job) idle_workers_.push_back(worker);
    return job;
  }

 private:
  struct Ring {
    std::vector<FrameJob*> ring;
    std::size_t head = 0, size = 0;
    void push(FrameJob* job) {
      // At most K jobs of a stream exist, so the ring (K entries) never overflows.
      ring[(head + size) % ring.size()] = job;
      ++size;
    }
    FrameJob* pop() {
      FrameJob* job = ring[head];
      head = (head + 1) % ring.size();
      --size;
      return job;
    }
  };

  FrameJob* take_next(int worker) {
    for (std::size_t step = 0; step < queues_.size(); ++step) {
      const std::size_t stream = (next_stream_ + step) % queues_.size();
      if (queues_[stream].size == 0) continue;
      next_stream_ = (stream + 1) % queues_.size();
      FrameJob* job = queues_[stream].pop();
      job->worker = worker;
      return job;
    }
    return nullptr;
  }

  std::mutex mutex_;
  std::vector<Ring> queues_;  // one per stream
  std::vector<int> idle_workers_;
  std::size_t next_stream_ = 0;  // whose turn comes first
};

// Per-frame failures can repeat every frame (a broken stream, a model that rejects every
// input): the first few are logged, then one summary line every few seconds. One per stream.
class FailureLog {
 public:
  explicit FailureLog(std::string prefix) : prefix_(std::move(prefix)) {}

  void report(std::int64_t frame_index, const std::string& failure) {
    std::lock_guard lock(mutex_);
    ++total_;
    const auto now = Clock::now();
    if (total_ <= kLoggedInFull) {
      spdlog::warn("{}frame {}: {}", prefix_, frame_index, failure);
      if (total_ == kLoggedInFull) {
        spdlog::warn("{}further frame failures are summarised every {} s", prefix_, kSummarySeconds);
      }
      last_summary_ = now;
      return;
    }
    ++since_summary_;
    if (now - last_summary_ >= std::chrono::seconds(kSummarySeconds)) {
      spdlog::warn("{}{} more frames failed (last: frame {}: {})", prefix_, since_summary_, frame_index, failure);
      since_summary_ = 0;
      last_summary_ = now;
    }
  }

 private:
  static constexpr std::int64_t kLoggedInFull = 5;
  static constexpr int kSummarySeconds = 5;
  const std::string prefix_;  // "stream NAME: " or empty
  std::mutex mutex_;
  std::int64_t total_ = 0;
  std::int64_t since_summary_ = 0;
  Clock::time_point last_summary_{};
};

// One stream's run state, shared by the node bodies and its capture thread. A fatal failure
// ends this stream only; a stop request (signal, a sink asking to stop) ends every stream.
class RunControl {
 public:
  RunControl(Source& source, std::atomic<bool>& stop_requested, std::function<void()> stop_every_source)
      : source_(source), stop_requested_(stop_requested), stop_every_source_(std::move(stop_every_source)) {}

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
    stop_every_source_();
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
  std::function<void()> stop_every_source_;
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

void check_stream(const GraphStream& stream, int workers) {
  const std::string which = stream.name.empty() ? "" : "stream " + stream.name + ": ";
  if (!stream.source || !stream.statistics) throw Error(which + "no source or statistics given");
  if (stream.settings.max_in_flight < 1) {
    throw Error(which + "max_in_flight " + std::to_string(stream.settings.max_in_flight) +
                " is invalid (expected >= 1)");
  }
  if (stream.settings.detection_interval < 1) {
    throw Error(which + "detection interval " + std::to_string(stream.settings.detection_interval) +
                " is invalid (expected >= 1)");
  }
  if (workers < 1) throw Error("inference workers " + std::to_string(workers) + " is invalid (expected >= 1)");
}

// Everything the graph keeps for one stream while it runs.
struct StreamState {
  StreamState(const GraphStream& stream_in, std::size_t index, std::atomic<bool>& stop_requested,
              std::function<void()> stop_every_source)
      : stream(stream_in),
        control(*stream_in.source, stop_requested, std::move(stop_every_source)),
        limiter(index, stream_in.settings.max_in_flight, stream_in.settings.detection_interval),
        failure_log(stream_in.name.empty() ? std::string() : "stream " + stream_in.name + ": ") {}

  const GraphStream& stream;
  RunControl control;
  FrameLimiter limiter;
  FailureLog failure_log;
  std::vector<Sink*> opened;          // sinks whose open() succeeded
  std::atomic<bool> finished{false};  // its sinks are finished
};

}  // namespace

std::vector<FlowGraphOutcome> run_flow_graph(std::span<const GraphStream> streams, FrameProcessor& processor,
                                             StatisticsRecorder* total, std::atomic<bool>& stop_requested) {
  if (streams.empty()) throw Error("no stream to run");
  const int workers = processor.inference_workers();
  for (const GraphStream& stream : streams) check_stream(stream, workers);
  if (total == streams.front().statistics && streams.size() == 1) total = nullptr;  // one stream: no double count

  const auto stop_every_source = [streams] {
    for (const GraphStream& stream : streams) stream.source->stop();
  };
  std::vector<std::unique_ptr<StreamState>> states;
  for (std::size_t index = 0; index < streams.size(); ++index) {
    states.push_back(std::make_unique<StreamState>(streams[index], index, stop_requested, stop_every_source));
  }

  // Every sink opens before any frame is read; one that cannot open ends the run here.
  try {
    for (auto& state : states) {
      for (Sink* sink : state->stream.sinks) {
        sink->open(state->stream.source->info());
        state->opened.push_back(sink);
      }
    }
  } catch (...) {
    for (auto& state : states) finish_sinks(state->opened, nullptr);
    throw;
  }

  for (auto& state : states) {
    const SourceInfo& source_info = state->stream.source->info();
    std::int64_t expected_frames = source_info.live ? -1 : source_info.frame_count;
    if (expected_frames >= 0 && state->stream.settings.max_frames > 0) {
      expected_frames = std::min(expected_frames, state->stream.settings.max_frames);
    }
    state->stream.statistics->frames_total.store(expected_frames);
    state->stream.statistics->start();
  }
  if (total) {
    std::int64_t expected_frames = 0;
    for (auto& state : states) {
      const std::int64_t frames = state->stream.statistics->frames_total.load();
      expected_frames = frames < 0 || expected_frames < 0 ? -1 : expected_frames + frames;
    }
    total->frames_total.store(expected_frames);
    total->start();
  }

  // Counters and latencies go to the frame's stream and to the run's total.
  const auto count = [total](StreamState& state, std::atomic<std::int64_t> StatisticsRecorder::*counter,
                             std::int64_t amount = 1) {
    (state.stream.statistics->*counter).fetch_add(amount);
    if (total) (total->*counter).fetch_add(amount);
  };
  const auto record = [total](StreamState& state, LatencyRecorder StatisticsRecorder::*latency, double ms) {
    (state.stream.statistics->*latency).record(ms);
    if (total) (total->*latency).record(ms);
  };

  std::vector<int> slots_per_stream;
  for (auto& state : states) slots_per_stream.push_back(state->limiter.slots());
  InferenceScheduler scheduler(slots_per_stream, workers);

  // A stage that throws fails its frame only: the frame keeps its slot and its place in
  // the order, and reaches the sinks marked failed so counts and ordering stay whole.
  const auto run_stage = [&](FrameJob& job, const char* stage, LatencyRecorder StatisticsRecorder::*latency,
                             double& stage_ms, const std::function<void()>& work) {
    if (job.result.failed || !job.result.detector_ran) return;  // skipped frames record no latency
    StreamState& state = *states[job.stream];
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
    record(state, latency, stage_ms);
    if (job.result.failed) state.failure_log.report(job.result.frame->index, job.result.failure);
  };

  const auto deliver_to_sinks = [&](FrameJob& job) {
    StreamState& state = *states[job.stream];
    RunControl& control = state.control;
    FrameResult& result = job.result;
    const double waited_ms = milliseconds_since(result.frame->captured);
    result.times.queue_ms =
        std::max(0.0, waited_ms - result.times.preprocess_ms - result.times.inference_ms - result.times.postprocess_ms);
    if (control.fatal()) {
      count(state, &StatisticsRecorder::frames_dropped);
      return;
    }
    const auto start = Clock::now();
    for (Sink* sink : state.opened) {
      try {
        if (!sink->consume(result)) control.request_clean_stop();
      } catch (const std::exception& error) {
        control.fail("sink " + sink->name() + ": " + error.what(), RunFailureKind::sink);
        break;
      }
    }
    record(state, &StatisticsRecorder::sinks, milliseconds_since(start));
    if (control.fatal()) {
      count(state, &StatisticsRecorder::frames_dropped);
      return;
    }
    if (result.failed) {
      count(state, &StatisticsRecorder::frames_failed);
    } else {
      count(state, &StatisticsRecorder::frames_processed);
      if (result.detector_ran) count(state, &StatisticsRecorder::frames_detected);
      count(state, &StatisticsRecorder::detections, static_cast<std::int64_t>(result.detections.size()));
    }
    record(state, &StatisticsRecorder::capture_to_output, milliseconds_since(result.frame->captured));
  };

  // The in-order step (tracking): a failure there fails the frame, like any stage.
  const auto run_in_order = [&](FrameJob& job) {
    StreamState& state = *states[job.stream];
    job.result.tracks.clear();
    job.result.events.clear();
    job.result.counts = nullptr;
    job.result.analytics = nullptr;
    if (!state.stream.in_order || job.result.failed || state.control.fatal()) return;
    try {
      state.stream.in_order(job.result);
    } catch (const std::exception& error) {
      job.result.failed = true;
      job.result.failure = std::string("tracking: ") + error.what();
      state.failure_log.report(job.result.frame->index, job.result.failure);
    }
  };

  // The end of a stream: the in-order step's end (tracking: every live track ends), delivered
  // like a frame, then its sinks finish. Runs once per stream, after its last frame.
  const auto finish_stream = [&](StreamState& state) {
    if (state.finished.exchange(true)) return;
    RunControl& control = state.control;
    if (state.stream.at_end && !control.fatal()) {
      FrameResult end;
      bool has_events = false;
      try {
        has_events = state.stream.at_end(end);
      } catch (const std::exception& error) {
        spdlog::warn("{}end of stream: {}", state.stream.name.empty() ? "" : "stream " + state.stream.name + ": ",
                     error.what());
      }
      end.frame.reset();
      for (Sink* sink : state.opened) {
        if (!has_events) break;
        try {
          sink->consume(end);  // a stop request changes nothing now
        } catch (const std::exception& error) {
          control.fail("sink " + sink->name() + ": " + error.what(), RunFailureKind::sink);
          break;
        }
      }
    }
    finish_sinks(state.opened, &control);
    state.stream.statistics->stop_clock();
    state.stream.statistics->frames_corrupt.store(state.stream.source->counters().corrupt_frames);
  };

  flow::graph graph;
  using Job = FrameJob*;
  using Stage = flow::multifunction_node<Job, std::tuple<Job, Job>>;

  // Nodes, in the order of the diagram in pipeline.h. Shared by every stream:
  flow::broadcast_node<Job> admitted(graph);
  // preprocess: a frame that needs inference goes to the scheduler (port 0 gets whichever frame
  // it hands a worker); a skipped or failed frame goes straight to postprocess (port 1).
  Stage preprocess(graph, flow::unlimited, [&](Job job, Stage::output_ports_type& ports) {
    run_stage(*job, "preprocess", &StatisticsRecorder::preprocess, job->result.times.preprocess_ms,
              [&] { processor.preprocess(*job); });
    if (job->result.failed || !job->result.detector_ran) {
      std::get<1>(ports).try_put(job);
    } else if (Job next = scheduler.submit(job)) {
      std::get<0>(ports).try_put(next);
    }
  });
  // infer: at most `workers` bodies at once (the scheduler hands out one frame per idle worker);
  // the worker's next frame, if any is waiting, loops back to this node (port 1).
  Stage infer(graph, flow::unlimited, [&](Job job, Stage::output_ports_type& ports) {
    const int worker = job->worker;
    run_stage(*job, "inference", &StatisticsRecorder::inference, job->result.times.inference_ms,
              [&] { processor.infer(*job, worker); });
    Job next = scheduler.next_for(worker);
    std::get<0>(ports).try_put(job);
    if (next) std::get<1>(ports).try_put(next);
  });
  flow::function_node<Job, Job> postprocess(graph, flow::unlimited, [&](Job job) {
    run_stage(*job, "postprocess", &StatisticsRecorder::postprocess, job->result.times.postprocess_ms,
              [&] { processor.postprocess(*job); });
    return job;
  });
  // Per stream: restore its frame order, track and deliver, return its token.
  using ReturnToken = flow::multifunction_node<Job, std::tuple<Job>>;
  std::vector<std::unique_ptr<flow::sequencer_node<Job>>> restore_order;
  std::vector<std::unique_ptr<flow::function_node<Job, Job>>> track_and_deliver;
  std::vector<std::unique_ptr<ReturnToken>> return_token;
  for (auto& state_pointer : states) {
    StreamState& state = *state_pointer;
    restore_order.push_back(std::make_unique<flow::sequencer_node<Job>>(
        graph, [](const Job& job) { return static_cast<std::size_t>(job->sequence); }));
    // Tracking and the sinks share one serial node: two chained serial nodes do not keep order
    // in oneTBB (a serial function_node spawns its next queued body before it forwards the
    // current output, so frame n + 1 can overtake frame n between them; seen as swapped JSON
    // Lines under load).
    track_and_deliver.push_back(std::make_unique<flow::function_node<Job, Job>>(graph, flow::serial, [&](Job job) {
      run_in_order(*job);
      deliver_to_sinks(*job);
      return job;
    }));
    return_token.push_back(
        std::make_unique<ReturnToken>(graph, flow::serial, [&](Job job, ReturnToken::output_ports_type& ports) {
          const auto release = state.limiter.release(job, !state.control.stopping());
          if (release.discarded_waiting) count(state, &StatisticsRecorder::frames_dropped);
          if (release.admitted) std::get<0>(ports).try_put(release.admitted);
        }));
  }
  // The router after postprocess: each frame to its own stream's sequencer.
  flow::function_node<Job, flow::continue_msg> to_its_stream(graph, flow::unlimited, [&](Job job) {
    restore_order[job->stream]->try_put(job);
    return flow::continue_msg();
  });

  // Edges, in diagram order; the last ones close the loop for a frame waiting in live mode.
  flow::make_edge(admitted, preprocess);
  flow::make_edge(flow::output_port<0>(preprocess), infer);
  flow::make_edge(flow::output_port<1>(preprocess), postprocess);
  flow::make_edge(flow::output_port<0>(infer), postprocess);
  flow::make_edge(flow::output_port<1>(infer), infer);
  flow::make_edge(postprocess, to_its_stream);
  for (std::size_t stream = 0; stream < states.size(); ++stream) {
    flow::make_edge(*restore_order[stream], *track_and_deliver[stream]);
    flow::make_edge(*track_and_deliver[stream], *return_token[stream]);
    flow::make_edge(flow::output_port<0>(*return_token[stream]), admitted);
  }

  // One capture thread per stream decodes while the graph works; reserve_wait keeps
  // wait_for_all from returning before a capture thread has put its last frame. When its
  // source ends, the thread waits for the stream's last frame to leave and finishes its sinks,
  // so a finished file's outputs are complete while the other streams run on.
  std::vector<std::thread> captures;
  for (auto& state_pointer : states) {
    StreamState& state = *state_pointer;
    graph.reserve_wait();
    captures.emplace_back([&] {
      RunControl& control = state.control;
      Source& source = *state.stream.source;
      const FlowGraphSettings& settings = state.stream.settings;
      std::int64_t index = 0;
      try {
        while (!control.stopping()) {
          if (settings.max_frames > 0 && index >= settings.max_frames) break;
          auto frame = std::make_shared<Frame>();
          if (!source.read(*frame)) break;
          frame->index = index++;
          frame->captured = Clock::now();
          count(state, &StatisticsRecorder::frames_read);
          if (settings.live) {
            const auto offer = state.limiter.offer(std::move(frame));
            if (offer.replaced_waiting) count(state, &StatisticsRecorder::frames_dropped);
            if (offer.admitted) admitted.try_put(offer.admitted);
          } else {
            FrameJob* job = state.limiter.admit_waiting(std::move(frame));
            if (!job) {
              count(state, &StatisticsRecorder::frames_dropped);
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
      if (state.limiter.wait_until_idle()) finish_stream(state);
      graph.release_wait();
    });
  }

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
    // capture threads, let the cancelled graph settle, and end every stream as failed.
    for (auto& state : states) {
      state->control.fail(graph_failure, RunFailureKind::graph);
      state->limiter.abandon();
    }
  }
  for (std::thread& capture : captures) capture.join();
  if (!graph_failure.empty()) {
    try {
      graph.wait_for_all();
    } catch (...) {
      spdlog::error("flow graph failed again while draining");
    }
  }
  for (auto& state : states) finish_stream(*state);  // streams the failure left unfinished
  if (total) total->stop_clock();

  std::vector<FlowGraphOutcome> outcomes;
  for (auto& state : states) {
    FlowGraphOutcome& outcome = outcomes.emplace_back();
    outcome.failed = state->control.fatal();
    outcome.failure = state->control.failure();
    outcome.failure_kind = state->control.failure_kind();
    outcome.stopped_by_request = stop_requested.load();
  }
  return outcomes;
}

int default_max_in_flight(int workers, int detection_interval, bool live) {
  // Measured on vtest.avi with YOLOX-nano, 2 workers, interval 3: K = 3 (workers + 1) left one
  // worker idle because three frames in a row hold one detector frame (141 FPS, 1.15 cores
  // busy); K = 5 ran both (252 FPS). Longer spans gained under 2 %.
  const long span = static_cast<long>(std::max(workers, 1) - 1) * std::max(detection_interval, 1) + 1;
  const long cap = 4L * std::max(workers, 1);
  return static_cast<int>(std::min(span, cap)) + (live ? 0 : 1);
}

FlowGraphOutcome run_flow_graph(Source& source, std::span<Sink* const> sinks, FrameProcessor& processor,
                                const FlowGraphSettings& settings, StatisticsRecorder& statistics,
                                std::atomic<bool>& stop_requested, const std::function<void(FrameResult&)>& in_order,
                                const std::function<bool(FrameResult&)>& at_end) {
  GraphStream stream;
  stream.source = &source;
  stream.sinks.assign(sinks.begin(), sinks.end());
  stream.settings = settings;
  stream.statistics = &statistics;
  stream.in_order = in_order;
  stream.at_end = at_end;
  return run_flow_graph(std::span<const GraphStream>(&stream, 1), processor, nullptr, stop_requested).front();
}

}  // namespace detflow::detail
