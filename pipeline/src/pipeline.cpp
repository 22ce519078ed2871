#include "detflow/pipeline/pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <optional>
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
// Frames the detector skipped (detection_interval > 1) do not update the tracker (a frame
// without detections would count as a miss for every track): their tracks are extrapolated
// from the last detected frames at constant velocity and flagged predicted.
// operator() and finish() run on the graph's serial node; counts() from any thread.
// Lines and zones count detected boxes only (a predicted box is no evidence of where the
// object is), so with the detector on every N-th frame, confirming a side or a zone over
// line_min_frames / zone_min_frames observations would take N times as many frames (on vtest.avi,
// 200 frames: 5 crossings at interval 1, 0 at interval 3). The observations asked for are divided
// by N, rounded up, so a confirmation spans about the same frames at every interval.
track::AnalyticsSettings analytics_for_interval(track::AnalyticsSettings analytics, int detection_interval) {
  if (detection_interval > 1) {
    const auto scaled = [detection_interval](int observations) {
      return std::max(1, (observations + detection_interval - 1) / detection_interval);
    };
    analytics.line_min_frames = scaled(analytics.line_min_frames);
    analytics.zone_min_frames = scaled(analytics.zone_min_frames);
  }
  return analytics;
}

// The tracker matches detections N frames apart: a walker moves about a third of its width per
// frame at 30 FPS, so at N = 3 its new box hardly overlaps the old one and plain IoU never
// confirms it (vtest.avi, 300 frames, one line: fast walkers got no track, 3 crossings of 7).
// Buffered IoU widens both boxes in proportion to the frames skipped; at N = 1 nothing changes.
track::TrackerSettings tracker_for_interval(track::TrackerSettings tracker, int detection_interval) {
  if (detection_interval > 1 && tracker.match_buffer == 0) {
    tracker.match_buffer = 0.5f * static_cast<float>(detection_interval - 1);
  }
  return tracker;
}

class TrackingStep {
 public:
  TrackingStep(const StreamOptions& settings, const Labels& labels)
      : tracker_(tracker_for_interval(settings.tracker, settings.detection_interval)),
        analytics_(analytics_for_interval(settings.analytics, settings.detection_interval), labels.names()),
        counting_(!settings.analytics.lines.empty() || !settings.analytics.zones.empty()) {
    if (counting_) published_counts_ = analytics_.counts();
  }

  void operator()(FrameResult& result) {
    const Frame& frame = *result.frame;
    if (!have_start_) {
      start_ = frame.captured;
      have_start_ = true;
    }
    const double timestamp = frame.pts_ms >= 0 && std::isfinite(frame.pts_ms)
                                 ? frame.pts_ms / 1000.0
                                 : std::chrono::duration<double>(frame.captured - start_).count();
    const std::vector<track::Event>* events = nullptr;
    if (result.detector_ran) {
      const auto& tracks = tracker_.update(result.detections, timestamp);
      remember_motion(tracks, timestamp);
      result.tracks.assign(tracks.begin(), tracks.end());
      events = &analytics_.update(tracks, tracker_.changes(), frame.index, timestamp);
    } else {
      predict(timestamp, result.tracks);
      events = &analytics_.update(result.tracks, no_changes_, frame.index, timestamp);
    }
    result.events.assign(events->begin(), events->end());
    result.counts = &analytics_.counts();
    result.analytics = &analytics_.settings();
    last_frame_ = frame.index;
    last_timestamp_ = timestamp;
    have_frame_ = true;
    if (!events->empty()) publish_counts();
  }

  // End of the stream: every live track ends (track_end, and the zone exits it causes).
  // Returns true when that made events (then `result` carries them and the final counts).
  bool finish(FrameResult& result) {
    if (!have_frame_) return false;
    tracker_.finish();
    motion_.clear();
    const auto& events = analytics_.update(no_tracks_, tracker_.changes(), last_frame_, last_timestamp_);
    result.events.assign(events.begin(), events.end());
    result.counts = &analytics_.counts();
    result.analytics = &analytics_.settings();
    publish_counts();
    return !result.events.empty();
  }

  // The line and zone counts so far; empty without lines and zones. Thread-safe.
  std::optional<track::CountsSnapshot> counts() const {
    if (!counting_) return std::nullopt;
    std::lock_guard lock(counts_mutex_);
    return published_counts_;
  }

 private:
  // A reported track with its velocity: centre and size, pixels per second.
  struct Motion {
    track::Track track;
    double time = 0;  // of track.box
    float velocity[4] = {0, 0, 0, 0};
    bool has_velocity = false;
  };

