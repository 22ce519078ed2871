// The flow graph driven by fake sources, stages and sinks: ordering, back-pressure, live
// dropping, per-frame failures, fatal sink failures and stop requests. No model needed.
#include "flow_graph.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "detflow/error.h"

namespace detflow::detail {
namespace {

using namespace std::chrono_literals;

// Frames of 8x8 pixels; `frame_count` < 0 never ends. `fps` > 0 paces frames like a camera.
class FakeSource final : public Source {
 public:
  FakeSource(std::int64_t frame_count, double fps, bool live) : frame_count_(frame_count), fps_(fps) {
    info_.kind = "fake";
    info_.live = live;
    info_.fps = fps;
    info_.frame_count = live ? -1 : frame_count;
    info_.width = 8;
    info_.height = 8;
    next_ = Clock::now();
  }
  const SourceInfo& info() const override { return info_; }
  bool read(Frame& frame) override {
    if (stopped_.load() || (frame_count_ >= 0 && produced_ >= frame_count_)) return false;
    if (fps_ > 0) {
      next_ += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / fps_));
      std::this_thread::sleep_until(next_);
    }
    frame.image = cv::Mat(8, 8, CV_8UC3, cv::Scalar::all(static_cast<double>(produced_ % 256)));
    frame.pts_ms = static_cast<double>(produced_);
    ++produced_;
    return true;
  }
  void stop() override { stopped_.store(true); }
  SourceCounters counters() const override { return {}; }

 private:
  SourceInfo info_;
  std::int64_t frame_count_;
  double fps_;
  std::int64_t produced_ = 0;
  Clock::time_point next_;
  std::atomic<bool> stopped_{false};
};

// Shared book-keeping between the fake stages and the recording sink.
struct Observations {
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  std::atomic<int> postprocessed{0};
};

class FakeProcessor final : public FrameProcessor {
 public:
  FakeProcessor(int workers, Observations& observations) : workers_(workers), observations_(observations) {
    for (int worker = 0; worker < workers; ++worker) busy_.push_back(std::make_unique<std::atomic<bool>>(false));
  }

  std::chrono::microseconds max_preprocess{0}, max_inference{0}, max_postprocess{0};
  std::chrono::microseconds fixed_inference{0};
  std::set<std::int64_t> fail_inference_on;

  int inference_workers() const override { return workers_; }

  void preprocess(FrameJob& job) override {
    const int now = observations_.in_flight.fetch_add(1) + 1;
    int seen = observations_.max_in_flight.load();
    while (now > seen && !observations_.max_in_flight.compare_exchange_weak(seen, now)) {
    }
    random_sleep(max_preprocess);
    job.input.reshape(ElementType::float32, {1});
    job.input.data<float>()[0] = static_cast<float>(job.result.frame->index);
  }

  void infer(FrameJob& job, int worker) override {
    auto& busy = *busy_.at(static_cast<std::size_t>(worker));
    if (busy.exchange(true)) worker_shared_.store(true);
    const int now = inferring_.fetch_add(1) + 1;
    int seen = max_inferring_.load();
    while (now > seen && !max_inferring_.compare_exchange_weak(seen, now)) {
    }
    random_sleep(max_inference);
    if (fixed_inference.count() > 0) std::this_thread::sleep_for(fixed_inference);
    const bool fail = fail_inference_on.count(job.result.frame->index) > 0;
    inferring_.fetch_sub(1);
    busy.store(false);
    if (fail) throw std::runtime_error("fake engine rejects frame " + std::to_string(job.result.frame->index));
    job.outputs.resize(1);
    job.outputs[0] = job.input;
  }

  void postprocess(FrameJob& job) override {
    random_sleep(max_postprocess);
    Detection detection;
    detection.class_id = static_cast<int>(job.outputs.at(0).data<float>()[0]);
    job.result.detections.assign(1, detection);
    observations_.postprocessed.fetch_add(1);
  }

  bool worker_was_shared() const { return worker_shared_.load(); }
  int most_inferences_at_once() const { return max_inferring_.load(); }

 private:
  void random_sleep(std::chrono::microseconds limit) {
    if (limit.count() <= 0) return;
    std::int64_t pause = 0;
    {
      std::lock_guard lock(random_mutex_);
      pause = std::uniform_int_distribution<std::int64_t>(0, limit.count())(random_);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(pause));
  }

  int workers_;
  Observations& observations_;
  std::vector<std::unique_ptr<std::atomic<bool>>> busy_;
  std::atomic<bool> worker_shared_{false};
  std::atomic<int> inferring_{0};
  std::atomic<int> max_inferring_{0};
  std::mutex random_mutex_;
  std::mt19937 random_{12345};
};

class RecordingSink final : public Sink {
 public:
  RecordingSink(std::string name, Observations& observations) : name_(std::move(name)), observations_(observations) {}

