// Engine verification (engine_verify.h): engines that compute the same model agree, an
// engine whose outputs are perturbed is caught at the level of detections, and `detflow
// run`'s first-frame check warns, refuses or stays silent as engine.verify says.
#include "detflow/pipeline/engine_verify.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/config.h"
#include "log_capture.h"
#include "model_builder.h"
#include "shared_data.h"

namespace detflow {
namespace {

// spdlog's default logger into a string while it lives.
using LogToString = test::LogCapture;

constexpr int model_side = 64;
constexpr int classes = 2;

// A YOLOv8-layout model [1, 4 + 2, N] whose boxes sit on an 8 x 8 lattice of 12-pixel
// squares (so NMS has overlaps to resolve) and whose class scores follow the picture:
// class 0 = g (the pooled mean brightness of the anchor's cell, 0..1), class 1 = 1 - g.
// Detections therefore exist and change with the input image.
std::filesystem::path write_lattice_model(const std::filesystem::path& path) {
  test::SyntheticModelOptions options;
  options.width = options.height = model_side;
  options.classes = classes;
  options.channel_scales = {0, 0, 0, 0, 1, -1};
  options.channel_offsets = {0, 0, 12, 12, 0, 1};
  const auto anchors = static_cast<std::size_t>(test::anchor_count(model_side, model_side));
  options.full_offset.assign((4 + classes) * anchors, 0.0f);
  for (std::size_t anchor = 0; anchor < anchors; ++anchor) {
    options.full_offset[0 * anchors + anchor] = 8.0f + 6.0f * static_cast<float>(anchor % 8);
    options.full_offset[1 * anchors + anchor] = 8.0f + 6.0f * static_cast<float>((anchor / 8) % 8);
  }
  options.metadata = test::ultralytics_metadata(classes, model_side, model_side);
  return test::write_yolov8_model(path, options);
}

DetectorSetup setup_for(const std::filesystem::path& model, const std::string& backend = "onnxruntime") {
  ModelSettings settings;
  settings.path = model;
  EngineOptions options;
  options.backend = backend;
  options.intra_op_threads = 1;
  return DetectorSetup(settings, options);
}

std::unique_ptr<Engine> engine_for(const DetectorSetup& detector, const std::string& backend) {
  EngineOptions options = detector.engine_options();
  options.backend = backend;
  options.target = "cpu";
  auto engine = create_engine(detector.model(), options);
  EXPECT_EQ(engine->report().backend, backend);
  return engine;
}

// Runs another engine and then changes its class scores, as a wrong kernel would: every
// score is multiplied by `factor` (the box columns stay exact).
class PerturbingEngine final : public Engine {
 public:
  PerturbingEngine(std::unique_ptr<Engine> inner, float factor) : inner_(std::move(inner)), factor_(factor) {}
  const EngineReport& report() const override { return inner_->report(); }
  const std::vector<TensorInfo>& inputs() const override { return inner_->inputs(); }
  const std::vector<TensorInfo>& outputs() const override { return inner_->outputs(); }
  void run(std::span<const Tensor> inputs, std::vector<Tensor>& outputs) override {
    inner_->run(inputs, outputs);
    Tensor& output = outputs.at(0);  // [1, 4 + C, N], float32
    const auto anchors = static_cast<std::size_t>(output.dim(2));
    float* values = output.data<float>();
    for (std::size_t index = 4 * anchors; index < output.element_count(); ++index) values[index] *= factor_;
  }
  std::unique_ptr<Engine> share() const override { return nullptr; }

 private:
  std::unique_ptr<Engine> inner_;
  float factor_;
};

// An engine that loads but cannot run.
class FailingEngine final : public Engine {
 public:
  explicit FailingEngine(std::unique_ptr<Engine> inner) : inner_(std::move(inner)) {}
  const EngineReport& report() const override { return inner_->report(); }
  const std::vector<TensorInfo>& inputs() const override { return inner_->inputs(); }
  const std::vector<TensorInfo>& outputs() const override { return inner_->outputs(); }
  void run(std::span<const Tensor>, std::vector<Tensor>&) override {
    throw std::runtime_error("kernel compilation failed");
  }
  std::unique_ptr<Engine> share() const override { return nullptr; }

