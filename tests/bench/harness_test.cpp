// The bench harness's pieces, and a few-frame run of every mode of run_bench().
//
// Everything that starts thread pools (ONNX Runtime, OpenCV, oneTBB, GStreamer) runs inside
// run_in_child(), as in `detflow bench`, so the test process itself stays fork-safe whatever
// order the tests run in.
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "detflow/bench/bench_report.h"
#include "detflow/bench/detection_agreement.h"
#include "detflow/bench/feature_cost.h"
#include "detflow/bench/frame_store.h"
#include "detflow/bench/handwritten_loop.h"
#include "detflow/bench/harness.h"
#include "detflow/bench/process_probe.h"
#include "detflow/error.h"
#include "detflow/pipeline/config.h"
#include "sanitizers.h"
#include "shared_data.h"

namespace detflow::bench {
namespace {

Detection box(float x1, float y1, float x2, float y2, float score, int class_id) {
  Detection detection;
  detection.x1 = x1;
  detection.y1 = y1;
  detection.x2 = x2;
  detection.y2 = y2;
  detection.score = score;
  detection.class_id = class_id;
  return detection;
}

std::shared_ptr<DecodedFrames> numbered_frames(int count) {
  auto frames = std::make_shared<DecodedFrames>();
  for (int index = 0; index < count; ++index) {
    frames->images.emplace_back(24, 32, CV_8UC3, cv::Scalar::all(index));
    frames->pts_ms.push_back(100.0 * index);
  }
  frames->source.fps = 10;
  frames->source.description = "numbered";
  return frames;
}

TEST(Agreement, IdenticalStreamsAgreeFully) {
  const DetectionsPerFrame stream{{box(0, 0, 10, 10, 0.9f, 0), box(20, 20, 40, 40, 0.5f, 2)}, {}};
  const Agreement agreement = compare_detections(stream, stream);
  EXPECT_EQ(agreement.true_positives, 2);
  EXPECT_EQ(agreement.false_positives, 0);
  EXPECT_EQ(agreement.false_negatives, 0);
  EXPECT_DOUBLE_EQ(agreement.f1, 1.0);
}

TEST(Agreement, CountsMissesExtrasClassAndOverlapLikeDetmatch) {
  const DetectionsPerFrame reference{{box(0, 0, 10, 10, 0.9f, 0), box(50, 50, 60, 60, 0.8f, 1)}};
  // Same place, wrong class; shifted so IoU = 0.6 (< 0.7); one extra frame missing.
  const DetectionsPerFrame candidate{{box(0, 0, 10, 10, 0.9f, 1), box(52.5f, 50, 62.5f, 60, 0.7f, 1)}};
  const Agreement agreement = compare_detections(candidate, reference);
  EXPECT_EQ(agreement.true_positives, 0);
  EXPECT_EQ(agreement.false_positives, 2);
  EXPECT_EQ(agreement.false_negatives, 2);
  EXPECT_DOUBLE_EQ(agreement.f1, 0.0);

  const DetectionsPerFrame close{{box(0, 0, 10, 10, 0.85f, 0)}, {box(1, 1, 2, 2, 0.3f, 0)}};
  const DetectionsPerFrame two_frames{{box(0, 0, 10, 10, 0.9f, 0), box(50, 50, 60, 60, 0.8f, 1)}, {}};
  const Agreement partial = compare_detections(close, two_frames);
  EXPECT_EQ(partial.true_positives, 1);
  EXPECT_EQ(partial.false_positives, 1);
  EXPECT_EQ(partial.false_negatives, 1);
  EXPECT_NEAR(partial.f1, 0.5, 1e-12);
  EXPECT_NEAR(partial.mean_abs_score_diff, 0.05, 1e-6);
}

TEST(Agreement, DetectionsSurviveTheTripBetweenProcesses) {
  const DetectionsPerFrame stream{{box(1.5f, 2.25f, 30, 40, 0.75f, 3)}, {}, {box(0, 0, 1, 1, 0.25f, 79)}};
  const DetectionsPerFrame back = detections_from_json(nlohmann::json::parse(detections_to_json(stream).dump()));
  ASSERT_EQ(back.size(), 3u);
  EXPECT_TRUE(back[1].empty());
  EXPECT_FLOAT_EQ(back[0][0].y1, 2.25f);
  EXPECT_EQ(back[2][0].class_id, 79);
  EXPECT_DOUBLE_EQ(compare_detections(back, stream).f1, 1.0);
}

TEST(LatencySummary, NearestRankPercentiles) {
  std::vector<double> samples;
  for (int value = 100; value >= 1; --value) samples.push_back(value);
  const LatencySummary summary = summarize_latencies(samples);
  EXPECT_EQ(summary.count, 100);
  EXPECT_DOUBLE_EQ(summary.p50_ms, 50);
  EXPECT_DOUBLE_EQ(summary.p95_ms, 95);
  EXPECT_DOUBLE_EQ(summary.p99_ms, 99);
  EXPECT_DOUBLE_EQ(summary.max_ms, 100);
  EXPECT_DOUBLE_EQ(summary.mean_ms, 50.5);
  EXPECT_EQ(summarize_latencies({}).count, 0);
}

TEST(MemorySource, FileModeReplaysEveryFrameOnceInOrder) {
  MemorySource source(numbered_frames(4), ReplaySettings{});
  EXPECT_FALSE(source.info().live);
  EXPECT_EQ(source.info().frame_count, 4);
  EXPECT_DOUBLE_EQ(source.info().fps, 10);
  Frame frame;
  for (int index = 0; index < 4; ++index) {
    ASSERT_TRUE(source.read(frame));
    EXPECT_EQ(frame.image.at<cv::Vec3b>(0, 0)[0], index);
    EXPECT_DOUBLE_EQ(frame.pts_ms, 100.0 * index);
  }
  EXPECT_FALSE(source.read(frame));
}

TEST(MemorySource, LiveModeCyclesAtItsRateUntilTheDurationEnds) {
  ReplaySettings live;
  live.live = true;
  live.fps = 50;
  live.duration_s = 0.1;  // frames due at 0, 20, 40, 60, 80 ms
  MemorySource source(numbered_frames(2), live);
  EXPECT_TRUE(source.info().live);
  Frame frame;
  std::vector<int> values;
  std::vector<double> stamps;
  while (source.read(frame)) {
    values.push_back(frame.image.at<cv::Vec3b>(0, 0)[0]);
    stamps.push_back(frame.pts_ms);
  }
  EXPECT_EQ(values, (std::vector<int>{0, 1, 0, 1, 0}));
  EXPECT_EQ(stamps, (std::vector<double>{0, 20, 40, 60, 80}));
}

TEST(MemorySource, RejectsNoFramesAndBadLiveSettings) {
  EXPECT_THROW(MemorySource(std::make_shared<DecodedFrames>(), ReplaySettings{}), Error);
  ReplaySettings live;
  live.live = true;
  live.fps = 0;
  live.duration_s = 1;
  EXPECT_THROW(MemorySource(numbered_frames(1), live), Error);
}

TEST(ChildProcess, ReturnsTheResultAndRethrowsFailures) {
  EXPECT_EQ(run_in_child("echo", [] { return std::string("hello from ") + std::to_string(::getpid()); })
                .rfind("hello from ", 0),
            0u);
  EXPECT_NE(run_in_child("pid", [] { return std::to_string(::getpid()); }), std::to_string(::getpid()));
  EXPECT_THROW(run_in_child("setup", []() -> std::string { throw Error("bad model x.onnx"); }), Error);
  try {
    run_in_child("runtime", []() -> std::string { throw std::runtime_error("frame 3 broke"); });
    FAIL() << "expected a failure";
  } catch (const Error&) {
    FAIL() << "a runtime failure must not become a setup error";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("frame 3 broke"), std::string::npos);
  }
  EXPECT_THROW(run_in_child("crash", []() -> std::string { std::abort(); }), std::runtime_error);
}

TEST(ChildProcess, PeakMemoryResetsToTheCurrentResidentSet) {
  if (test::running_under_address_sanitizer) GTEST_SKIP() << test::resident_memory_skip_reason;
  const std::string result = run_in_child("memory", [] {
    std::vector<char> block(64 << 20, 1);  // 64 MiB touched, then freed
    const std::int64_t peak_with_block = peak_resident_kb();
    block = {};
    block.shrink_to_fit();
    const bool reset = reset_peak_resident();
    return nlohmann::json{{"peak_with_block", peak_with_block},
                          {"reset", reset},
                          {"peak_after", peak_resident_kb()},
                          {"resident", resident_kb()}}
        .dump();
  });
  const auto values = nlohmann::json::parse(result);
  EXPECT_GT(values["peak_with_block"].get<std::int64_t>(), 64 * 1024);
  if (!values["reset"].get<bool>()) GTEST_SKIP() << "this kernel refuses /proc/self/clear_refs";
  EXPECT_LT(values["peak_after"].get<std::int64_t>(), values["peak_with_block"].get<std::int64_t>() - 32 * 1024);
}

// The loop written the tutorials' way and detflow's own stages detect the same objects.
TEST(HandwrittenLoop, AgreesWithDetflowOnRealFrames) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  const std::string result = run_in_child("loop vs detflow", [&] {
    SourceSettings source;
    source.uri = video.string();
    const auto frames = decode_frames(source, 3, std::int64_t{1} << 30);
    ModelSettings settings;
    settings.path = model;
    // The loop on the same engine as detflow: ONNX Runtime when this build has it.
    const std::string backend = onnxruntime_available() ? "onnxruntime" : "opencv";
    EngineOptions engine;
    engine.backend = backend;
    engine.intra_op_threads = 1;
    DetectorSetup detector(settings, engine);
    LoopModel loop_model = loop_model_from(detector);
    // The trip the bench makes from its setup child to the loop's child.
    loop_model = loop_model_from_json(to_json(loop_model));
    LoopSettings loop_settings;
    loop_settings.backend = backend;
    loop_settings.threads = 1;
    HandwrittenLoop loop(loop_model, loop_settings);
    const LoopResult loop_result = loop.run(frames->images);

    DetectionsPerFrame detflow_detections;
    auto detflow_engine = detector.make_engine();
    Preprocessor preprocessor(detector.preprocess_spec());
    Tensor input = detector.make_input_tensor();
    std::vector<Tensor> outputs;
    for (const auto& image : frames->images) {
      const Geometry geometry = preprocessor.run(image, input);
      detflow_engine->run(std::span<const Tensor>(&input, 1), outputs);
      detector.postprocess(outputs, geometry, detflow_detections.emplace_back());
    }
    std::size_t boxes = 0;
    for (const auto& frame : loop_result.detections) boxes += frame.size();
    return nlohmann::json{{"frames", loop_result.frames},
                          {"boxes", boxes},
                          {"family", loop_model.family},
                          {"inference_count", loop_result.stages.at("inference").count},
                          {"f1", compare_detections(detflow_detections, loop_result.detections).f1}}
        .dump();
  });
  const auto values = nlohmann::json::parse(result);
  EXPECT_EQ(values["family"], "yolox");
  EXPECT_EQ(values["frames"], 3);
  EXPECT_EQ(values["inference_count"], 3);
  EXPECT_GT(values["boxes"].get<int>(), 3) << "vtest.avi shows several pedestrians per frame";
  EXPECT_GE(values["f1"].get<double>(), 0.99);
}

