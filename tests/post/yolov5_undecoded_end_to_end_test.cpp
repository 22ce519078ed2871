// The undecoded single-output YOLOv5 head end to end: a synthetic ONNX model whose one
// output [1, N, 5+C] holds sigmoid values without the grid/anchor decode goes through
// DetectorSetup (family auto-detection, preprocessing, engine, decoder, output sanity) on
// ONNX Runtime and on OpenCV DNN; the boxes, worked out by hand below, must come back in
// source pixels. Before the decoder looked at the values this model gave boxes under a
// pixel at the image corner; forcing that reading (model.head decoded) must now warn.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/config.h"
#include "detflow/pipeline/detector.h"
#include "log_capture.h"
#include "model_builder.h"
#include "shared_data.h"

namespace detflow {
namespace {

// Input 320x320, 2 classes (7 columns), strides 8/16/32: grids 40x40, 20x20, 10x10 and
// N = 3 x (1600 + 400 + 100) = 6300 rows. Levels start at rows 0, 3 x 1600 = 4800 and
// 4800 + 3 x 400 = 6000; row = first_row + anchor x cells + gy x grid_width + gx.
// Every row is (0.5, 0.5, 0.5, 0.5, obj 0, 0, 0) but two:
//
//   A: row 6000 + 2 x 100 + 4 x 10 + 6 = 6246: stride 32, anchor 2 (373x326), gx 6, gy 4,
//      values (0.5, 0.5, 0.25, 0.25, obj 0.9, c0 0.1, c1 0.9):
//      cx = (2 x 0.5 - 0.5 + 6) x 32 = 208       cy = (2 x 0.5 - 0.5 + 4) x 32 = 144
//      w  = (2 x 0.25)^2 x 373 = 93.25          h  = (2 x 0.25)^2 x 326 = 81.5
//      input box (161.375, 103.25, 254.625, 184.75), score 0.9 x 0.9 = 0.81, class 1
//   B: row 0 + 1 x 1600 + 20 x 40 + 10 = 2410: stride 8, anchor 1 (16x30), gx 10, gy 20,
//      values (0.25, 0.75, 1.0, 0.5, obj 0.8, c0 0.75, c1 0.1):
//      cx = (2 x 0.25 - 0.5 + 10) x 8 = 80       cy = (2 x 0.75 - 0.5 + 20) x 8 = 168
//      w  = (2 x 1.0)^2 x 16 = 64               h  = (2 x 0.5)^2 x 30 = 30
//      input box (48, 153, 112, 183), score 0.8 x 0.75 = 0.6, class 0
//
// Source frame 640x480, YOLOv5's centred letterbox into 320x320: r = min(320/640, 320/480)
// = 0.5, resized 320x240, pad_left = 0, pad_top = round((320 - 240) / 2 - 0.1) = 40.
// source = ((x - 0) / 0.5, (y - 40) / 0.5):
//   A: (322.75, 126.5, 509.25, 289.5)      B: (96, 226, 224, 286)
constexpr int input_side = 320;
constexpr int classes = 2;
constexpr std::size_t columns = 5 + classes;
constexpr std::size_t rows = 6300;

struct Expected {
  float x1, y1, x2, y2, score;
  int class_id;
};
const std::vector<Expected> expected{{322.75f, 126.5f, 509.25f, 289.5f, 0.81f, 1}, {96, 226, 224, 286, 0.6f, 0}};

std::filesystem::path write_undecoded_model(const std::filesystem::path& path) {
  std::vector<float> values;
  values.reserve(rows * columns);
  for (std::size_t row = 0; row < rows; ++row) values.insert(values.end(), {0.5f, 0.5f, 0.5f, 0.5f, 0, 0, 0});
  const auto set_row = [&](std::size_t row, std::initializer_list<float> row_values) {
    std::copy(row_values.begin(), row_values.end(), values.begin() + static_cast<std::ptrdiff_t>(row * columns));
  };
  set_row(6246, {0.5f, 0.5f, 0.25f, 0.25f, 0.9f, 0.1f, 0.9f});
  set_row(2410, {0.25f, 0.75f, 1.0f, 0.5f, 0.8f, 0.75f, 0.1f});
  // The output is exactly `values`: the image term and the per-column offsets are zeroed.
  test::SyntheticModelOptions options;
  options.width = input_side;
  options.height = input_side;
  options.classes = classes;
  options.channel_scales.assign(columns, 0.0f);
  options.channel_offsets.assign(columns, 0.0f);
  options.full_offset = std::move(values);
  return test::write_yolov5_model(path, options);
}

class Yolov5UndecodedEndToEnd : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "onnxruntime" && !onnxruntime_available()) GTEST_SKIP() << "ONNX Runtime is not built in";
    model_ = write_undecoded_model(test::temporary_directory("yolov5_undecoded") / "yolov5_undecoded.onnx");
  }

  EngineOptions engine_options() const {
    EngineOptions options;
    options.backend = GetParam();
    options.target = "cpu";
    options.intra_op_threads = 1;
    return options;
  }

  // Runs `frames` frames of a 640x480 image through the detector as the pipeline does.
  std::vector<Detection> detect(DetectorSetup& detector, int frames) const {
    std::unique_ptr<Engine> engine = detector.make_engine();
    Tensor input = detector.make_input_tensor();
    Preprocessor preprocessor(detector.preprocess_spec());
    const cv::Mat frame(480, 640, CV_8UC3, cv::Scalar(90, 120, 150));
    std::vector<Tensor> outputs;
    std::vector<Detection> detections;
    for (int frame_index = 0; frame_index < frames; ++frame_index) {
      const Geometry geometry = preprocessor.run(frame, input);
      engine->run(std::span(&input, 1), outputs);
      detector.postprocess(outputs, geometry, detections);
    }
    return detections;
  }

  std::filesystem::path model_;
};

