// DetectorSetup on the real models of ../shared (family, shapes, preprocessing, labels,
// class filter) and a short real Pipeline run checked against the reference detections.
#include "detflow/pipeline/detector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <mutex>
#include <set>

#include "detection_match.h"
#include "detflow/error.h"
#include "detflow/pipeline/pipeline.h"
#include "shared_data.h"

namespace detflow {
namespace {

ModelSettings settings_for(const std::filesystem::path& model, const std::string& family = "auto") {
  ModelSettings settings;
  settings.path = model;
  settings.family = family;
  return settings;
}

std::string error_of(const ModelSettings& settings) {
  try {
    DetectorSetup detector(settings, EngineOptions{});
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(DetectorSetup, YoloxNanoFollowsTheModelCard) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DetectorSetup detector(settings_for(model), EngineOptions{});
  ASSERT_NE(detector.family().family, nullptr);
  EXPECT_EQ(detector.family().family->name, "yolox");
  EXPECT_FALSE(detector.family().reason.empty());
  EXPECT_EQ(detector.input_shape().shape, (std::vector<std::int64_t>{1, 3, 416, 416}));
  EXPECT_FALSE(detector.input_shape().nhwc);

  const PreprocessSpec& spec = detector.preprocess_spec();
  EXPECT_EQ(spec.width, 416);
  EXPECT_EQ(spec.height, 416);
  EXPECT_EQ(spec.resize, ResizeMode::letterbox_top_left);
  EXPECT_EQ(spec.color, ColorOrder::bgr);
  EXPECT_EQ(spec.layout, Layout::nchw);
  EXPECT_EQ(spec.type, ElementType::float32);
  EXPECT_DOUBLE_EQ(spec.scale, 1.0);
  EXPECT_DOUBLE_EQ(spec.pad_value, 114.0);
  EXPECT_EQ(spec.mean, (std::array<double, 3>{0, 0, 0}));
  EXPECT_EQ(spec.std, (std::array<double, 3>{1, 1, 1}));

  EXPECT_EQ(detector.decoder().num_classes(), 80);
  EXPECT_EQ(detector.labels().name(0), "person");
  EXPECT_FLOAT_EQ(detector.postprocess_options().score_threshold, 0.25f);
  EXPECT_TRUE(detector.postprocess_options().nms);
  EXPECT_EQ(detector.engine_input().name, "images");

  const auto lines = detector.describe();
  ASSERT_GE(lines.size(), 6u);
  EXPECT_NE(lines[1].find("yolox"), std::string::npos) << lines[1];
  for (const auto& line : lines) EXPECT_EQ(line.find('\n'), std::string::npos);

  const Tensor input = detector.make_input_tensor();
  EXPECT_EQ(input.shape(), (std::vector<std::int64_t>{1, 3, 416, 416}));
  EXPECT_EQ(input.name, "images");
}

TEST(DetectorSetup, Yolov8UsesCentredLetterboxRgbAndUnitScale) {
  DETFLOW_SHARED_FILE(model, "models/yolov8n.onnx");
  DetectorSetup detector(settings_for(model), EngineOptions{});
  EXPECT_EQ(detector.family().family->name, "yolov8");
  EXPECT_EQ(detector.preprocess_spec().width, 640);
  EXPECT_EQ(detector.preprocess_spec().resize, ResizeMode::letterbox_center);
  EXPECT_EQ(detector.preprocess_spec().color, ColorOrder::rgb);
  EXPECT_DOUBLE_EQ(detector.preprocess_spec().scale, 1.0 / 255.0);
}

TEST(DetectorSetup, OverridesAndClassFilterByNameOrId) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  ModelSettings settings = settings_for(model);
  settings.score_threshold = 0.5f;
  settings.iou_threshold = 0.6f;
  settings.max_detections = 10;
  settings.class_agnostic = true;
  settings.pad_value = 0.0;
  settings.color = ColorOrder::rgb;
  settings.classes = {"car", "0", "person"};
  DetectorSetup detector(settings, EngineOptions{});
  EXPECT_FLOAT_EQ(detector.postprocess_options().score_threshold, 0.5f);
  EXPECT_FLOAT_EQ(detector.postprocess_options().iou_threshold, 0.6f);
  EXPECT_EQ(detector.postprocess_options().max_detections, 10);
  EXPECT_TRUE(detector.postprocess_options().class_agnostic);
  EXPECT_DOUBLE_EQ(detector.preprocess_spec().pad_value, 0.0);
  EXPECT_EQ(detector.preprocess_spec().color, ColorOrder::rgb);
  EXPECT_EQ(detector.postprocess_options().class_filter, (std::vector<int>{0, 2}));
}

TEST(DetectorSetup, SetupErrorsAreOneLineAndHelpful) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  ModelSettings unknown_class = settings_for(model);
  unknown_class.classes = {"persn"};
  const std::string class_message = error_of(unknown_class);
  EXPECT_NE(class_message.find("persn"), std::string::npos) << class_message;
  EXPECT_NE(class_message.find("person"), std::string::npos) << class_message;