TEST(HandwrittenLoop, RefusesUnknownBackends) {
  LoopModel model;
  model.family = "yolox";
  LoopSettings settings;
  settings.backend = "tensorflow";
  EXPECT_THROW(HandwrittenLoop(model, settings), Error);
}

// Every mode on three frames: the report has what the issue asks for, and the numbers are
// consistent with each other (not fast: speed is never asserted here).
TEST(RunBench, FewFramesReportEveryModeWithRatiosAgreementAndConfig) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  const auto directory = test::temporary_directory("detflow-bench-test");
  BenchOptions options;
  options.model.path = model;
  options.source.uri = video.string();
  options.frames = 3;
  options.engine_frames = 3;
  options.cores = 2;
  options.workers = 2;
  options.threads = 1;
  options.output_video = true;
  options.output_directory = directory / "outputs";
  options.opencv_loop = false;
  options.live_seconds = 1;
  options.live_fps = 10;
  options.write_config = directory / "best.yaml";
  const nlohmann::json report = run_bench(options);

  EXPECT_EQ(report["source"]["frames"], 3);
  EXPECT_EQ(report["model"]["family"], "yolox");
  ASSERT_TRUE(report["ratios"].contains("pipeline_over_loop"));
  ASSERT_TRUE(report["ratios"].contains("pipeline_over_limit"));
  EXPECT_GT(report["ratios"]["pipeline_over_loop"].get<double>(), 0);
  EXPECT_GT(report["limit_fps"].get<double>(), 0);
  EXPECT_GE(report["agreement"]["f1"].get<double>(), 0.99);
  EXPECT_GT(report["agreement"]["true_positives"].get<int>(), 0);
  for (const char* stage : {"preprocess", "inference", "postprocess", "output"}) {
    EXPECT_GT(report["stage_costs"]["cpu_ms_per_frame"][stage].get<double>(), 0) << stage;
  }
  bool saw_loop = false, saw_pipeline = false, saw_ceiling = false;
  for (const auto& mode : report["modes"]) {
    ASSERT_FALSE(mode.contains("error")) << mode.dump();
    if (mode["mode"] == "loop") saw_loop = true;
    if (mode["mode"] == "pipeline") {
      saw_pipeline = true;
      EXPECT_EQ(mode["frames"], 3);
      EXPECT_EQ(mode["workers"], 2);
      EXPECT_GT(mode["memory"]["peak_kb"].get<double>(), 0);
    }
    if (mode["mode"] == "engine" && mode["workers"] == 2) saw_ceiling = true;
  }
  EXPECT_TRUE(saw_loop && saw_pipeline && saw_ceiling);
  // Each of the loop and the pipeline wrote its annotated video and one JSON line per frame.
  // The loop runs on the engine `auto` resolves to: ONNX Runtime when this build has it.
  const std::string loop_stem = onnxruntime_available() ? "loop-onnxruntime" : "loop-opencv";
  for (const std::string& stem : {loop_stem, std::string("pipeline-2x1")}) {
    EXPECT_GT(std::filesystem::file_size(directory / "outputs" / (stem + ".mp4")), 0u) << stem;
    std::ifstream lines(directory / "outputs" / (stem + ".jsonl"));
    std::string line;
    int count = 0;
    while (std::getline(lines, line)) count += line.empty() ? 0 : 1;
    EXPECT_EQ(count, 3) << stem;
  }
  EXPECT_GT(report["live"]["frames_read"].get<int>(), 0);
  EXPECT_EQ(report["live"]["frames_read"].get<int>(),
            report["live"]["frames_processed"].get<int>() + report["live"]["frames_dropped"].get<int>());
  const Config written = load_config(directory / "best.yaml");
  EXPECT_EQ(written.engine.workers, 2);
  EXPECT_EQ(written.engine.threads, 1);
  EXPECT_EQ(written.model.path, std::filesystem::weakly_canonical(std::filesystem::absolute(model)));
  const std::string table = format_report_table(report);
  EXPECT_NE(table.find("CPU-bound limit"), std::string::npos);
  EXPECT_NE(table.find("pipeline_over_loop"), std::string::npos);
}