 private:
  std::unique_ptr<Engine> inner_;
};

class EngineVerify : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!onnxruntime_available()) GTEST_SKIP() << "this build has no ONNX Runtime, the reference";
    model_ = write_lattice_model(folder_ / "lattice.onnx");
  }
  std::filesystem::path folder_ = test::temporary_directory("engine-verify");
  std::filesystem::path model_;
};

TEST(SyntheticTestImage, IsDeterministicAndNotFlat) {
  const cv::Mat first = synthetic_test_image(320, 240);
  const cv::Mat second = synthetic_test_image(320, 240);
  ASSERT_EQ(first.size(), cv::Size(320, 240));
  ASSERT_EQ(first.type(), CV_8UC3);
  EXPECT_EQ(cv::norm(first, second, cv::NORM_INF), 0.0);
  cv::Scalar mean, deviation;
  cv::meanStdDev(first, mean, deviation);
  EXPECT_GT(deviation[0], 30.0);  // shapes and gradients, not a flat field
  EXPECT_THROW(synthetic_test_image(8, 8), Error);
}

TEST(VerifyInputFrom, NamesAnUnreadableImage) {
  const auto folder = test::temporary_directory("verify-input");
  test::write_bytes(folder / "not-an-image.png", "text");
  try {
    verify_input_from(folder / "not-an-image.png");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("not-an-image.png"), std::string::npos) << error.what();
  }
  EXPECT_THROW(verify_input_from(folder / "missing.png"), Error);
  const VerifyInput synthetic = verify_input_from({});
  EXPECT_FALSE(synthetic.image.empty());
  EXPECT_NE(synthetic.description.find("synthetic"), std::string::npos);
}

TEST_F(EngineVerify, OnnxRuntimeAndOpenCvAgreeOnTheSameModel) {
  const DetectorSetup detector = setup_for(model_);
  auto reference = engine_for(detector, "onnxruntime");
  auto candidate = engine_for(detector, "opencv");
  const EngineComparison comparison =
      compare_engines(detector, *reference, *candidate, synthetic_test_image(), "opencv:cpu");
  EXPECT_TRUE(comparison.agrees) << comparison.reason;
  EXPECT_EQ(comparison.verdict, "agree");
  EXPECT_EQ(comparison.running_on, "opencv:cpu");
  EXPECT_GT(comparison.reference_detections, 0);
  EXPECT_EQ(comparison.detections, comparison.reference_detections);
  EXPECT_DOUBLE_EQ(comparison.f1, 1.0);
  EXPECT_LT(comparison.max_abs_score_difference, 1e-4);
  ASSERT_EQ(comparison.outputs.size(), 1u);
  EXPECT_TRUE(comparison.outputs[0].same_size);
  EXPECT_LT(comparison.outputs[0].max_abs_difference, 1e-3);
  EXPECT_GT(comparison.outputs[0].mean_abs_reference, 1.0);  // box centres in pixels
}

TEST_F(EngineVerify, PerturbedScoresDiffer) {
  const DetectorSetup detector = setup_for(model_);
  auto reference = engine_for(detector, "onnxruntime");
  PerturbingEngine candidate(engine_for(detector, "onnxruntime"), 0.6f);
  const EngineComparison comparison =
      compare_engines(detector, *reference, candidate, synthetic_test_image(), "perturbed");
  EXPECT_FALSE(comparison.agrees);
  EXPECT_EQ(comparison.verdict, "differ");
  EXPECT_GT(comparison.outputs.at(0).max_abs_difference, 0.1);
  EXPECT_TRUE(comparison.f1 < 0.99 || comparison.mean_abs_score_difference > 0.02) << comparison.reason;
  EXPECT_FALSE(comparison.reason.empty());
}