TEST_P(Yolov5UndecodedEndToEnd, DetectorDecodesGridAndAnchorsIntoSourcePixels) {
  const test::LogCapture log;
  ModelSettings settings;
  settings.path = model_;
  DetectorSetup detector(settings, engine_options());
  ASSERT_EQ(detector.family().family->name, "yolov5") << detector.family().reason;
  EXPECT_EQ(detector.preprocess_spec().resize, ResizeMode::letterbox_center);

  const std::vector<Detection> detections = detect(detector, 3);
  ASSERT_EQ(detections.size(), expected.size()) << log.text();
  for (std::size_t index = 0; index < expected.size(); ++index) {
    SCOPED_TRACE("detection " + std::to_string(index));
    EXPECT_NEAR(detections[index].x1, expected[index].x1, 1e-2);
    EXPECT_NEAR(detections[index].y1, expected[index].y1, 1e-2);
    EXPECT_NEAR(detections[index].x2, expected[index].x2, 1e-2);
    EXPECT_NEAR(detections[index].y2, expected[index].y2, 1e-2);
    EXPECT_NEAR(detections[index].score, expected[index].score, 1e-4);
    EXPECT_EQ(detections[index].class_id, expected[index].class_id);
  }
  EXPECT_EQ(log.count("info: yolov5: output values of the box columns all in [0, 1] with a 320x320 input: decoding "
                      "grid and anchors (strides 8,16,32, 3 anchors per cell: 10,13 16,30 33,23; 30,61 62,45 "
                      "59,119; 116,90 156,198 373,326)"),
            1)
      << log.text();
  EXPECT_EQ(log.count("warning: yolov5:"), 0) << log.text();
  EXPECT_TRUE(detector.output_sanity().warnings().empty());
}

TEST_P(Yolov5UndecodedEndToEnd, ForcingTheDecodedReadingWarnsThatEveryBoxIsDegenerate) {
  const test::LogCapture log;
  ModelSettings settings;
  settings.path = model_;
  settings.decoder.boxes_decoded = true;  // model.head: decoded, the reading before the fix
  DetectorSetup detector(settings, engine_options());
  const std::vector<Detection> detections = detect(detector, 2);
  // Box columns read as pixels: A is (0.375, 0.375, 0.625, 0.625) in input pixels, above the
  // letterbox's top padding, so clipped to a zero-height box at the frame's top-left corner.
  ASSERT_EQ(detections.size(), 2u);
  for (const Detection& detection : detections) EXPECT_LE(detection.x2 - detection.x1, 2.0f);
  EXPECT_EQ(log.count("warning: yolov5: all 4 detections of the first 2 frames are at most 2 input pixels wide or "
                      "high"),
            1)
      << log.text();
  EXPECT_EQ(detector.output_sanity().warnings().size(), 1u);
}

std::string config_error(Config& config, const std::string& key, const std::string& value) {
  try {
    set_config_value(config, key, value, "--test");
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

// The keys that reach the decoder: model.head, model.anchors, model.strides.
TEST(Yolov5HeadKeys, ReachTheDecoderConfigAndRefuseBadValuesInOneLine) {
  Config config;
  set_config_value(config, "model.head", "raw", "--test");
  set_config_value(config, "model.anchors", "10,13, 16,30, 33,23, 30,61, 62,45, 59,119", "--test");
  set_config_value(config, "model.strides", "8,16,32", "--test");
  const ModelSettings settings = to_model_settings(config);
  EXPECT_EQ(settings.decoder.boxes_decoded, false);
  EXPECT_EQ(settings.decoder.anchors, (std::vector<float>{10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119}));
  EXPECT_EQ(settings.decoder.strides, (std::vector<int>{8, 16, 32}));
  set_config_value(config, "model.head", "auto", "--test");
  EXPECT_FALSE(to_model_settings(config).decoder.boxes_decoded.has_value());

  EXPECT_EQ(config_error(config, "model.anchors", "10,13,16")
                .rfind("--test: model.anchors = '10,13,16': 3 numbers, not w,h pairs (an even count); accepted: ", 0),
            0u);
  EXPECT_NE(config_error(config, "model.anchors", "10,x").find("item 'x' is not a number"), std::string::npos);
  EXPECT_NE(config_error(config, "model.anchors", "10,-13").find("item '-13' is out of range"), std::string::npos);
  EXPECT_NE(config_error(config, "model.strides", "16,8").find("not increasing"), std::string::npos);
  EXPECT_NE(config_error(config, "model.head", "pixels").find("accepted: auto | decoded | raw"), std::string::npos);
  // A refused value changes nothing.
  EXPECT_EQ(to_model_settings(config).decoder.anchors.size(), 12u);

  // 4 pairs among 3 strides: refused before the run, naming both keys.
  set_config_value(config, "model.anchors", "10,13, 16,30, 33,23, 30,61", "--test");
  set_config_value(config, "model.path", "m.onnx", "--test");
  set_config_value(config, "source.uri", "in.mp4", "--test");
  try {
    validate_for_run(config);
    ADD_FAILURE() << "4 anchor pairs among 3 strides accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what())
                  .find("model.anchors has 4 w,h pairs, which do not divide among the 3 "
                        "model.strides; accepted: a multiple of 3 pairs"),
              std::string::npos)
        << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(BothEngines, Yolov5UndecodedEndToEnd, ::testing::Values("onnxruntime", "opencv"),
                         [](const ::testing::TestParamInfo<std::string>& engine) { return engine.param; });

}  // namespace
}  // namespace detflow