TEST(FeatureList, KnownNamesInOrderAndErrorsNameTheValue) {
  EXPECT_EQ(parse_feature_list("tracking,preview,mqtt"), (std::vector<std::string>{"tracking", "preview", "mqtt"}));
  for (const std::string bad : {"tracking,gpu", "tracking,tracking", "", "preview,"}) {
    try {
      parse_feature_list(bad);
      FAIL() << "expected detflow::Error for '" << bad << "'";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("'" + bad + "'"), std::string::npos) << error.what();
    }
  }
  EXPECT_EQ(detection_interval_available(), [] {
    try {
      return parse_feature_list("interval2").size() == 1;
    } catch (const Error&) {
      return false;
    }
  }());
  const auto lines = default_bench_lines(768, 576);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_FLOAT_EQ(lines[0].start.x, 256);
  EXPECT_FLOAT_EQ(lines[1].end.x, 512);
  EXPECT_FLOAT_EQ(lines[1].end.y, 576);
}

// Five frames, the pipeline on one worker with one thread, no engines alone and no OpenCV loop.
BenchOptions pipeline_only_options(const std::filesystem::path& model, const std::filesystem::path& video) {
  BenchOptions options;
  options.model.path = model;
  options.source.uri = video.string();
  options.frames = 5;
  options.engine_frames = 2;
  options.cores = 2;
  options.workers = 1;
  options.threads = 1;
  options.opencv_loop = false;
  options.engine_only = false;
  return options;
}