TEST_F(EngineVerify, SmallScoreNoiseAtTheThresholdIsBorderlineNotADifference) {
  const DetectorSetup detector = setup_for(model_);
  auto reference = engine_for(detector, "onnxruntime");
  PerturbingEngine candidate(engine_for(detector, "onnxruntime"), 0.995f);
  const EngineComparison comparison =
      compare_engines(detector, *reference, candidate, synthetic_test_image(), "nearly exact");
  EXPECT_TRUE(comparison.agrees) << comparison.reason;
  EXPECT_LT(comparison.mean_abs_score_difference, 0.01);
}

TEST_F(EngineVerify, WarnLogsOneWarningStrictRefusesOffSkips) {
  const DetectorSetup detector = setup_for(model_);
  auto reference = engine_for(detector, "onnxruntime");
  PerturbingEngine candidate(engine_for(detector, "onnxruntime"), 0.5f);
  const cv::Mat frame = synthetic_test_image();
  {
    LogToString log;
    const auto comparison = enforce_engine_agreement(detector, *reference, candidate, frame, VerifyMode::warn);
    EXPECT_FALSE(comparison.agrees);
    enforce_engine_agreement(detector, *reference, candidate, frame, VerifyMode::warn);
    const std::string logged = log.text();
    const auto first = logged.find("warning: engine onnxruntime:cpu differs from onnxruntime on the first frame: F1 ");
    ASSERT_NE(first, std::string::npos) << logged;
    EXPECT_EQ(logged.find("warning:", first + 1), std::string::npos) << "warned twice:\n" << logged;
    EXPECT_NE(logged.find("use --engine onnxruntime, or engine.verify: off to silence"), std::string::npos);
  }
  try {
    enforce_engine_agreement(detector, *reference, candidate, frame, VerifyMode::strict);
    FAIL() << "strict mode must refuse a differing engine";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("differs from onnxruntime on the first frame"), std::string::npos) << message;
    EXPECT_NE(message.find("engine.verify: strict"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line";
    EXPECT_EQ(error.kind(), ErrorKind::verification) << "detflow run exits 7 on it, as inspect --verify does";
  }
  LogToString log;
  const auto skipped = enforce_engine_agreement(detector, *reference, candidate, frame, VerifyMode::off);
  EXPECT_EQ(skipped.verdict, "skipped");
  EXPECT_EQ(log.text().find("warning"), std::string::npos);
}

TEST_F(EngineVerify, AnEngineThatCannotRunIsReportedNotThrown) {
  const DetectorSetup detector = setup_for(model_);
  auto reference = engine_for(detector, "onnxruntime");
  FailingEngine candidate(engine_for(detector, "opencv"));
  const cv::Mat frame = synthetic_test_image();
  const auto comparison = compare_engines(detector, *reference, candidate, frame, "opencv:opencl");
  EXPECT_EQ(comparison.verdict, "error");
  EXPECT_FALSE(comparison.agrees);
  EXPECT_NE(comparison.error.find("kernel compilation failed"), std::string::npos);
  EXPECT_THROW(enforce_engine_agreement(detector, *reference, candidate, frame, VerifyMode::strict), Error);
}

TEST_F(EngineVerify, AgreeingEnginesPassSilentlyInStrictMode) {
  const DetectorSetup detector = setup_for(model_, "opencv");
  EXPECT_EQ(first_frame_check_skipped(detector, VerifyMode::strict), "");
  EXPECT_NE(first_frame_check_skipped(detector, VerifyMode::off), "");
  EXPECT_NE(first_frame_check_skipped(setup_for(model_), VerifyMode::warn), "") << "ONNX Runtime is the reference";
  auto reference = engine_for(detector, "onnxruntime");
  auto candidate = engine_for(detector, "opencv");
  LogToString log;
  const auto comparison =
      enforce_engine_agreement(detector, *reference, *candidate, synthetic_test_image(), VerifyMode::strict);
  EXPECT_TRUE(comparison.agrees) << comparison.reason;
  EXPECT_EQ(log.text().find("warning"), std::string::npos) << log.text();
}

TEST_F(EngineVerify, VerifyEnginesReportsEveryOtherEngine) {
  const DetectorSetup detector = setup_for(model_);
  const VerifyReport report = verify_engines(detector, verify_input_from({}));
  EXPECT_EQ(report.reference, "onnxruntime:cpu");
  EXPECT_GT(report.reference_detections, 0);
  const auto opencv = std::find_if(report.engines.begin(), report.engines.end(),
                                   [](const EngineComparison& engine) { return engine.engine == "opencv:cpu"; });
  ASSERT_NE(opencv, report.engines.end());
  EXPECT_TRUE(opencv->agrees) << opencv->reason;
  EXPECT_TRUE(report.all_agree());
  const nlohmann::json json = to_json(report);
  EXPECT_EQ(json["all_agree"], true);
  EXPECT_EQ(json["reference"], "onnxruntime:cpu");
  EXPECT_TRUE(json["engines"][0].contains("f1"));
  EXPECT_TRUE(json["engines"][0]["outputs"][0].contains("max_abs_diff"));
  const std::string text = to_text(report);
  EXPECT_NE(text.find("opencv:cpu"), std::string::npos) << text;
  EXPECT_NE(text.find("verdict: every engine agrees"), std::string::npos) << text;
}

// A source of numbered frames, for PrefetchedSource.
class CountingSource final : public Source {
 public:
  explicit CountingSource(int frames) : frames_(frames) { info_.kind = "test"; }
  const SourceInfo& info() const override { return info_; }
  bool read(Frame& frame) override {
    if (next_ >= frames_) return false;
    frame.image = cv::Mat(4, 4, CV_8UC3, cv::Scalar(next_, 0, 0));
    frame.pts_ms = 40.0 * next_;
    ++next_;
    return true;
  }
  void stop() override {}
  SourceCounters counters() const override { return {}; }

 private:
  SourceInfo info_;
  int frames_;
  int next_ = 0;
};

TEST(PrefetchedSource, HandsOutTheFrameReadAheadFirstAndLosesNone) {
  PrefetchedSource source(std::make_unique<CountingSource>(3));
  ASSERT_NE(source.first_frame(), nullptr);
  EXPECT_EQ(source.first_frame()->image.at<cv::Vec3b>(0, 0)[0], 0);
  for (int expected = 0; expected < 3; ++expected) {
    Frame frame;
    ASSERT_TRUE(source.read(frame));
    EXPECT_EQ(frame.image.at<cv::Vec3b>(0, 0)[0], expected);
    EXPECT_DOUBLE_EQ(frame.pts_ms, 40.0 * expected);
  }
  Frame end;
  EXPECT_FALSE(source.read(end));
  PrefetchedSource empty(std::make_unique<CountingSource>(0));
  EXPECT_EQ(empty.first_frame(), nullptr);
  EXPECT_FALSE(empty.read(end));
}

TEST(EngineVerifyConfig, KeyAcceptsWarnStrictOffAndNothingElse) {
  Config config;
  EXPECT_EQ(config.engine.verify, VerifyMode::warn);
  set_config_value(config, "engine.verify", "strict", "--engine.verify");
  EXPECT_EQ(config.engine.verify, VerifyMode::strict);
  merge_config_text(config, "engine:\n  verify: off\n", "config test.yaml");
  EXPECT_EQ(config.engine.verify, VerifyMode::off);
  try {
    set_config_value(config, "engine.verify", "maybe", "--engine.verify");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("warn | strict | off"), std::string::npos) << error.what();
  }
  config.engine.verify = VerifyMode::strict;
  Config loaded;
  merge_config_text(loaded, config_to_yaml(config), "printed");
  EXPECT_EQ(loaded.engine.verify, VerifyMode::strict);
}

}  // namespace
}  // namespace detflow