  std::int64_t throw_at = -1;    // consume() throws detflow::Error for this frame index
  std::int64_t stop_after = -1;  // consume() returns false for this frame index
  bool throw_in_open = false;

  std::string name() const override { return name_; }
  void open(const SourceInfo&) override {
    ++opened;
    if (throw_in_open) throw Error("cannot create " + name_);
  }
  bool consume(const FrameResult& result) override {
    if (!result.frame) {  // the end-of-stream result
      end_events.push_back(static_cast<int>(result.events.size()));
      end_after_finish = end_after_finish || finished > 0;
      return true;
    }
    const std::int64_t index = result.frame->index;
    if (index == throw_at) throw Error("disk full while writing frame " + std::to_string(index));
    indices.push_back(index);
    failed.push_back(result.failed);
    failures.push_back(result.failure);
    detection_classes.push_back(result.detections.empty() ? -1 : result.detections.front().class_id);
    detector_ran.push_back(result.detector_ran);
    observations_.in_flight.fetch_sub(1);
    return index != stop_after;
  }
  void finish() override { ++finished; }

  int opened = 0;
  int finished = 0;
  std::vector<std::int64_t> indices;
  std::vector<bool> failed;
  std::vector<std::string> failures;
  std::vector<int> detection_classes;
  std::vector<bool> detector_ran;
  std::vector<int> end_events;    // events of each end-of-stream result received
  bool end_after_finish = false;  // an end-of-stream result came after finish() (must not)

 private:
  std::string name_;
  Observations& observations_;
};

struct RunRecord {
  FlowGraphOutcome outcome;
  Statistics statistics;
};

RunRecord run_graph(Source& source, std::vector<Sink*> sinks, FrameProcessor& processor, FlowGraphSettings settings,
                    std::atomic<bool>& stop) {
  StatisticsRecorder recorder;
  RunRecord result;
  result.outcome = run_flow_graph(source, sinks, processor, settings, recorder, stop);
  result.statistics = recorder.snapshot();
  return result;
}

TEST(FlowGraph, FileModeProcessesEveryFrameInOrderWithRandomStageTimes) {
  Observations observations;
  FakeSource source(150, 0, /*live=*/false);
  FakeProcessor processor(2, observations);
  processor.max_preprocess = 2ms;
  processor.max_inference = 4ms;
  processor.max_postprocess = 2ms;
  RecordingSink sink("recorder", observations);
  std::atomic<bool> stop{false};
  const RunRecord result =
      run_graph(source, {&sink}, processor, {.max_in_flight = 4, .live = false, .max_frames = 0}, stop);

  ASSERT_EQ(sink.indices.size(), 150u);
  for (std::size_t position = 0; position < sink.indices.size(); ++position) {
    EXPECT_EQ(sink.indices[position], static_cast<std::int64_t>(position));
    // The detection travelled with its own frame through every stage.
    EXPECT_EQ(sink.detection_classes[position], static_cast<int>(position));
  }
  EXPECT_FALSE(result.outcome.failed);
  EXPECT_FALSE(result.outcome.stopped_by_request);
  EXPECT_EQ(result.statistics.frames_read, 150);
  EXPECT_EQ(result.statistics.frames_processed, 150);
  EXPECT_EQ(result.statistics.frames_dropped, 0);
  EXPECT_EQ(result.statistics.frames_failed, 0);
  EXPECT_EQ(result.statistics.frames_total, 150);
  EXPECT_EQ(result.statistics.detections, 150);
  EXPECT_LE(observations.max_in_flight.load(), 4);
  EXPECT_GE(observations.max_in_flight.load(), 2) << "frames should overlap";
  EXPECT_FALSE(processor.worker_was_shared());
  EXPECT_EQ(result.statistics.stages.at("inference").count, 150);
  EXPECT_EQ(result.statistics.capture_to_output.count, 150);
  EXPECT_EQ(sink.opened, 1);
  EXPECT_EQ(sink.finished, 1);
}

TEST(FlowGraph, MaxFramesStopsTheSource) {
  Observations observations;
  FakeSource source(-1, 0, false);
  FakeProcessor processor(1, observations);
  RecordingSink sink("recorder", observations);
  std::atomic<bool> stop{false};
  const RunRecord result =
      run_graph(source, {&sink}, processor, {.max_in_flight = 2, .live = false, .max_frames = 25}, stop);
  EXPECT_EQ(sink.indices.size(), 25u);
  EXPECT_EQ(result.statistics.frames_read, 25);
  EXPECT_EQ(sink.finished, 1);
}