  // After a tracker update: the reported tracks (ascending id) and their velocities, from the
  // previous detected frame's boxes (smoothed over two frames). Buffers are swapped, not
  // reallocated.
  void remember_motion(const std::vector<track::Track>& tracks, double timestamp) {
    std::swap(motion_, previous_motion_);
    motion_.resize(tracks.size());
    std::size_t previous = 0;
    for (std::size_t index = 0; index < tracks.size(); ++index) {
      const track::Track& track = tracks[index];
      Motion& motion = motion_[index];
      while (previous < previous_motion_.size() && previous_motion_[previous].track.id < track.id) ++previous;
      const Motion* before = previous < previous_motion_.size() && previous_motion_[previous].track.id == track.id
                                 ? &previous_motion_[previous]
                                 : nullptr;
      motion.has_velocity = false;
      for (float& component : motion.velocity) component = 0;
      if (before && before->has_velocity) {
        std::copy(std::begin(before->velocity), std::end(before->velocity), motion.velocity);
        motion.has_velocity = true;
      }
      const double elapsed = before ? timestamp - before->time : 0;
      if (before && !track.predicted && elapsed > 0) {
        const auto now = centre_and_size(track.box);
        const auto then = centre_and_size(before->track.box);
        for (int component = 0; component < 4; ++component) {
          const auto measured = static_cast<float>((now[component] - then[component]) / elapsed);
          motion.velocity[component] = motion.has_velocity ? 0.5f * (motion.velocity[component] + measured) : measured;
        }
        motion.has_velocity = true;
      }
      motion.track = track;
      motion.time = timestamp;
    }
  }

  // A skipped frame: every track reported on the last detected frame, moved on at its
  // velocity (lost ones only while the tracker would still report them).
  void predict(double timestamp, std::vector<track::Track>& tracks) const {
    tracks.clear();
    const double keep_lost = tracker_.settings().predicted_output_seconds;
    for (const Motion& motion : motion_) {
      if (motion.track.predicted && timestamp - motion.track.last_seen > keep_lost) continue;
      track::Track& track = tracks.emplace_back(motion.track);
      const auto elapsed = static_cast<float>(std::max(0.0, timestamp - motion.time));
      auto geometry = centre_and_size(motion.track.box);
      for (int component = 0; component < 4; ++component) {
        geometry[component] += static_cast<double>(motion.velocity[component] * elapsed);
      }
      const double width = std::max(1.0, geometry[2]);
      const double height = std::max(1.0, geometry[3]);
      track.box = {static_cast<float>(geometry[0] - width / 2), static_cast<float>(geometry[1] - height / 2),
                   static_cast<float>(geometry[0] + width / 2), static_cast<float>(geometry[1] + height / 2)};
      track.predicted = true;
      track.detection_index = -1;
    }
  }

  static std::array<double, 4> centre_and_size(const track::Box& box) {
    return {(static_cast<double>(box.x1) + box.x2) / 2, (static_cast<double>(box.y1) + box.y2) / 2,
            static_cast<double>(box.x2) - box.x1, static_cast<double>(box.y2) - box.y1};
  }

  void publish_counts() {
    if (!counting_) return;
    std::lock_guard lock(counts_mutex_);
    published_counts_ = analytics_.counts();  // element-wise: reuses the copy's buffers
  }

  track::Tracker tracker_;
  track::Analytics analytics_;
  const bool counting_;  // lines or zones configured
  Clock::time_point start_{};
  bool have_start_ = false;
  std::int64_t last_frame_ = 0;
  double last_timestamp_ = 0;
  bool have_frame_ = false;
  std::vector<Motion> motion_, previous_motion_;  // ascending id
  const std::vector<track::Track> no_tracks_;
  const track::TrackChanges no_changes_;
  mutable std::mutex counts_mutex_;
  track::CountsSnapshot published_counts_;  // guarded by counts_mutex_
};

// One stream's parts: what the caller handed over, plus its tracking state and statistics.
struct PipelineStream {
  std::string name;
  std::unique_ptr<Source> source;
  std::vector<std::unique_ptr<Sink>> sinks;
  StreamOptions options;
  std::shared_ptr<TrackingStep> tracking;  // null without tracking
  StatisticsRecorder statistics;
};

StreamOptions stream_options_of(const PipelineSettings& settings) {
  StreamOptions options;
  options.max_in_flight = settings.max_in_flight;
  options.max_frames = settings.max_frames;
  options.tracking = settings.tracking;
  options.tracker = settings.tracker;
  options.analytics = settings.analytics;
  options.detection_interval = settings.detection_interval;
  return options;
}

}  // namespace

