#include "detflow/pipeline/pipeline.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <thread>

#include <oneapi/tbb/enumerable_thread_specific.h>
#include <spdlog/spdlog.h>

#include "detflow/error.h"
#include "flow_graph.h"
#include "progress.h"

namespace detflow {
namespace {

// The real stages: DetectorSetup's preprocessing, engines and decoder.
class DetectorProcessor final : public detail::FrameProcessor {
 public:
  DetectorProcessor(DetectorSetup& detector, int workers)
      : detector_(detector), preprocessors_([&detector] { return Preprocessor(detector.preprocess_spec()); }) {
    engines_.reserve(static_cast<std::size_t>(workers));
    for (int worker = 0; worker < workers; ++worker) engines_.push_back(detector.make_engine());
  }

  int inference_workers() const override { return static_cast<int>(engines_.size()); }

  void preprocess(detail::FrameJob& job) override {
    // Each job keeps its input tensor from frame to frame; it is shaped once.
    if (job.input.type() == ElementType::unknown) job.input = detector_.make_input_tensor();
    job.geometry = preprocessors_.local().run(job.result.frame->image, job.input);
  }

  void infer(detail::FrameJob& job, int worker) override {
    engines_[static_cast<std::size_t>(worker)]->run(std::span<const Tensor>(&job.input, 1), job.outputs);
  }

  void postprocess(detail::FrameJob& job) override {
    detector_.postprocess(job.outputs, job.geometry, job.result.detections);
  }

 private:
  DetectorSetup& detector_;
  std::vector<std::unique_ptr<Engine>> engines_;
  // Preprocessor keeps scratch images: one per thread that runs the preprocess stage.
  oneapi::tbb::enumerable_thread_specific<Preprocessor> preprocessors_;
};

// The tracking step (one serial node after the sequencer): the tracker and the line/zone
// analytics of one stream. Timestamps are the source's pts when it has them (files, RTP),
// else the capture time: time, not frame count, ages tracks, so dropped frames are harmless.
class TrackingStep {
 public:
  TrackingStep(const PipelineSettings& settings, const Labels& labels)
      : tracker_(settings.tracker), analytics_(settings.analytics, labels.names()) {}

  void operator()(FrameResult& result) {
    const Frame& frame = *result.frame;
    if (!have_start_) {
      start_ = frame.captured;
      have_start_ = true;
    }
    const double timestamp = frame.pts_ms >= 0 && std::isfinite(frame.pts_ms)
                                 ? frame.pts_ms / 1000.0
                                 : std::chrono::duration<double>(frame.captured - start_).count();
    const auto& tracks = tracker_.update(result.detections, timestamp);
    result.tracks.assign(tracks.begin(), tracks.end());
    const auto& events = analytics_.update(tracks, tracker_.changes(), frame.index, timestamp);
    result.events.assign(events.begin(), events.end());
    result.counts = &analytics_.counts();
  }