TEST(FlowGraph, LiveModeDropsFramesKeepsInFlightBoundedAndLatencyLow) {
  Observations observations;
  FakeSource source(300, 200.0, /*live=*/true);  // 1.5 s of frames at 200 fps
  FakeProcessor processor(1, observations);
  processor.fixed_inference = 20ms;  // 50 fps at best: most frames must be dropped
  RecordingSink sink("recorder", observations);
  std::atomic<bool> stop{false};
  const RunRecord result =
      run_graph(source, {&sink}, processor, {.max_in_flight = 2, .live = true, .max_frames = 0}, stop);

  const Statistics& statistics = result.statistics;
  EXPECT_EQ(statistics.frames_read, 300);
  EXPECT_GT(statistics.frames_dropped, 100);
  EXPECT_EQ(statistics.frames_read, statistics.frames_processed + statistics.frames_dropped);
  EXPECT_EQ(static_cast<std::int64_t>(sink.indices.size()), statistics.frames_processed);
  EXPECT_LE(observations.max_in_flight.load(), 2);
  for (std::size_t position = 1; position < sink.indices.size(); ++position) {
    EXPECT_LT(sink.indices[position - 1], sink.indices[position]);
  }
  ASSERT_FALSE(sink.indices.empty());
  EXPECT_EQ(sink.indices.back(), 299) << "the newest frame is never the one dropped";
  // Processing everything would take 300 x 20 ms = 6 s; queued frames would wait up to
  // 4.5 s. Dropping keeps a frame's wait to about K + 1 inferences (60 ms); the bound
  // leaves room for a busy machine.
  EXPECT_LT(statistics.capture_to_output.max_ms, 1500.0);
  EXPECT_EQ(statistics.frames_total, -1);
}

TEST(FlowGraph, LiveGstreamerSourceWithSlowInferenceDropsAndStaysBounded) {
  Observations observations;
  auto source = open_source(
      {.uri = "gst:videotestsrc is-live=true num-buffers=45 ! video/x-raw,width=64,height=48,framerate=30/1"});
  ASSERT_TRUE(source->info().live);
  FakeProcessor processor(1, observations);
  processor.fixed_inference = 100ms;  // 10 fps against a 30 fps camera
  RecordingSink sink("recorder", observations);
  std::atomic<bool> stop{false};
  const RunRecord result =
      run_graph(*source, {&sink}, processor, {.max_in_flight = 2, .live = true, .max_frames = 0}, stop);
  const Statistics& statistics = result.statistics;
  EXPECT_GT(statistics.frames_dropped, 0);
  EXPECT_GT(statistics.frames_processed, 3);
  EXPECT_EQ(statistics.frames_read, statistics.frames_processed + statistics.frames_dropped);
  EXPECT_LE(observations.max_in_flight.load(), 2);
  EXPECT_LT(statistics.capture_to_output.max_ms, 2000.0);
  EXPECT_EQ(sink.finished, 1);
}

TEST(FlowGraph, StageFailureIsCountedAndTheFrameStillReachesTheSinks) {
  Observations observations;
  FakeSource source(20, 0, false);
  FakeProcessor processor(2, observations);
  processor.fail_inference_on = {3, 7};
  RecordingSink sink("recorder", observations);
  std::atomic<bool> stop{false};
  const RunRecord result =
      run_graph(source, {&sink}, processor, {.max_in_flight = 4, .live = false, .max_frames = 0}, stop);

  ASSERT_EQ(sink.indices.size(), 20u);
  for (std::size_t position = 0; position < 20; ++position) {
    EXPECT_EQ(sink.indices[position], static_cast<std::int64_t>(position));
    const bool should_fail = position == 3 || position == 7;
    EXPECT_EQ(sink.failed[position], should_fail) << "frame " << position;
    if (should_fail) {
      EXPECT_NE(sink.failures[position].find("inference"), std::string::npos) << sink.failures[position];
      EXPECT_NE(sink.failures[position].find("rejects frame"), std::string::npos) << sink.failures[position];
      EXPECT_EQ(sink.detection_classes[position], -1);
    }
  }
  EXPECT_EQ(observations.postprocessed.load(), 18) << "stages after a failure are skipped";
  EXPECT_FALSE(result.outcome.failed);
  EXPECT_EQ(result.statistics.frames_failed, 2);
  EXPECT_EQ(result.statistics.frames_processed, 18);
  EXPECT_EQ(sink.finished, 1);
}

TEST(FlowGraph, ThrowingSinkEndsTheRunAndEverySinkIsFinishedOnce) {
  Observations observations;
  FakeSource source(100000, 0, false);
  FakeProcessor processor(2, observations);
  RecordingSink first("first", observations), second("second", observations), third("third", observations);
  second.throw_at = 5;
  std::atomic<bool> stop{false};
  const RunRecord result = run_graph(source, {&first, &second, &third}, processor,
                                     {.max_in_flight = 4, .live = false, .max_frames = 0}, stop);

  EXPECT_TRUE(result.outcome.failed);
  EXPECT_NE(result.outcome.failure.find("second"), std::string::npos) << result.outcome.failure;
  EXPECT_NE(result.outcome.failure.find("disk full"), std::string::npos) << result.outcome.failure;
  EXPECT_EQ(result.outcome.failure.find('\n'), std::string::npos);
  for (const RecordingSink* sink : {&first, &second, &third}) {
    EXPECT_EQ(sink->opened, 1) << sink->name();
    EXPECT_EQ(sink->finished, 1) << sink->name();
  }
  EXPECT_EQ(first.indices.size(), 6u) << "frames 0..5 reached the first sink, nothing after the failure";
  EXPECT_EQ(second.indices.size(), 5u);
  EXPECT_EQ(third.indices.size(), 5u);
  const Statistics& statistics = result.statistics;
  EXPECT_LT(statistics.frames_read, 100) << "the source was stopped";
  EXPECT_EQ(statistics.frames_processed, 5);
  EXPECT_EQ(statistics.frames_read, statistics.frames_processed + statistics.frames_dropped);
}