struct Pipeline::Impl {
  Impl(DetectorSetup& detector, std::vector<StreamSetup> setups, const PipelineSettings& settings_in)
      : settings(settings_in) {
    if (setups.empty()) throw Error("pipeline: no stream given");
    if (settings.workers < 1) {
      throw Error("workers " + std::to_string(settings.workers) + " is invalid (expected 1 or more)");
    }
    const bool named = setups.size() > 1;
    for (StreamSetup& setup : setups) {
      const std::string which = named ? "stream " + setup.name + ": " : "";
      if (named && setup.name.empty()) throw Error("pipeline: a stream has an empty name");
      for (const auto& stream : streams) {
        if (stream->name == setup.name) throw Error("pipeline: stream name " + setup.name + " is used twice");
      }
      if (!setup.source) throw Error("pipeline: " + which + "no source given");
      StreamOptions& options = setup.options;
      if (options.detection_interval < 1) {
        throw Error(which + "detection interval " + std::to_string(options.detection_interval) +
                    " is invalid (expected 1 or more)");
      }
      if (options.detection_interval > 1 && !options.tracking) {
        throw Error(which + "detection interval " + std::to_string(options.detection_interval) +
                    " needs tracking (the tracker predicts the frames the detector skips)");
      }
      if (options.max_in_flight < 0) {
        throw Error(which + "max_in_flight " + std::to_string(options.max_in_flight) +
                    " is invalid (expected 0 for the default, or 1 or more)");
      }
      // Live: one detector frame per worker, like MediaPipe's flow limiter. A second admitted
      // detector frame would wait a whole inference for its engine while the mailbox already
      // holds a newer one, doubling capture-to-output latency (measured: 2.2x inference
      // instead of ~1.2x). Files: one frame beyond that keeps every worker busy while
      // preprocessing and output overlap inference (with YOLOX-nano they take 3 ms of a 17 ms
      // frame); two per worker gave the same FPS with 5-7 MiB more memory and 10 ms more
      // latency (on 2 cores). At a detection interval the frames between detector frames
      // count too (see default_max_in_flight).
      if (options.max_in_flight == 0) {
        options.max_in_flight =
            detail::default_max_in_flight(settings.workers, options.detection_interval, setup.source->info().live);
      }
      if (options.max_in_flight < settings.workers && !named) {
        spdlog::warn("max_in_flight {} is below workers {}: only {} workers can be busy at once", options.max_in_flight,
                     settings.workers, options.max_in_flight);
      }
      auto stream = std::make_unique<PipelineStream>();
      stream->name = setup.name;
      stream->source = std::move(setup.source);
      stream->sinks = std::move(setup.sinks);
      stream->options = options;
      if (options.tracking) {
        stream->tracking = std::make_shared<TrackingStep>(options, detector.labels());
      }
      streams.push_back(std::move(stream));
    }
    const int threads = detector.engine_options().intra_op_threads;
    const auto cores = static_cast<int>(std::thread::hardware_concurrency());
    if (threads > 0 && cores > 0 && threads * settings.workers > cores) {
      spdlog::warn("{} workers x {} intra-op threads exceed the {} cores: expect contention", settings.workers, threads,
                   cores);
    }
    processor = std::make_unique<DetectorProcessor>(detector, settings.workers);
  }

  // With one stream its recorder is the whole run's; with several, the run has its own.
  const StatisticsRecorder& total_recorder() const {
    return streams.size() == 1 ? streams.front()->statistics : total_statistics;
  }

  Statistics stream_snapshot(std::size_t index) const {
    const PipelineStream& stream = *streams.at(index);
    Statistics statistics = stream.statistics.snapshot();
    statistics.frames_corrupt = stream.source->counters().corrupt_frames;
    if (stream.tracking) statistics.counts = stream.tracking->counts();
    if (streams.size() > 1) statistics.camera = stream.name;
    return statistics;
  }

  Statistics total_snapshot() const {
    if (streams.size() == 1) return stream_snapshot(0);
    Statistics statistics = total_statistics.snapshot();
    statistics.frames_corrupt = 0;
    for (std::size_t index = 0; index < streams.size(); ++index) {
      statistics.streams.push_back(stream_snapshot(index));
      statistics.frames_corrupt += statistics.streams.back().frames_corrupt;
    }
    return statistics;
  }

  PipelineSettings settings;
  std::vector<std::unique_ptr<PipelineStream>> streams;
  std::unique_ptr<DetectorProcessor> processor;
  StatisticsRecorder total_statistics;  // several streams: every frame of every stream
  std::atomic<bool> stop_requested{false};
  bool ran = false;
};

namespace {

std::vector<StreamSetup> one_stream(std::unique_ptr<Source> source, std::vector<std::unique_ptr<Sink>> sinks,
                                    const PipelineSettings& settings) {
  std::vector<StreamSetup> streams(1);
  streams[0].source = std::move(source);
  streams[0].sinks = std::move(sinks);
  streams[0].options = stream_options_of(settings);
  return streams;
}

}  // namespace