// `detflow bench --with tracking,preview[,mqtt]` on a few frames, one round: the report has
// each feature's FPS, its ratio to the plain run and its target (speed is not asserted).
TEST(RunBench, WithFeaturesReportsRatiosOverThePlainPipeline) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  BenchOptions options = pipeline_only_options(model, video);
  options.features = {"tracking", "preview"};
  if (!find_mosquitto().empty()) options.features.push_back("mqtt");
  if (detection_interval_available()) options.features.push_back("interval2");
  options.feature_rounds = 1;
  const nlohmann::json report = run_bench(options);

  ASSERT_TRUE(report.contains("features")) << report.dump(2);
  const nlohmann::json& features = report["features"];
  EXPECT_EQ(features["rounds"], 1);
  EXPECT_EQ(features["lines"].size(), 2u);
  EXPECT_EQ(features["plain"]["fps_runs"].size(), 1u);
  for (const auto& feature : options.features) {
    const nlohmann::json& item = features["features"][feature];
    ASSERT_FALSE(item.contains("error")) << feature << ": " << item.dump();
    EXPECT_GT(item["fps_median"].get<double>(), 0) << feature;
    ASSERT_TRUE(report["ratios"][feature + "_over_plain"].is_number()) << feature;
    EXPECT_GT(report["ratios"][feature + "_over_plain"].get<double>(), 0) << feature;
  }
  EXPECT_TRUE(features["features"]["tracking"]["line_counts"].contains("left"));
  const nlohmann::json& preview = features["features"]["preview"]["last_run"]["preview"];
  EXPECT_EQ(preview["clients"].size(), 3u);
  if (report["ratios"].contains("mqtt_over_plain")) {
    const nlohmann::json& mqtt = features["features"]["mqtt"];
    EXPECT_EQ(mqtt["last_run"]["mqtt"]["events_dropped"], 0);
    EXPECT_GE(mqtt["events"].get<int>(), mqtt["last_run"]["mqtt"]["events_acknowledged"].get<int>());
    EXPECT_TRUE(report["ratios"].contains("mqtt_over_tracking"));
  }
  int feature_targets = 0;
  for (const auto& item : report["targets"]) {
    if (item["name"].get<std::string>().find("/ plain FPS") != std::string::npos) {
      ++feature_targets;
      EXPECT_EQ(item["goal"], 0.97);
    }
  }
  EXPECT_EQ(feature_targets, report["ratios"].contains("mqtt_over_plain") ? 3 : 2);
  EXPECT_NE(format_report_table(report).find("feature costs"), std::string::npos);
}