TEST(FlowGraph, SinkOpenFailureFinishesTheOpenedSinksAndThrows) {
  Observations observations;
  FakeSource source(10, 0, false);
  FakeProcessor processor(1, observations);
  RecordingSink first("first", observations), second("second", observations), third("third", observations);
  second.throw_in_open = true;
  std::atomic<bool> stop{false};
  StatisticsRecorder recorder;
  const std::vector<Sink*> sinks{&first, &second, &third};
  EXPECT_THROW(run_flow_graph(source, sinks, processor, {}, recorder, stop), Error);
  EXPECT_EQ(first.finished, 1);
  EXPECT_EQ(second.finished, 0);
  EXPECT_EQ(third.opened, 0);
  EXPECT_EQ(third.finished, 0);
  EXPECT_EQ(recorder.frames_read.load(), 0);
}

TEST(FlowGraph, SinkReturningFalseStopsCleanlyAndDrains) {
  Observations observations;
  FakeSource source(-1, 0, false);
  FakeProcessor processor(2, observations);
  RecordingSink window("window", observations), writer("writer", observations);
  window.stop_after = 10;
  std::atomic<bool> stop{false};
  const RunRecord result =
      run_graph(source, {&window, &writer}, processor, {.max_in_flight = 4, .live = false, .max_frames = 0}, stop);
  EXPECT_TRUE(result.outcome.stopped_by_request);
  EXPECT_FALSE(result.outcome.failed);
  EXPECT_GE(writer.indices.size(), 11u);
  EXPECT_EQ(writer.indices, window.indices) << "in-flight frames are drained to every sink";
  EXPECT_EQ(result.statistics.frames_read, result.statistics.frames_processed + result.statistics.frames_dropped);
  EXPECT_EQ(window.finished, 1);
  EXPECT_EQ(writer.finished, 1);
}

class StopRequestTest : public ::testing::TestWithParam<bool> {};