Pipeline::Pipeline(DetectorSetup& detector, std::unique_ptr<Source> source, std::vector<std::unique_ptr<Sink>> sinks,
                   const PipelineSettings& settings)
    : impl_(std::make_unique<Impl>(detector, one_stream(std::move(source), std::move(sinks), settings), settings)) {}

Pipeline::Pipeline(DetectorSetup& detector, std::vector<StreamSetup> streams, const PipelineSettings& settings)
    : impl_(std::make_unique<Impl>(detector, std::move(streams), settings)) {}

Pipeline::~Pipeline() = default;

RunSummary Pipeline::run() {
  if (impl_->ran) throw Error("pipeline: run() was already called (a Pipeline runs once)");
  impl_->ran = true;

  std::vector<detail::GraphStream> graph_streams;
  for (const auto& stream : impl_->streams) {
    detail::GraphStream& graph_stream = graph_streams.emplace_back();
    graph_stream.name = impl_->streams.size() > 1 ? stream->name : "";
    graph_stream.source = stream->source.get();
    for (const auto& sink : stream->sinks) graph_stream.sinks.push_back(sink.get());
    graph_stream.settings.max_in_flight = stream->options.max_in_flight;
    graph_stream.settings.live = stream->source->info().live;
    graph_stream.settings.max_frames = stream->options.max_frames;
    graph_stream.settings.detection_interval = stream->options.detection_interval;
    graph_stream.statistics = &stream->statistics;
    if (stream->tracking) {
      graph_stream.in_order = [step = stream->tracking](FrameResult& result) { (*step)(result); };
      graph_stream.at_end = [step = stream->tracking](FrameResult& result) { return step->finish(result); };
    }
  }

  std::vector<detail::FlowGraphOutcome> outcomes;
  {
    detail::ProgressReporter reporter([this] { return impl_->total_snapshot(); },
                                      [this] {
                                        std::vector<Statistics> per_stream;
                                        for (std::size_t index = 0; index < impl_->streams.size(); ++index) {
                                          per_stream.push_back(impl_->stream_snapshot(index));
                                        }
                                        return per_stream;
                                      },
                                      impl_->settings, stderr, isatty(fileno(stderr)) != 0);
    outcomes =
        detail::run_flow_graph(graph_streams, *impl_->processor,
                               impl_->streams.size() > 1 ? &impl_->total_statistics : nullptr, impl_->stop_requested);
  }

  RunSummary summary;
  summary.statistics = snapshot();
  summary.stopped_by_request = impl_->stop_requested.load();
  for (std::size_t index = 0; index < impl_->streams.size(); ++index) {
    const PipelineStream& stream = *impl_->streams[index];
    const detail::FlowGraphOutcome& outcome = outcomes[index];
    StreamSummary& stream_summary = summary.streams.emplace_back();
    stream_summary.name = stream.name;
    stream_summary.statistics = impl_->stream_snapshot(index);
    stream_summary.statistics.camera = stream.name;
    stream_summary.failed = outcome.failed;
    stream_summary.failure = outcome.failure;
    stream_summary.failure_kind = outcome.failure_kind;
    if (outcome.failed && !summary.failed) {
      summary.failed = true;
      summary.failure = impl_->streams.size() > 1 ? "stream " + stream.name + ": " + outcome.failure : outcome.failure;
      summary.failure_kind = outcome.failure_kind;
    }
    const SourceCounters counters = stream.source->counters();
    if (!counters.last_warning.empty()) {
      spdlog::warn("{}source: {}", impl_->streams.size() > 1 ? "stream " + stream.name + ": " : "",
                   counters.last_warning);
    }
  }
  return summary;
}

void Pipeline::request_stop() {
  impl_->stop_requested.store(true);
  for (const auto& stream : impl_->streams) stream->source->stop();
}

std::size_t Pipeline::stream_count() const { return impl_->streams.size(); }

const std::string& Pipeline::stream_name(std::size_t stream) const { return impl_->streams.at(stream)->name; }

std::size_t Pipeline::stream_index(const std::string& name) const {
  for (std::size_t index = 0; index < impl_->streams.size(); ++index) {
    if (impl_->streams[index]->name == name) return index;
  }
  return impl_->streams.size();
}

Statistics Pipeline::snapshot() const { return impl_->total_snapshot(); }

Statistics Pipeline::snapshot(std::size_t stream) const { return impl_->stream_snapshot(stream); }

const SourceInfo& Pipeline::source_info(std::size_t stream) const { return impl_->streams.at(stream)->source->info(); }

SourceCounters Pipeline::source_counters(std::size_t stream) const {
  return impl_->streams.at(stream)->source->counters();
}

const StatisticsRecorder& Pipeline::recorder() const { return impl_->total_recorder(); }

const StatisticsRecorder& Pipeline::recorder(std::size_t stream) const { return impl_->streams.at(stream)->statistics; }

}  // namespace detflow