// `detflow bench --streams 3` on a few frames, one round: every stream processes every frame,
// the report has the aggregate FPS, each stream's FPS and latency, the memory per extra
// stream and ratios.multi_over_single with its targets (speed is not asserted).
TEST(RunBench, WithStreamsReportsTheMultiStreamPipelineNextToTheSingleOne) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  BenchOptions options = pipeline_only_options(model, video);
  options.output_video = true;
  options.streams = 3;
  options.feature_rounds = 1;
  const nlohmann::json report = run_bench(options);

  ASSERT_TRUE(report.contains("streams")) << report.dump(2);
  const nlohmann::json& streams = report["streams"];
  EXPECT_EQ(streams["streams"], 3);
  EXPECT_EQ(streams["single"]["fps_runs"].size(), 1u);
  EXPECT_EQ(streams["multi"]["fps_runs"].size(), 1u);
  const nlohmann::json& last = streams["multi"]["last_run"];
  EXPECT_EQ(last["frames"], 15);
  ASSERT_EQ(last["per_stream"].size(), 3u);
  for (const auto& stream : last["per_stream"]) {
    EXPECT_EQ(stream["frames"], 5) << stream.dump();
    EXPECT_EQ(stream["frames_failed"], 0) << stream.dump();
    EXPECT_GT(stream["capture_to_output"]["p99_ms"].get<double>(), 0) << stream.dump();
  }
  ASSERT_TRUE(report["ratios"]["multi_over_single"].is_number());
  EXPECT_GT(report["ratios"]["multi_over_single"].get<double>(), 0);
  EXPECT_TRUE(streams["added_kb_per_extra_stream"].is_number());
  int stream_targets = 0;
  for (const auto& item : report["targets"]) {
    const std::string name = item["name"].get<std::string>();
    stream_targets +=
        name.find("streams aggregate FPS") != std::string::npos || name.find("per extra stream") != std::string::npos;
  }
  EXPECT_EQ(stream_targets, 2);
  EXPECT_NE(format_report_table(report).find("per extra stream"), std::string::npos);

  options.streams = 1;
  EXPECT_THROW(run_bench(options), Error);
}

TEST(RunBench, SetupErrorsNameTheValue) {
  BenchOptions options;
  options.model.path = "/nonexistent/model.onnx";
  options.source.uri = "/nonexistent/video.avi";
  try {
    run_bench(options);
    FAIL() << "expected detflow::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace detflow::bench