  ModelSettings bad_id = settings_for(model);
  bad_id.classes = {"80"};
  EXPECT_NE(error_of(bad_id).find("0 to 79"), std::string::npos) << error_of(bad_id);

  ModelSettings bad_threshold = settings_for(model);
  bad_threshold.score_threshold = 1.5f;
  EXPECT_NE(error_of(bad_threshold).find("score_threshold 1.5"), std::string::npos) << error_of(bad_threshold);

  ModelSettings unknown_family = settings_for(model, "yolo99");
  EXPECT_NE(error_of(unknown_family).find("yolo99"), std::string::npos) << error_of(unknown_family);

  for (const auto& settings : {unknown_class, bad_id, bad_threshold, unknown_family}) {
    EXPECT_EQ(error_of(settings).find('\n'), std::string::npos);
  }
}

TEST(DetectorSetup, MakeEngineHandsOutTheFirstEngineThenNewOnes) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DetectorSetup detector(settings_for(model), EngineOptions{});
  auto first = detector.make_engine();
  auto second = detector.make_engine();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_NE(first.get(), second.get());
  EXPECT_EQ(second->report().backend, detector.engine_report().backend);
}

// Collects results in the order the pipeline delivers them.
class CollectingSink final : public Sink {
 public:
  std::string name() const override { return "collector"; }
  void open(const SourceInfo& source) override { info = source; }
  bool consume(const FrameResult& result) override {
    results.push_back(result);
    return true;
  }
  void finish() override { ++finished; }
  SourceInfo info;
  std::vector<FrameResult> results;
  int finished = 0;
};

TEST(PipelineRun, TwentyFramesOfVtestMatchTheReference) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  DETFLOW_SHARED_FILE(reference_file, "reference/yolox_nano__vtest.jsonl");
  EngineOptions engine_options;
  engine_options.intra_op_threads = 1;
  DetectorSetup detector(settings_for(model), engine_options);
  auto sink = std::make_unique<CollectingSink>();
  CollectingSink* collector = sink.get();
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(sink));
  PipelineSettings settings;
  settings.workers = 2;
  settings.max_frames = 20;
  settings.progress = false;
  // The reference decoded vtest.avi with FFmpeg and swscale; GStreamer's colour conversion
  // differs by about one level per pixel, enough to move scores near the threshold.
  Pipeline pipeline(detector, open_source({.uri = video.string(), .video_reader = "opencv"}), std::move(sinks),
                    settings);
  const RunSummary summary = pipeline.run();

  EXPECT_FALSE(summary.failed) << summary.failure;
  EXPECT_EQ(summary.statistics.frames_read, 20);
  EXPECT_EQ(summary.statistics.frames_processed, 20);
  EXPECT_EQ(summary.statistics.frames_failed, 0);
  EXPECT_EQ(summary.statistics.frames_total, 20);
  EXPECT_EQ(collector->finished, 1);
  EXPECT_EQ(collector->info.width, 768);
  ASSERT_EQ(collector->results.size(), 20u);

  test::DetectionStream candidate;
  for (std::size_t index = 0; index < collector->results.size(); ++index) {
    const FrameResult& result = collector->results[index];
    EXPECT_EQ(result.frame->index, static_cast<std::int64_t>(index));
    EXPECT_FALSE(result.failed) << result.failure;
    auto& boxes = candidate[static_cast<long>(index)];
    for (const Detection& detection : result.detections) {
      EXPECT_FALSE(detection.label.empty());
      boxes.push_back({detection.x1, detection.y1, detection.x2, detection.y2, detection.score, detection.class_id});
    }
  }
  EXPECT_GT(summary.statistics.detections, 20) << "vtest shows several people in every frame";
  test::DetectionStream reference = test::read_detection_stream(reference_file);
  for (auto frame = reference.begin(); frame != reference.end();) {
    frame = frame->first >= 20 ? reference.erase(frame) : std::next(frame);
  }
  const test::MatchResult match = test::match_detections(candidate, reference);
  EXPECT_GE(match.f1, 0.99) << match.to_string();
  EXPECT_LE(match.mean_abs_score_diff, 0.01) << match.to_string();
}