TEST_P(StopRequestTest, StopFromAnotherThreadDrainsAndFinishes) {
  const bool live = GetParam();
  Observations observations;
  FakeSource source(-1, live ? 300.0 : 0.0, live);
  FakeProcessor processor(2, observations);
  processor.fixed_inference = 2ms;
  RecordingSink sink("recorder", observations);
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(150ms);
    stop.store(true);
    source.stop();
  });
  const RunRecord result =
      run_graph(source, {&sink}, processor, {.max_in_flight = 4, .live = live, .max_frames = 0}, stop);
  stopper.join();

  EXPECT_TRUE(result.outcome.stopped_by_request);
  EXPECT_FALSE(result.outcome.failed);
  EXPECT_GT(sink.indices.size(), 0u);
  EXPECT_EQ(sink.finished, 1);
  EXPECT_EQ(observations.in_flight.load(), 0) << "every admitted frame reached the sink";
  EXPECT_EQ(static_cast<std::int64_t>(sink.indices.size()), result.statistics.frames_processed);
  EXPECT_EQ(result.statistics.frames_read, result.statistics.frames_processed + result.statistics.frames_dropped);
  if (!live) {
    EXPECT_EQ(result.statistics.frames_dropped, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, StopRequestTest, ::testing::Values(false, true),
                         [](const auto& parameter) { return parameter.param ? "live" : "file"; });

TEST(FlowGraph, RejectsInvalidSettings) {
  Observations observations;
  FakeSource source(1, 0, false);
  FakeProcessor processor(1, observations);
  std::atomic<bool> stop{false};
  StatisticsRecorder recorder;
  EXPECT_THROW(
      run_flow_graph(source, {}, processor, {.max_in_flight = 0, .live = false, .max_frames = 0}, recorder, stop),
      Error);
}

TEST(FlowGraph, TheInOrderStepSeesFramesInOrderBeforeTheSinks) {
  // The tracking step runs between the sequencer and the sinks: one thread, frame order, and
  // what it writes into the result reaches the sinks with that frame.
  Observations observations;
  FakeSource source(60, 0, /*live=*/false);
  FakeProcessor processor(2, observations);
  processor.max_inference = 3ms;
  processor.max_postprocess = 2ms;
  RecordingSink sink("recorder", observations);
  std::atomic<bool> stop{false};
  std::vector<std::int64_t> seen;
  const auto in_order = [&seen](FrameResult& result) {
    seen.push_back(result.frame->index);
    track::Track track;
    track.id = static_cast<std::uint64_t>(result.frame->index) + 1;
    result.tracks.push_back(track);
  };
  struct TrackIdSink final : Sink {
    std::string name() const override { return "track ids"; }
    void open(const SourceInfo&) override {}
    bool consume(const FrameResult& result) override {
      ids.push_back(result.tracks.size() == 1 ? static_cast<std::int64_t>(result.tracks[0].id) : -1);
      return true;
    }
    void finish() override {}
    std::vector<std::int64_t> ids;
  } ids;
  StatisticsRecorder recorder;
  const std::vector<Sink*> sinks{&sink, &ids};
  run_flow_graph(source, sinks, processor, {.max_in_flight = 4, .live = false, .max_frames = 0}, recorder, stop,
                 in_order);
  ASSERT_EQ(seen.size(), 60u);
  ASSERT_EQ(ids.ids.size(), 60u);
  for (std::size_t position = 0; position < seen.size(); ++position) {
    EXPECT_EQ(seen[position], static_cast<std::int64_t>(position));
    EXPECT_EQ(ids.ids[position], static_cast<std::int64_t>(position) + 1);
  }
}

TEST(FlowGraph, DetectionIntervalSkipsTheStagesButEveryFrameReachesTheSinksInOrder) {
  Observations observations;
  FakeSource source(31, 0, /*live=*/false);
  FakeProcessor processor(2, observations);
  processor.max_inference = 2ms;
  processor.max_postprocess = 1ms;
  RecordingSink sink("recorder", observations);
  std::atomic<bool> stop{false};
  std::vector<bool> seen_by_step;
  const auto in_order = [&seen_by_step](FrameResult& result) {
    seen_by_step.push_back(result.detector_ran);
    EXPECT_TRUE(result.detector_ran || result.detections.empty());
  };
  StatisticsRecorder recorder;
  const std::vector<Sink*> sinks{&sink};
  const FlowGraphOutcome outcome = run_flow_graph(
      source, sinks, processor, {.max_in_flight = 4, .live = false, .max_frames = 0, .detection_interval = 3}, recorder,
      stop, in_order);
  const Statistics statistics = recorder.snapshot();

  EXPECT_FALSE(outcome.failed) << outcome.failure;
  ASSERT_EQ(sink.indices.size(), 31u);
  ASSERT_EQ(seen_by_step.size(), 31u);
  for (std::size_t position = 0; position < sink.indices.size(); ++position) {
    const bool detected = position % 3 == 0;
    EXPECT_EQ(sink.indices[position], static_cast<std::int64_t>(position));
    EXPECT_EQ(sink.detector_ran[position], detected) << position;
    EXPECT_EQ(seen_by_step[position], detected) << position;
    EXPECT_EQ(sink.detection_classes[position], detected ? static_cast<int>(position) : -1) << position;
  }
  EXPECT_EQ(observations.postprocessed.load(), 11);
  EXPECT_EQ(statistics.frames_processed, 31);
  EXPECT_EQ(statistics.frames_detected, 11);
  EXPECT_EQ(statistics.stages.at("inference").count, 11) << "skipped frames record no stage latency";
  EXPECT_EQ(statistics.stages.at("sinks").count, 31);
}

TEST(FlowGraph, LiveDropsNeverStarveTheDetectorUnderADetectionInterval) {
  // The detector's frames are counted over the frames admitted (dense), not the camera's
  // frame numbers, so dropped frames cannot make it skip more than the interval says.
  Observations observations;
  FakeSource source(-1, 400, /*live=*/true);
  FakeProcessor processor(1, observations);
  processor.fixed_inference = 8ms;
  RecordingSink sink("recorder", observations);
  std::atomic<bool> stop{false};
  StatisticsRecorder recorder;
  const std::vector<Sink*> sinks{&sink};
  std::thread stopper([&] {
    std::this_thread::sleep_for(300ms);
    stop.store(true);
    source.stop();
  });
  run_flow_graph(source, sinks, processor, {.max_in_flight = 1, .live = true, .max_frames = 0, .detection_interval = 2},
                 recorder, stop);
  stopper.join();
  const Statistics statistics = recorder.snapshot();
  ASSERT_GT(sink.indices.size(), 10u);
  EXPECT_GT(statistics.frames_dropped, 0) << "the camera outran the detector";
  for (std::size_t position = 0; position < sink.detector_ran.size(); ++position) {
    EXPECT_EQ(sink.detector_ran[position], position % 2 == 0) << position;
  }
}

TEST(FlowGraph, TheDefaultInFlightLimitCoversOneDetectorFramePerWorker) {
  EXPECT_EQ(default_max_in_flight(2, 1, /*live=*/false), 3);
  EXPECT_EQ(default_max_in_flight(2, 1, /*live=*/true), 2);
  EXPECT_EQ(default_max_in_flight(1, 5, /*live=*/false), 2) << "one worker needs one detector frame";
  EXPECT_EQ(default_max_in_flight(2, 3, /*live=*/false), 5);
  EXPECT_EQ(default_max_in_flight(4, 3, /*live=*/true), 10);
  EXPECT_EQ(default_max_in_flight(2, 1000, /*live=*/false), 9) << "at most 4 frames per worker, + 1 for a file";

  // Behaviour: at interval 3 with 2 workers, the default keeps both engines busy at once. The
  // former default (workers + 1 = 3 frames: one detector frame in any 3 in a row) never did.
  for (const int max_in_flight : {default_max_in_flight(2, 3, false), 3}) {
    Observations observations;
    FakeSource source(30, 0, /*live=*/false);
    FakeProcessor processor(2, observations);
    processor.fixed_inference = 20ms;
    RecordingSink sink("recorder", observations);
    std::atomic<bool> stop{false};
    const RunRecord run =
        run_graph(source, {&sink}, processor,
                  {.max_in_flight = max_in_flight, .live = false, .max_frames = 0, .detection_interval = 3}, stop);
    EXPECT_FALSE(run.outcome.failed) << run.outcome.failure;
    ASSERT_EQ(sink.indices.size(), 30u);
    EXPECT_EQ(processor.most_inferences_at_once(), max_in_flight == 3 ? 1 : 2) << "max_in_flight " << max_in_flight;
  }
}

TEST(FlowGraph, AnInvalidDetectionIntervalIsRefused) {
  Observations observations;
  FakeSource source(1, 0, false);
  FakeProcessor processor(1, observations);
  std::atomic<bool> stop{false};
  StatisticsRecorder recorder;
  EXPECT_THROW(
      run_flow_graph(source, {}, processor,
                     {.max_in_flight = 1, .live = false, .max_frames = 0, .detection_interval = 0}, recorder, stop),
      Error);
}

// The end of the stream (tracking: every live track ends) reaches the sinks as one result
// without a frame, after the last frame and before finish(), also after a stop request.
TEST(FlowGraph, TheEndOfStreamResultComesAfterTheLastFrameAndBeforeFinish) {
  for (const bool stop_early : {false, true}) {
    Observations observations;
    FakeSource source(20, 0, /*live=*/false);
    FakeProcessor processor(2, observations);
    RecordingSink sink("recorder", observations);
    if (stop_early) sink.stop_after = 7;  // a clean stop, as a closed window asks
    std::atomic<bool> stop{false};
    std::int64_t last_frame_seen = -1;
    int calls = 0;
    const auto in_order = [&last_frame_seen](FrameResult& result) { last_frame_seen = result.frame->index; };
    const auto at_end = [&](FrameResult& result) {
      ++calls;
      EXPECT_EQ(result.frame, nullptr);
      track::Event event;
      event.type = track::EventType::track_end;
      event.frame = last_frame_seen;
      result.events.assign(2, event);
      return true;
    };
    StatisticsRecorder recorder;
    const std::vector<Sink*> sinks{&sink};
    const FlowGraphOutcome outcome =
        run_flow_graph(source, sinks, processor, {.max_in_flight = 3, .live = false, .max_frames = 0}, recorder, stop,
                       in_order, at_end);
    EXPECT_FALSE(outcome.failed) << outcome.failure;
    EXPECT_EQ(outcome.stopped_by_request, stop_early);
    EXPECT_EQ(calls, 1);
    ASSERT_EQ(sink.end_events, std::vector<int>{2}) << "one end-of-stream result with its events";
    EXPECT_FALSE(sink.end_after_finish);
    EXPECT_EQ(sink.finished, 1);
    EXPECT_EQ(recorder.snapshot().frames_processed, static_cast<std::int64_t>(sink.indices.size()))
        << "the end-of-stream result is not a frame";
    if (!stop_early) {
      EXPECT_EQ(sink.indices.size(), 20u);
    }
  }
}

TEST(FlowGraph, NoEndOfStreamResultWhenNothingEndedOrTheRunFailed) {
  // Nothing to tell: at_end returns false.
  {
    Observations observations;
    FakeSource source(5, 0, false);
    FakeProcessor processor(1, observations);
    RecordingSink sink("recorder", observations);
    std::atomic<bool> stop{false};
    StatisticsRecorder recorder;
    const std::vector<Sink*> sinks{&sink};
    run_flow_graph(source, sinks, processor, {.max_in_flight = 2, .live = false, .max_frames = 0}, recorder, stop, {},
                   [](FrameResult&) { return false; });
    EXPECT_TRUE(sink.end_events.empty());
    EXPECT_EQ(sink.indices.size(), 5u);
  }
  // A sink failed: the run is over, at_end is not even asked.
  {
    Observations observations;
    FakeSource source(20, 0, false);
    FakeProcessor processor(1, observations);
    RecordingSink sink("recorder", observations);
    sink.throw_at = 4;
    std::atomic<bool> stop{false};
    StatisticsRecorder recorder;
    int calls = 0;
    const std::vector<Sink*> sinks{&sink};
    const FlowGraphOutcome outcome =
        run_flow_graph(source, sinks, processor, {.max_in_flight = 2, .live = false, .max_frames = 0}, recorder, stop,
                       {}, [&calls](FrameResult&) { return ++calls > 0; });
    EXPECT_TRUE(outcome.failed);
    EXPECT_EQ(calls, 0);
    EXPECT_TRUE(sink.end_events.empty());
    EXPECT_EQ(sink.finished, 1);
  }
}

// ---- several streams sharing the inference workers ----

// A stream of the multi-stream tests: its fake source, recording sink and statistics.
struct TestStream {
  TestStream(std::string name, std::int64_t frames, double fps, bool live, Observations& observations)
      : source(frames, fps, live), sink("sink-" + name, observations) {
    graph.name = std::move(name);
    graph.source = &source;
    graph.sinks = {&sink};
    graph.statistics = &statistics;
    graph.settings.live = live;
  }
  FakeSource source;
  RecordingSink sink;
  StatisticsRecorder statistics;
  GraphStream graph;
};

std::vector<FlowGraphOutcome> run_streams(std::vector<std::unique_ptr<TestStream>>& streams, FrameProcessor& processor,
                                          StatisticsRecorder& total, std::atomic<bool>& stop) {
  std::vector<GraphStream> graph_streams;
  for (const auto& stream : streams) graph_streams.push_back(stream->graph);
  return run_flow_graph(graph_streams, processor, &total, stop);
}

TEST(FlowGraphStreams, EachStreamKeepsItsOrderAndEveryFileFrame) {
  Observations observations;
  FakeProcessor processor(2, observations);
  processor.max_preprocess = 1ms;
  processor.max_inference = 3ms;
  processor.max_postprocess = 1ms;
  std::vector<std::unique_ptr<TestStream>> streams;
  const std::vector<std::int64_t> lengths{40, 70, 110};
  for (std::size_t index = 0; index < lengths.size(); ++index) {
    streams.push_back(
        std::make_unique<TestStream>("file" + std::to_string(index), lengths[index], 0, false, observations));
    streams.back()->graph.settings.max_in_flight = 3;
  }
  StatisticsRecorder total;
  std::atomic<bool> stop{false};
  const auto outcomes = run_streams(streams, processor, total, stop);

  ASSERT_EQ(outcomes.size(), 3u);
  std::int64_t frames = 0;
  for (std::size_t index = 0; index < streams.size(); ++index) {
    const TestStream& stream = *streams[index];
    EXPECT_FALSE(outcomes[index].failed) << outcomes[index].failure;
    ASSERT_EQ(static_cast<std::int64_t>(stream.sink.indices.size()), lengths[index]) << stream.graph.name;
    for (std::size_t position = 0; position < stream.sink.indices.size(); ++position) {
      EXPECT_EQ(stream.sink.indices[position], static_cast<std::int64_t>(position)) << stream.graph.name;
      // The detection travelled with its own frame, not another stream's frame of that index.
      EXPECT_EQ(stream.sink.detection_classes[position], static_cast<int>(position)) << stream.graph.name;
    }
    const Statistics statistics = stream.statistics.snapshot();
    EXPECT_EQ(statistics.frames_processed, lengths[index]);
    EXPECT_EQ(statistics.frames_total, lengths[index]);
    EXPECT_EQ(stream.sink.finished, 1);
    frames += lengths[index];
  }
  const Statistics whole = total.snapshot();
  EXPECT_EQ(whole.frames_processed, frames);
  EXPECT_EQ(whole.frames_read, frames);
  EXPECT_EQ(whole.frames_total, frames);
  EXPECT_EQ(whole.stages.at("inference").count, frames);
  EXPECT_FALSE(processor.worker_was_shared());
}

TEST(FlowGraphStreams, AFinishedFileIsCompleteWhileALiveStreamRunsOn) {
  Observations observations;
  FakeProcessor processor(1, observations);
  processor.fixed_inference = 2ms;
  std::vector<std::unique_ptr<TestStream>> streams;
  streams.push_back(std::make_unique<TestStream>("file", 10, 0, false, observations));
  streams.push_back(std::make_unique<TestStream>("camera", -1, 100.0, true, observations));
  StatisticsRecorder total;
  std::atomic<bool> stop{false};
  std::atomic<bool> file_finished_while_running{false};
  std::thread stopper([&] {
    const auto deadline = Clock::now() + 10s;
    while (streams[0]->sink.finished == 0 && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(200ms);
    file_finished_while_running = streams[0]->sink.finished == 1;
    stop.store(true);
    streams[1]->source.stop();
  });
  const auto outcomes = run_streams(streams, processor, total, stop);
  stopper.join();
  EXPECT_TRUE(file_finished_while_running.load()) << "the file's outputs are finished when it ends";
  EXPECT_EQ(streams[0]->sink.indices.size(), 10u);
  EXPECT_GT(streams[1]->sink.indices.size(), 10u) << "the camera ran on after the file";
  EXPECT_EQ(streams[1]->sink.finished, 1);
  EXPECT_TRUE(outcomes[1].stopped_by_request);
}

// The acceptance rule of issue 14: under overload every live stream gets at least 90 % of its
// fair share of the processed frames, next to a file stream that always has a frame ready and
// more slots than each camera. Fails with first-come-first-served workers (the file, K = 2,
// takes 2/6 of the frames and each camera 1/6 = 83 % of a fair fifth).
TEST(FlowGraphStreams, UnderOverloadEveryLiveStreamGetsItsFairShare) {
  Observations observations;
  FakeProcessor processor(1, observations);
  processor.fixed_inference = 6ms;  // at most ~166 frames per second in all
  std::vector<std::unique_ptr<TestStream>> streams;
  for (int camera = 0; camera < 4; ++camera) {
    streams.push_back(std::make_unique<TestStream>("camera" + std::to_string(camera), -1, 100.0, true, observations));
    streams.back()->graph.settings.max_in_flight = 1;  // 4 x 100 fps asked for: overload
  }
  streams.push_back(std::make_unique<TestStream>("file", -1, 0, false, observations));
  streams.back()->graph.settings.max_in_flight = 2;
  StatisticsRecorder total;
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(2s);
    stop.store(true);
    for (auto& stream : streams) stream->source.stop();
  });
  const auto outcomes = run_streams(streams, processor, total, stop);
  stopper.join();

  std::int64_t processed = 0;
  for (const auto& stream : streams) processed += stream->statistics.snapshot().frames_processed;
  ASSERT_GT(processed, 50) << "the graph hardly ran";
  const double fair_share = static_cast<double>(processed) / static_cast<double>(streams.size());
  for (const auto& stream : streams) {
    const Statistics statistics = stream->statistics.snapshot();
    EXPECT_GE(static_cast<double>(statistics.frames_processed), 0.9 * fair_share)
        << stream->graph.name << ": " << statistics.frames_processed << " of " << processed << " frames";
    if (stream->graph.settings.live) {
      EXPECT_GT(statistics.frames_dropped, 0) << stream->graph.name << " was overloaded, so it dropped frames";
      for (std::size_t position = 1; position < stream->sink.indices.size(); ++position) {
        EXPECT_LT(stream->sink.indices[position - 1], stream->sink.indices[position]);
      }
    }
  }
}