 private:
  track::Tracker tracker_;
  track::Analytics analytics_;
  Clock::time_point start_{};
  bool have_start_ = false;
};

}  // namespace

struct Pipeline::Impl {
  Impl(DetectorSetup& detector, std::unique_ptr<Source> source_in, std::vector<std::unique_ptr<Sink>> sinks_in,
       const PipelineSettings& settings_in)
      : source(std::move(source_in)), sinks(std::move(sinks_in)), settings(settings_in) {
    if (!source) throw Error("pipeline: no source given");
    if (settings.workers < 1) {
      throw Error("workers " + std::to_string(settings.workers) + " is invalid (expected 1 or more)");
    }
    if (settings.max_in_flight < 0) {
      throw Error("max_in_flight " + std::to_string(settings.max_in_flight) +
                  " is invalid (expected 0 for the default, or 1 or more)");
    }
    // Live: one frame per worker, like MediaPipe's flow limiter. A second admitted frame
    // would wait a whole inference for its engine while the mailbox already holds a newer
    // one, doubling capture-to-output latency (measured: 2.2x inference instead of ~1.2x).
    // Files: one frame beyond the workers keeps them all busy while preprocessing and output
    // overlap inference (with YOLOX-nano they take 3 ms of a 17 ms frame); two per worker
    // gave the same FPS with 5-7 MiB more memory and 10 ms more latency (on 2 cores).
    if (settings.max_in_flight == 0) settings.max_in_flight = settings.workers + (source->info().live ? 0 : 1);
    if (settings.max_in_flight < settings.workers) {
      spdlog::warn("max_in_flight {} is below workers {}: only {} workers can be busy at once", settings.max_in_flight,
                   settings.workers, settings.max_in_flight);
    }
    const int threads = detector.engine_options().intra_op_threads;
    const auto cores = static_cast<int>(std::thread::hardware_concurrency());
    if (threads > 0 && cores > 0 && threads * settings.workers > cores) {
      spdlog::warn("{} workers x {} intra-op threads exceed the {} cores: expect contention", settings.workers, threads,
                   cores);
    }
    processor = std::make_unique<DetectorProcessor>(detector, settings.workers);
    if (settings.tracking) tracking = std::make_shared<TrackingStep>(settings, detector.labels());
  }

  std::unique_ptr<Source> source;
  std::vector<std::unique_ptr<Sink>> sinks;
  PipelineSettings settings;
  std::unique_ptr<DetectorProcessor> processor;
  std::shared_ptr<TrackingStep> tracking;  // null without tracking
  StatisticsRecorder statistics;
  std::atomic<bool> stop_requested{false};
  bool ran = false;
};

Pipeline::Pipeline(DetectorSetup& detector, std::unique_ptr<Source> source, std::vector<std::unique_ptr<Sink>> sinks,
                   const PipelineSettings& settings)
    : impl_(std::make_unique<Impl>(detector, std::move(source), std::move(sinks), settings)) {}

Pipeline::~Pipeline() = default;

RunSummary Pipeline::run() {
  if (impl_->ran) throw Error("pipeline: run() was already called (a Pipeline runs once)");
  impl_->ran = true;
  std::vector<Sink*> sinks;
  for (const auto& sink : impl_->sinks) sinks.push_back(sink.get());

  detail::FlowGraphSettings graph_settings;
  graph_settings.max_in_flight = impl_->settings.max_in_flight;
  graph_settings.live = impl_->source->info().live;
  graph_settings.max_frames = impl_->settings.max_frames;
  std::function<void(FrameResult&)> tracking;
  if (impl_->tracking) tracking = [step = impl_->tracking](FrameResult& result) { (*step)(result); };

  detail::FlowGraphOutcome outcome;
  {
    detail::ProgressReporter reporter(impl_->statistics, impl_->settings, stderr, isatty(fileno(stderr)) != 0);
    outcome = detail::run_flow_graph(*impl_->source, sinks, *impl_->processor, graph_settings, impl_->statistics,
                                     impl_->stop_requested, tracking);
  }

  RunSummary summary;
  summary.statistics = snapshot();
  summary.stopped_by_request = outcome.stopped_by_request;
  summary.failed = outcome.failed;
  summary.failure = outcome.failure;
  summary.failure_kind = outcome.failure_kind;
  const SourceCounters counters = impl_->source->counters();
  if (!counters.last_warning.empty()) spdlog::warn("source: {}", counters.last_warning);
  return summary;
}

void Pipeline::request_stop() {
  impl_->stop_requested.store(true);
  impl_->source->stop();
}

Statistics Pipeline::snapshot() const {
  Statistics statistics = impl_->statistics.snapshot();
  statistics.frames_corrupt = impl_->source->counters().corrupt_frames;
  return statistics;
}

const SourceInfo& Pipeline::source_info() const { return impl_->source->info(); }

SourceCounters Pipeline::source_counters() const { return impl_->source->counters(); }

const StatisticsRecorder& Pipeline::recorder() const { return impl_->statistics; }

}  // namespace detflow