TEST(PipelineRun, DetectionIntervalTwoRunsTheDetectorOnHalfTheFramesAndTracksContinue) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  EngineOptions engine_options;
  engine_options.intra_op_threads = 1;
  DetectorSetup detector(settings_for(model), engine_options);
  PipelineSettings settings;
  settings.workers = 2;
  settings.max_frames = 30;
  settings.progress = false;
  settings.detection_interval = 2;
  // Without tracking nothing would predict the skipped frames: refused.
  EXPECT_THROW(
      { Pipeline refused(detector, open_source({.uri = video.string(), .video_reader = "opencv"}), {}, settings); },
      Error);

  settings.tracking = true;
  settings.analytics.lines.push_back(track::parse_line_spec("door=300,0,300,576"));
  settings.analytics.zones.push_back(track::parse_zone_spec("z=100,100,400,100,400,400,100,400"));
  auto sink = std::make_unique<CollectingSink>();
  CollectingSink* collector = sink.get();
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(sink));
  Pipeline pipeline(detector, open_source({.uri = video.string(), .video_reader = "opencv"}), std::move(sinks),
                    settings);
  const RunSummary summary = pipeline.run();

  EXPECT_FALSE(summary.failed) << summary.failure;
  EXPECT_EQ(summary.statistics.frames_processed, 30);
  EXPECT_EQ(summary.statistics.frames_detected, 15);
  EXPECT_EQ(summary.statistics.stages.at("inference").count, 15);
  ASSERT_TRUE(summary.statistics.counts.has_value()) << "lines and zones configured: counts in the statistics";
  ASSERT_EQ(summary.statistics.counts->lines.size(), 1u);
  EXPECT_EQ(summary.statistics.counts->lines[0].name, "door");
  EXPECT_EQ(summary.statistics.counts->zones[0].name, "z");
  // Every frame in order, then the end-of-stream result.
  ASSERT_EQ(collector->results.size(), 31u);
  std::set<std::uint64_t> early_ids, late_ids;
  std::int64_t starts = 0;
  for (std::size_t index = 0; index < 30; ++index) {
    const FrameResult& result = collector->results[index];
    ASSERT_NE(result.frame, nullptr);
    EXPECT_EQ(result.frame->index, static_cast<std::int64_t>(index));
    ASSERT_NE(result.analytics, nullptr);
    EXPECT_EQ(result.analytics->lines.size(), 1u);
    const bool detected = index % 2 == 0;
    EXPECT_EQ(result.detector_ran, detected) << index;
    if (detected) {
      EXPECT_FALSE(result.detections.empty()) << index;
    } else {
      EXPECT_TRUE(result.detections.empty()) << index;
      // Tracks are confirmed on their second detected frame (confirm_hits 2): frame 2.
      if (index >= 3) {
        EXPECT_FALSE(result.tracks.empty()) << "the people of frame " << index - 1 << " are tracked";
      }
      std::set<std::uint64_t> before;
      for (const auto& track : collector->results[index - 1].tracks) before.insert(track.id);
      for (const auto& track : result.tracks) {
        EXPECT_TRUE(track.predicted);
        EXPECT_EQ(track.detection_index, -1);
        EXPECT_TRUE(before.count(track.id)) << "a skipped frame continues the tracks it had, id " << track.id;
        EXPECT_LT(track.box.x1, track.box.x2);
      }
    }
    for (const auto& track : result.tracks) {
      if (index >= 2 && index <= 6 && !track.predicted) early_ids.insert(track.id);
      if (index >= 24 && !track.predicted) late_ids.insert(track.id);
    }
    for (const auto& event : result.events) starts += event.type == track::EventType::track_start ? 1 : 0;
  }
  std::vector<std::uint64_t> continued;
  std::set_intersection(early_ids.begin(), early_ids.end(), late_ids.begin(), late_ids.end(),
                        std::back_inserter(continued));
  EXPECT_GE(continued.size(), 3u) << "people walking through vtest keep their ids across skipped frames";

  // The end of the stream ends every track that started.
  const FrameResult& end = collector->results.back();
  EXPECT_EQ(end.frame, nullptr);
  EXPECT_TRUE(end.tracks.empty());
  std::int64_t ends = 0;
  for (std::size_t index = 0; index < collector->results.size(); ++index) {
    for (const auto& event : collector->results[index].events) {
      ends += event.type == track::EventType::track_end ? 1 : 0;
    }
  }
  EXPECT_GT(starts, 0);
  EXPECT_EQ(ends, starts) << "every track that started has ended by the end of the run";
  for (const auto& event : end.events) {
    EXPECT_TRUE(event.type == track::EventType::track_end || event.type == track::EventType::zone_exit);
    EXPECT_EQ(event.frame, 29) << "stamped with the last frame";
  }
}

}  // namespace
}  // namespace detflow