TEST(FlowGraphStreams, AFailingStreamLeavesTheOthersRunning) {
  Observations observations;
  FakeProcessor processor(2, observations);
  processor.max_inference = 2ms;
  std::vector<std::unique_ptr<TestStream>> streams;
  streams.push_back(std::make_unique<TestStream>("broken", 100, 0, false, observations));
  streams.back()->sink.throw_at = 10;
  streams.push_back(std::make_unique<TestStream>("healthy", 100, 0, false, observations));
  for (auto& stream : streams) stream->graph.settings.max_in_flight = 2;
  StatisticsRecorder total;
  std::atomic<bool> stop{false};
  const auto outcomes = run_streams(streams, processor, total, stop);

  EXPECT_TRUE(outcomes[0].failed);
  EXPECT_EQ(outcomes[0].failure_kind, RunFailureKind::sink);
  EXPECT_NE(outcomes[0].failure.find("disk full while writing frame 10"), std::string::npos) << outcomes[0].failure;
  EXPECT_EQ(streams[0]->sink.indices.size(), 10u);
  EXPECT_EQ(streams[0]->sink.finished, 1);
  EXPECT_FALSE(outcomes[1].failed) << outcomes[1].failure;
  EXPECT_EQ(streams[1]->sink.indices.size(), 100u);
  EXPECT_EQ(streams[1]->sink.finished, 1);
}

TEST(FlowGraphStreams, ASinkAskingToStopEndsEveryStream) {
  Observations observations;
  FakeProcessor processor(1, observations);
  processor.fixed_inference = 1ms;
  std::vector<std::unique_ptr<TestStream>> streams;
  streams.push_back(std::make_unique<TestStream>("window", -1, 200.0, true, observations));
  streams.back()->sink.stop_after = 20;  // the window was closed
  streams.push_back(std::make_unique<TestStream>("other", -1, 200.0, true, observations));
  StatisticsRecorder total;
  std::atomic<bool> stop{false};
  const auto outcomes = run_streams(streams, processor, total, stop);
  for (std::size_t index = 0; index < streams.size(); ++index) {
    EXPECT_TRUE(outcomes[index].stopped_by_request);
    EXPECT_FALSE(outcomes[index].failed) << outcomes[index].failure;
    EXPECT_EQ(streams[index]->sink.finished, 1);
  }
}

}  // namespace
}  // namespace detflow::detail
