// Every decoder on hand-built tensors whose boxes were worked out by hand, including the
// geometry inversion to source pixels, clipping, thresholds, class filters and f16 input.
#include <cmath>
#include <thread>

#include <gtest/gtest.h>

#include "detflow/error.h"
#include "detflow/post/decoders/nanodet.h"
#include "detflow/post/decoders/ssd.h"
#include "detflow/post/decoders/yolov10.h"
#include "detflow/post/decoders/yolov5.h"
#include "detflow/post/decoders/yolov8.h"
#include "detflow/post/decoders/yolox.h"
#include "log_capture.h"

namespace detflow {
namespace {

TensorInfo output_info(std::vector<std::int64_t> shape, ElementType type = ElementType::float32) {
  TensorInfo info;
  info.name = "output";
  info.type = type;
  info.type_name = std::string(element_type_name(type));
  for (const std::int64_t dim : shape) info.shape.push_back(Dim{dim, ""});
  info.has_shape = true;
  return info;
}

Tensor make_tensor(std::vector<std::int64_t> shape, const std::vector<float>& values,
                   ElementType type = ElementType::float32) {
  Tensor tensor(type, std::move(shape));
  EXPECT_EQ(values.size(), tensor.element_count());
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (type == ElementType::float16) {
      tensor.data<std::uint16_t>()[i] = float_to_half(values[i]);
    } else {
      tensor.data<float>()[i] = values[i];
    }
  }
  return tensor;
}

DecoderContext context_for(std::vector<TensorInfo> outputs, int input_width, int input_height) {
  DecoderContext context;
  context.outputs = std::move(outputs);
  context.input_width = input_width;
  context.input_height = input_height;
  return context;
}

Geometry geometry_for(ResizeMode mode, int input_width, int input_height, int source_width, int source_height) {
  PreprocessSpec spec;
  spec.width = input_width;
  spec.height = input_height;
  spec.resize = mode;
  return compute_geometry(spec, source_width, source_height);
}

struct ExpectedBox {
  float x1, y1, x2, y2, score;
  int class_id;
};

void expect_detections(const std::vector<Detection>& actual, const std::vector<ExpectedBox>& expected,
                       float score_tolerance = 1e-5f, float box_tolerance = 1e-3f) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE("detection " + std::to_string(i));
    EXPECT_NEAR(actual[i].x1, expected[i].x1, box_tolerance);
    EXPECT_NEAR(actual[i].y1, expected[i].y1, box_tolerance);
    EXPECT_NEAR(actual[i].x2, expected[i].x2, box_tolerance);
    EXPECT_NEAR(actual[i].y2, expected[i].y2, box_tolerance);
    EXPECT_NEAR(actual[i].score, expected[i].score, score_tolerance);
    EXPECT_EQ(actual[i].class_id, expected[i].class_id);
    EXPECT_TRUE(actual[i].label.empty());
  }
}

// The statement throws detflow::Error whose one-line message contains `part`.
#define EXPECT_THAT_ERROR(statement, part)                              \
  do {                                                                  \
    try {                                                               \
      statement;                                                        \
      ADD_FAILURE() << "no error; expected one containing: " << (part); \
    } catch (const Error& error) {                                      \
      const std::string message = error.what();                         \
      EXPECT_NE(message.find(part), std::string::npos) << message;      \
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;      \
    }                                                                   \
  } while (false)

PostprocessOptions options_with(float score, float iou) {
  PostprocessOptions options;
  options.score_threshold = score;
  options.iou_threshold = iou;
  return options;
}

// ---- yolov8 ----

// 84 anchors (the grid of a 64x64 input), 2 classes; rows per anchor: cx cy w h c0 c1.
std::vector<std::vector<float>> yolov8_anchor_rows() {
  std::vector<std::vector<float>> rows(84, std::vector<float>{0, 0, 0, 0, 0.01f, 0.02f});
  rows[10] = {100, 80, 40, 20, 0.10f, 0.90f};  // kept
  rows[20] = {102, 80, 40, 20, 0.05f, 0.80f};  // IoU 0.905 with anchor 10: suppressed
  rows[30] = {20, 60, 20, 20, 0.60f, 0.30f};   // kept, class 0
  rows[40] = {60, 60, 20, 20, 0.20f, 0.10f};   // below the threshold
  rows[50] = {150, 50, 40, 20, 0.00f, 0.50f};  // kept, clipped at the frame's right edge
  return rows;
}

// Letterbox 320x160 -> 160x160: r = 0.5, top padding 40.
// anchor 10: input (80, 70, 120, 90) -> source (160, 60, 240, 100)
// anchor 30: input (10, 50, 30, 70)  -> source (20, 20, 60, 60)
// anchor 50: input (130, 40, 170, 60) -> source (260, 0, 340, 40) -> clipped x2 = 320
const std::vector<ExpectedBox> yolov8_expected{
    {160, 60, 240, 100, 0.9f, 1}, {20, 20, 60, 60, 0.6f, 0}, {260, 0, 320, 40, 0.5f, 1}};

Tensor yolov8_tensor(bool channel_major, ElementType type) {
  const auto rows = yolov8_anchor_rows();
  std::vector<float> values;
  if (channel_major) {
    for (std::size_t column = 0; column < 6; ++column) {
      for (const auto& row : rows) values.push_back(row[column]);
    }
    return make_tensor({1, 6, 84}, values, type);
  }
  for (const auto& row : rows) values.insert(values.end(), row.begin(), row.end());
  return make_tensor({1, 84, 6}, values, type);
}

class Yolov8Layouts : public ::testing::TestWithParam<std::tuple<bool, ElementType>> {};

TEST_P(Yolov8Layouts, DecodesKnownBoxes) {
  const auto [channel_major, type] = GetParam();
  const std::vector<std::int64_t> shape =
      channel_major ? std::vector<std::int64_t>{1, 6, 84} : std::vector<std::int64_t>{1, 84, 6};
  const Yolov8Decoder decoder(context_for({output_info(shape, type)}, 160, 160));
  EXPECT_EQ(decoder.num_classes(), 2);
  const Tensor tensor = yolov8_tensor(channel_major, type);
  std::vector<Detection> detections{Detection{}};  // cleared by decode
  decoder.decode(std::span(&tensor, 1), geometry_for(ResizeMode::letterbox_center, 160, 160, 320, 160),
                 options_with(0.25f, 0.7f), detections);
  expect_detections(detections, yolov8_expected, type == ElementType::float16 ? 1e-3f : 1e-6f);
}

INSTANTIATE_TEST_SUITE_P(LayoutsAndTypes, Yolov8Layouts,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(ElementType::float32, ElementType::float16)));

TEST(Yolov8Decoder, PerClassThresholdsAndClassFilterApplyBeforeNms) {
  const Yolov8Decoder decoder(context_for({output_info({1, 6, 84})}, 160, 160));
  const Tensor tensor = yolov8_tensor(true, ElementType::float32);
  const Geometry geometry = geometry_for(ResizeMode::letterbox_center, 160, 160, 320, 160);
  std::vector<Detection> detections;

  PostprocessOptions strict_class_one = options_with(0.25f, 0.7f);
  strict_class_one.class_score_thresholds = {-1.0f, 0.95f};
  decoder.decode(std::span(&tensor, 1), geometry, strict_class_one, detections);
  expect_detections(detections, {yolov8_expected[1]});

  PostprocessOptions lenient_class_zero = options_with(0.95f, 0.7f);
  lenient_class_zero.class_score_thresholds = {0.15f};  // anchor 40 (0.20, class 0) now passes
  decoder.decode(std::span(&tensor, 1), geometry, lenient_class_zero, detections);
  expect_detections(detections, {yolov8_expected[1], {100, 20, 140, 60, 0.2f, 0}});

  PostprocessOptions only_class_one = options_with(0.25f, 0.7f);
  only_class_one.class_filter = {1};
  decoder.decode(std::span(&tensor, 1), geometry, only_class_one, detections);
  expect_detections(detections, {yolov8_expected[0], yolov8_expected[2]});

  // Without NMS the suppressed anchor 20 comes back: input (82, 70, 122, 90).
  PostprocessOptions no_nms = options_with(0.25f, 0.7f);
  no_nms.nms = false;
  decoder.decode(std::span(&tensor, 1), geometry, no_nms, detections);
  expect_detections(detections,
                    {yolov8_expected[0], {164, 60, 244, 100, 0.8f, 1}, yolov8_expected[1], yolov8_expected[2]});
}

TEST(Yolov8Decoder, WrongTensorsAreCountedAsFrameFailures) {
  const Yolov8Decoder decoder(context_for({output_info({1, 6, 84})}, 160, 160));
  const Geometry geometry = geometry_for(ResizeMode::stretch, 160, 160, 160, 160);
  std::vector<Detection> detections;
  const Tensor wrong_size = make_tensor({1, 6, 10}, std::vector<float>(60, 0.0f));
  EXPECT_THROW(decoder.decode(std::span(&wrong_size, 1), geometry, {}, detections), std::runtime_error);
  Tensor wrong_type(ElementType::int32, {1, 6, 84});
  EXPECT_THROW(decoder.decode(std::span(&wrong_type, 1), geometry, {}, detections), std::runtime_error);
  EXPECT_THROW(decoder.decode({}, geometry, {}, detections), std::runtime_error);
}

TEST(Yolov8Decoder, RejectsLayoutsItCannotDecode) {
  EXPECT_THROW(Yolov8Decoder(context_for({output_info({1, 3, 84})}, 160, 160)), Error);  // 4+C needs C >= 1
  EXPECT_THROW(Yolov8Decoder(context_for({output_info({1, 6, 84}, ElementType::int64)}, 160, 160)), Error);
  EXPECT_THROW(Yolov8Decoder(context_for({}, 160, 160)), Error);
  DecoderContext wrong_classes = context_for({output_info({1, 6, 84})}, 160, 160);
  wrong_classes.config.num_classes = 80;
  EXPECT_THROW(Yolov8Decoder{wrong_classes}, Error);
}

// ---- yolov5 ----

TEST(Yolov5Decoder, DecodedRowsUseObjectnessTimesBestClass) {
  // 6 rows, 2 classes: cx cy w h obj c0 c1.
  std::vector<float> values{50, 50, 20, 10, 0.8f, 0.1f,  0.9f,  // score 0.72, class 1
                            10, 20, 4,  4,  0.2f, 1.0f,  1.0f,  // objectness below the threshold
                            30, 30, 10, 10, 0.9f, 0.25f, 0.2f,  // 0.225: below
                            80, 40, 10, 20, 0.5f, 0.6f,  0.1f,  // score 0.3, class 0
                            0,  0,  0,  0,  0.0f, 0.0f,  0.0f, 0, 0, 0, 0, 0.0f, 0.0f, 0.0f};
  const Tensor tensor = make_tensor({1, 6, 7}, values, ElementType::float16);
  const Yolov5Decoder decoder(context_for({output_info({1, 6, 7}, ElementType::float16)}, 100, 100));
  EXPECT_EQ(decoder.num_classes(), 2);
  std::vector<Detection> detections;
  // Stretch 200x100 -> 100x100: x / 0.5, y / 1.
  decoder.decode(std::span(&tensor, 1), geometry_for(ResizeMode::stretch, 100, 100, 200, 100),
                 options_with(0.25f, 0.45f), detections);
  expect_detections(detections, {{80, 45, 120, 55, 0.72f, 1}, {150, 30, 170, 50, 0.3f, 0}}, 2e-3f);
}

// Raw heads for a 64x64 input, 1 class (6 channels), every logit -10 except one box in the
// stride-16 head, anchor 1 (62x45), cell gx = 1, gy = 2: tx = ty = tw = th = 0, tobj = 2,
// tcls = 3. xy = (2 * 0.5 - 0.5 + (1, 2)) * 16 = (24, 40); wh = (2 * 0.5)^2 * (62, 45).
// score = sigmoid(2) * sigmoid(3). Input box (-7, 17.5, 55, 62.5), x1 clipped to 0.
std::vector<float> raw_head_values(int grid, bool channels_last, bool with_box) {
  const std::size_t cells = static_cast<std::size_t>(grid * grid);
  std::vector<float> values(3 * cells * 6, -10.0f);
  if (with_box) {
    const std::size_t anchor = 1;
    const std::size_t cell = 2 * static_cast<std::size_t>(grid) + 1;
    const float channels[6] = {0, 0, 0, 0, 2, 3};
    for (std::size_t channel = 0; channel < 6; ++channel) {
      const std::size_t index =
          channels_last ? (anchor * cells + cell) * 6 + channel : (anchor * 6 + channel) * cells + cell;
      values[index] = channels[channel];
    }
  }
  return values;
}

class Yolov5RawHeads : public ::testing::TestWithParam<bool> {};

TEST_P(Yolov5RawHeads, DecodesGridAndAnchors) {
  const bool channels_last = GetParam();
  const auto shape = [&](std::int64_t grid) {
    return channels_last ? std::vector<std::int64_t>{1, 3, grid, grid, 6}
                         : std::vector<std::int64_t>{1, 18, grid, grid};
  };
  // Outputs in an unusual order (stride 32 first): heads are matched to strides by size.
  const Yolov5Decoder decoder(
      context_for({output_info(shape(2)), output_info(shape(8)), output_info(shape(4))}, 64, 64));
  EXPECT_EQ(decoder.num_classes(), 1);
  const std::vector<Tensor> outputs{make_tensor(shape(2), raw_head_values(2, channels_last, false)),
                                    make_tensor(shape(8), raw_head_values(8, channels_last, false)),
                                    make_tensor(shape(4), raw_head_values(4, channels_last, true))};
  std::vector<Detection> detections;
  decoder.decode(outputs, geometry_for(ResizeMode::stretch, 64, 64, 64, 64), options_with(0.25f, 0.45f), detections);
  const float score = 1.0f / (1.0f + std::exp(-2.0f)) / (1.0f + std::exp(-3.0f));
  expect_detections(detections, {{0, 17.5f, 55, 62.5f, score, 0}});
}

INSTANTIATE_TEST_SUITE_P(BothLayouts, Yolov5RawHeads, ::testing::Bool());

TEST(Yolov5Decoder, RejectsBadAnchorConfiguration) {
  DecoderContext context =
      context_for({output_info({1, 3, 8, 8, 6}), output_info({1, 3, 4, 4, 6}), output_info({1, 3, 2, 2, 6})}, 64, 64);
  context.config.anchors = {10, 13, 16, 30};
  EXPECT_THAT_ERROR(Yolov5Decoder{context}, "model.anchors [10, 13, 16, 30] has 4 numbers for 3 raw heads");
  context.config.anchors = {10, 13, 16};
  EXPECT_THAT_ERROR(Yolov5Decoder{context}, "model.anchors [10, 13, 16] has 3 numbers: expected w,h pairs");
  context.config.anchors = std::vector<float>(18, 10.0f);
  context.config.anchors[5] = -1.0f;
  EXPECT_THAT_ERROR(Yolov5Decoder{context}, "holds -1: expected positive sizes");
  context.config.anchors.clear();
  context.config.boxes_decoded = true;
  EXPECT_THAT_ERROR(Yolov5Decoder{context}, "model.head decoded does not fit three raw head outputs");
}

// ---- yolov5, one output with sigmoid but without the grid/anchor decode ----
//
// 64x64 input, strides 8/16/32: grids 8x8, 4x4, 2x2; 3 anchors per cell, so
// N = 3 x (64 + 16 + 4) = 252 rows of [sx sy sw sh obj c0] (1 class), ordered level by
// level, then anchor, then cell row-major: row = first_row(level) + anchor x cells + gy x W + gx
// with first_row = 0 (stride 8), 3 x 64 = 192 (stride 16), 192 + 3 x 16 = 240 (stride 32).
// Every row is (0.5, 0.5, 0.5, 0.5, obj 0, class 0) but two:
//
//   row 217 = 192 + 1 x 16 + 2 x 4 + 1: stride 16, anchor 1 (62x45), cell gx 1, gy 2,
//     values (0.75, 0.5, 0.5, 0.5, 0.9, 0.8):
//     cx = (2 x 0.75 - 0.5 + 1) x 16 = 32      cy = (2 x 0.5 - 0.5 + 2) x 16 = 40
//     w  = (2 x 0.5)^2 x 62 = 62               h  = (2 x 0.5)^2 x 45 = 45
//     input box (1, 17.5, 63, 62.5), score 0.9 x 0.8 = 0.72
//   row 29 = 0 + 0 x 64 + 3 x 8 + 5: stride 8, anchor 0 (10x13), cell gx 5, gy 3,
//     values (0.5, 0.25, 0.75, 0.5, 0.6, 0.5):
//     cx = (1 - 0.5 + 5) x 8 = 44              cy = (0.5 - 0.5 + 3) x 8 = 24
//     w  = (1.5)^2 x 10 = 22.5                 h  = 1^2 x 13 = 13
//     input box (32.75, 17.5, 55.25, 30.5), score 0.6 x 0.5 = 0.3
// Stretched from a 128x64 source: source x = input x / 0.5, y unchanged.
constexpr std::size_t undecoded_rows = 252;
std::vector<float> undecoded_head_values() {
  std::vector<float> values;
  for (std::size_t row = 0; row < undecoded_rows; ++row) values.insert(values.end(), {0.5f, 0.5f, 0.5f, 0.5f, 0, 0});
  const auto set_row = [&](std::size_t row, std::initializer_list<float> columns) {
    std::copy(columns.begin(), columns.end(), values.begin() + static_cast<std::ptrdiff_t>(row * 6));
  };
  set_row(217, {0.75f, 0.5f, 0.5f, 0.5f, 0.9f, 0.8f});
  set_row(29, {0.5f, 0.25f, 0.75f, 0.5f, 0.6f, 0.5f});
  return values;
}
const std::vector<ExpectedBox> undecoded_expected{{2, 17.5f, 126, 62.5f, 0.72f, 0},
                                                  {65.5f, 17.5f, 110.5f, 30.5f, 0.3f, 0}};

class Yolov5UndecodedHead : public ::testing::TestWithParam<ElementType> {};

TEST_P(Yolov5UndecodedHead, ValuesInTheUnitRangeAreDecodedWithGridAndAnchors) {
  const ElementType type = GetParam();
  const test::LogCapture log;
  const Yolov5Decoder decoder(context_for({output_info({1, undecoded_rows, 6}, type)}, 64, 64));
  EXPECT_FALSE(decoder.boxes_decoded().has_value()) << "decided before the first frame";
  const Tensor tensor = make_tensor({1, undecoded_rows, 6}, undecoded_head_values(), type);
  std::vector<Detection> detections;
  const Geometry geometry = geometry_for(ResizeMode::stretch, 64, 64, 128, 64);
  decoder.decode(std::span(&tensor, 1), geometry, options_with(0.25f, 0.45f), detections);
  expect_detections(detections, undecoded_expected, type == ElementType::float16 ? 2e-3f : 1e-5f,
                    type == ElementType::float16 ? 0.1f : 1e-3f);
  EXPECT_EQ(decoder.boxes_decoded(), false);
  EXPECT_EQ(log.count("yolov5: output values of the box columns all in [0, 1] with a 64x64 input: decoding grid and "
                      "anchors (strides 8,16,32, 3 anchors per cell: 10,13 16,30 33,23; 30,61 62,45 59,119; 116,90 "
                      "156,198 373,326)"),
            1)
      << log.text();
  // Decided once: later frames neither look again nor log again.
  decoder.decode(std::span(&tensor, 1), geometry, options_with(0.25f, 0.45f), detections);
  EXPECT_EQ(detections.size(), 2u);
  EXPECT_EQ(log.count("yolov5:"), 1) << log.text();
}

INSTANTIATE_TEST_SUITE_P(FloatAndHalf, Yolov5UndecodedHead,
                         ::testing::Values(ElementType::float32, ElementType::float16));

TEST(Yolov5Decoder, PixelValuesOnTheSameLayoutAreReadAsDecodedBoxes) {
  const test::LogCapture log;
  // The same 252 x 6 output with one decoded box in input pixels at row 7.
  std::vector<float> values = undecoded_head_values();
  for (std::size_t row : {217u, 29u}) values[row * 6 + 4] = 0;
  const float box[6] = {40, 30, 20, 10, 0.9f, 0.5f};  // (30, 25, 50, 35), score 0.45
  std::copy(box, box + 6, values.begin() + 7 * 6);
  const Yolov5Decoder decoder(context_for({output_info({1, undecoded_rows, 6})}, 64, 64));
  const Tensor tensor = make_tensor({1, undecoded_rows, 6}, values);
  std::vector<Detection> detections;
  decoder.decode(std::span(&tensor, 1), geometry_for(ResizeMode::stretch, 64, 64, 64, 64), options_with(0.25f, 0.45f),
                 detections);
  expect_detections(detections, {{30, 25, 50, 35, 0.45f, 0}});
  EXPECT_EQ(decoder.boxes_decoded(), true);
  EXPECT_EQ(log.count("yolov5: output box value 40 (row 7) with a 64x64 input: boxes already decoded"), 1)
      << log.text();
}

TEST(Yolov5Decoder, ConfigurationForcesTheHeadEitherWay) {
  const Tensor tensor = make_tensor({1, undecoded_rows, 6}, undecoded_head_values());
  const Geometry geometry = geometry_for(ResizeMode::stretch, 64, 64, 128, 64);
  std::vector<Detection> detections;

  DecoderContext raw = context_for({output_info({1, undecoded_rows, 6})}, 64, 64);
  raw.config.boxes_decoded = false;
  const Yolov5Decoder raw_decoder(raw);
  EXPECT_EQ(raw_decoder.boxes_decoded(), false) << "forced: no first-frame look";
  raw_decoder.decode(std::span(&tensor, 1), geometry, options_with(0.25f, 0.45f), detections);
  expect_detections(detections, undecoded_expected);

  // Forced decoded: the old reading, boxes of a pixel or less near the origin.
  // Row 217: cx 0.75, cy 0.5, w 0.5, h 0.5 -> input (0.5, 0.25, 1, 0.75) -> source x doubled.
  DecoderContext decoded = raw;
  decoded.config.boxes_decoded = true;
  const Yolov5Decoder decoded_decoder(decoded);
  EXPECT_EQ(decoded_decoder.boxes_decoded(), true);
  decoded_decoder.decode(std::span(&tensor, 1), geometry, options_with(0.5f, 0.45f), detections);
  expect_detections(detections, {{1, 0.25f, 2, 0.75f, 0.72f, 0}});

  // Forcing the grid decode where the rows fit no grid is refused, naming why.
  DecoderContext misfit = context_for({output_info({1, 250, 6})}, 64, 64);
  misfit.config.boxes_decoded = false;
  EXPECT_THAT_ERROR(Yolov5Decoder{misfit}, "model.head raw needs the grid of output [1, 250, 6], but 250 rows");
  // Automatic mode on rows that fit no grid: decoded, without looking at values.
  misfit.config.boxes_decoded.reset();
  EXPECT_EQ(Yolov5Decoder{misfit}.boxes_decoded(), true);
  // An input too small to tell pixels from [0, 1] values: decoded unless configured.
  EXPECT_EQ(Yolov5Decoder(context_for({output_info({1, 63, 6})}, 32, 32)).boxes_decoded(), true);
}

// model.anchors: 2 anchors per cell (the rows say 2 x 84 = 168), split among 3 strides.
// Row 1 x 64 + 3 x 8 + 5 = 93: stride 8, anchor 1 (20x40), cell gx 5, gy 3, values
// (0.5, 0.5, 0.5, 0.5, 0.8, 1): cx = (1 - 0.5 + 5) x 8 = 44, cy = (0.5 + 3) x 8 = 28,
// w = 1 x 20, h = 1 x 40 -> input (34, 8, 54, 48), score 0.8.
TEST(Yolov5Decoder, ConfiguredAnchorsSetTheAnchorsPerCell) {
  DecoderContext context = context_for({output_info({1, 168, 6})}, 64, 64);
  context.config.anchors = {10, 10, 20, 40, 30, 30, 40, 40, 50, 50, 60, 60};
  context.config.boxes_decoded = false;
  const Yolov5Decoder decoder(context);
  std::vector<float> values;
  for (std::size_t row = 0; row < 168; ++row) values.insert(values.end(), {0.5f, 0.5f, 0.5f, 0.5f, 0, 0});
  values[93 * 6 + 4] = 0.8f;
  values[93 * 6 + 5] = 1.0f;
  const Tensor tensor = make_tensor({1, 168, 6}, values);
  std::vector<Detection> detections;
  decoder.decode(std::span(&tensor, 1), geometry_for(ResizeMode::stretch, 64, 64, 64, 64), options_with(0.25f, 0.45f),
                 detections);
  expect_detections(detections, {{34, 8, 54, 48, 0.8f, 0}});

  ASSERT_TRUE(Yolov5Decoder::match(context).has_value());
  EXPECT_NE(Yolov5Decoder::match(context)->find("168 rows = 2 anchors x 84 grid cells"), std::string::npos)
      << *Yolov5Decoder::match(context);

  // 4 pairs do not divide among 3 strides; 5 numbers are not pairs.
  context.config.anchors = {10, 10, 20, 20, 30, 30, 40, 40};
  EXPECT_THAT_ERROR(Yolov5Decoder{context}, "give 4 w,h pairs: expected 6 (2 per stride)");
  context.config.anchors = {10, 10, 20, 20, 30};
  EXPECT_THAT_ERROR(Yolov5Decoder{context}, "model.anchors [10, 10, 20, 20, 30] has 5 numbers");
  context.config.boxes_decoded.reset();
  context.config.anchors = {10, 10, 20, 20, 30, 30, 40, 40};
  EXPECT_THAT_ERROR(Yolov5Decoder{context}, "model.anchors do not fit output [1, 168, 6]");
}

TEST(Yolov5Decoder, ConcurrentFirstFramesDecideOnceAndAgree) {
  const test::LogCapture log;
  const Yolov5Decoder decoder(context_for({output_info({1, undecoded_rows, 6})}, 64, 64));
  const Tensor tensor = make_tensor({1, undecoded_rows, 6}, undecoded_head_values());
  const Geometry geometry = geometry_for(ResizeMode::stretch, 64, 64, 128, 64);
  std::vector<std::vector<Detection>> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] { decoder.decode(std::span(&tensor, 1), geometry, options_with(0.25f, 0.45f), result); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) expect_detections(result, undecoded_expected);
  EXPECT_EQ(log.count("yolov5:"), 1) << log.text();
}

// ---- yolov10 ----

TEST(Yolov10Decoder, RowsAsGivenWithoutNms) {
  std::vector<float> values(300 * 6, 0.0f);
  const float rows[3][6] = {{10, 20, 30, 40, 0.9f, 3}, {10, 20, 30, 40, 0.85f, 3}, {50, 50, 60, 60, 0.1f, 1}};
  for (std::size_t row = 0; row < 3; ++row) std::copy(rows[row], rows[row] + 6, values.begin() + row * 6);
  const Tensor tensor = make_tensor({1, 300, 6}, values);
  const Yolov10Decoder decoder(context_for({output_info({1, 300, 6})}, 160, 160));
  PostprocessOptions options = options_with(0.25f, 0.7f);
  options.nms = false;
  std::vector<Detection> detections;
  // Top-left letterbox 320x240 -> 160x160: r = 0.5, no leading padding.
  const Geometry geometry = geometry_for(ResizeMode::letterbox_top_left, 160, 160, 320, 240);
  decoder.decode(std::span(&tensor, 1), geometry, options, detections);
  expect_detections(detections, {{20, 40, 60, 80, 0.9f, 3}, {20, 40, 60, 80, 0.85f, 3}});
  options.nms = true;  // on request
  decoder.decode(std::span(&tensor, 1), geometry, options, detections);
  expect_detections(detections, {{20, 40, 60, 80, 0.9f, 3}});
}

// ---- yolox ----

// 64x64 input: 64 + 16 + 4 = 84 cells, 2 classes (7 columns).
std::vector<float> yolox_rows(bool decoded) {
  std::vector<float> values(84 * 7, 0.0f);
  float* stride16 = values.data() + (64 + 2 * 4 + 1) * 7;  // stride 16, gx = 1, gy = 2
  float* stride8 = values.data() + 3 * 7;                  // stride 8, gx = 3, gy = 0
  if (decoded) {
    const float box16[7] = {24, 36, 32, 16, 0.9f, 0.2f, 0.8f};
    const float box8[7] = {24, 0, 8, 8, 0.5f, 0.9f, 0.1f};
    std::copy(box16, box16 + 7, stride16);
    std::copy(box8, box8 + 7, stride8);
  } else {
    // cx = (0.5 + 1) * 16 = 24, cy = (0.25 + 2) * 16 = 36, w = exp(ln 2) * 16 = 32, h = 16.
    const float box16[7] = {0.5f, 0.25f, std::log(2.0f), 0, 0.9f, 0.2f, 0.8f};
    // cx = (0 + 3) * 8 = 24, cy = 0, w = h = 8.
    const float box8[7] = {0, 0, 0, 0, 0.5f, 0.9f, 0.1f};
    std::copy(box16, box16 + 7, stride16);
    std::copy(box8, box8 + 7, stride8);
  }
  return values;
}

class YoloxBoxes : public ::testing::TestWithParam<bool> {};

TEST_P(YoloxBoxes, DecodesRawOffsetsOrDecodedBoxes) {
  const bool decoded = GetParam();
  DecoderContext context = context_for({output_info({1, 84, 7})}, 64, 64);
  if (decoded) context.config.boxes_decoded = true;
  const YoloxDecoder decoder(context);
  EXPECT_EQ(decoder.boxes_decoded(), decoded);
  const Tensor tensor = make_tensor({1, 84, 7}, yolox_rows(decoded));
  std::vector<Detection> detections;
  // Top-left letterbox 128x96 -> 64x64: r = 0.5. Input (8, 28, 40, 44) -> (16, 56, 80, 88);
  // input (20, -4, 28, 4) -> (40, -8, 56, 8), clipped to y1 = 0.
  decoder.decode(std::span(&tensor, 1), geometry_for(ResizeMode::letterbox_top_left, 64, 64, 128, 96),
                 options_with(0.25f, 0.45f), detections);
  expect_detections(detections, {{16, 56, 80, 88, 0.72f, 1}, {40, 0, 56, 8, 0.45f, 0}});
}

INSTANTIATE_TEST_SUITE_P(RawAndDecoded, YoloxBoxes, ::testing::Bool());

TEST(YoloxDecoder, InfersDecodedBoxesWhenRowsAreNotTheGrid) {
  EXPECT_FALSE(YoloxDecoder(context_for({output_info({1, 84, 7})}, 64, 64)).boxes_decoded());
  EXPECT_TRUE(YoloxDecoder(context_for({output_info({1, 100, 7})}, 64, 64)).boxes_decoded());
  DecoderContext raw_but_wrong = context_for({output_info({1, 100, 7})}, 64, 64);
  raw_but_wrong.config.boxes_decoded = false;
  EXPECT_THROW(YoloxDecoder{raw_but_wrong}, Error);
}

// ---- nanodet ----

// One cell's distribution row: a side whose logits peak at `bin` (20 vs 0) has expectation
// ~bin; a side of all zeros has expectation 3.5 (uniform over 0..7).
std::vector<float> distribution(std::array<int, 4> peaks) {
  std::vector<float> row(32, 0.0f);
  for (std::size_t side = 0; side < 4; ++side) {
    if (peaks[side] >= 0) row[side * 8 + static_cast<std::size_t>(peaks[side])] = 20.0f;
  }
  return row;
}

TEST(NanodetDecoder, SeparateHeadsMatchedByShapeNotName) {
  // 32x32 input: 16, 4 and 1 cells for strides 8, 16, 32; 2 classes; reg_max 7.
  // Output order and names as scrambled as in the real export: boxes of stride 16 first.
  std::vector<TensorInfo> infos{output_info({4, 32}), output_info({16, 2}),  output_info({4, 2}),
                                output_info({1, 2}),  output_info({16, 32}), output_info({1, 32})};
  const NanodetDecoder decoder(context_for(infos, 32, 32));
  EXPECT_EQ(decoder.num_classes(), 2);
  EXPECT_EQ(decoder.reg_max(), 7);

  std::vector<float> classes8(16 * 2, 0.01f), classes16(4 * 2, 0.01f), classes32(1 * 2, 0.01f);
  std::vector<float> boxes8(16 * 32, 0.0f), boxes16(4 * 32, 0.0f), boxes32(1 * 32, 0.0f);
  // Stride 8, cell 6 (gx 2, gy 1): centre ((2.5) * 8, 1.5 * 8) = (20, 12); distances
  // left 2*8, top 1*8, right 3*8, bottom 0 -> (4, 4, 44, 12), x2 clamped to 32.
  classes8[6 * 2 + 1] = 0.7f;
  const auto peaked = distribution({2, 1, 3, 0});
  std::copy(peaked.begin(), peaked.end(), boxes8.begin() + 6 * 32);
  // Stride 16, cell 3 (gx 1, gy 1): centre (24, 24), uniform: 3.5 * 16 = 56 each side ->
  // (-32, -32, 80, 80) clamped to the input (0, 0, 32, 32).
  classes16[3 * 2 + 0] = 0.5f;
  const auto uniform = distribution({-1, -1, -1, -1});
  std::copy(uniform.begin(), uniform.end(), boxes16.begin() + 3 * 32);
  const std::vector<Tensor> outputs{make_tensor({4, 32}, boxes16),  make_tensor({16, 2}, classes8),
                                    make_tensor({4, 2}, classes16), make_tensor({1, 2}, classes32),
                                    make_tensor({16, 32}, boxes8),  make_tensor({1, 32}, boxes32)};
  std::vector<Detection> detections;
  // Stretch 64x64 -> 32x32: x2.
  decoder.decode(outputs, geometry_for(ResizeMode::stretch, 32, 32, 64, 64), options_with(0.35f, 0.6f), detections);
  expect_detections(detections, {{8, 8, 64, 24, 0.7f, 1}, {0, 0, 64, 64, 0.5f, 0}});
}

TEST(NanodetDecoder, PlusSingleOutputUsesCellOrigins) {
  // 32x32 input, strides 8/16/32/64: 16 + 4 + 1 + 1 = 22 rows of 2 classes + 32 bins.
  const NanodetDecoder decoder(context_for({output_info({1, 22, 34})}, 32, 32));
  EXPECT_EQ(decoder.num_classes(), 2);
  std::vector<float> values(22 * 34, 0.0f);
  for (std::size_t row = 0; row < 22; ++row) values[row * 34] = values[row * 34 + 1] = 0.01f;
  // Stride 8, cell 6 (gx 2, gy 1): centre (16, 8); left 16, top 8, right 24, bottom 0 ->
  // (0, 0, 40, 8), x2 clamped to 32.
  values[6 * 34 + 1] = 0.9f;
  const auto peaked = distribution({2, 1, 3, 0});
  std::copy(peaked.begin(), peaked.end(), values.begin() + 6 * 34 + 2);
  const Tensor tensor = make_tensor({1, 22, 34}, values);
  std::vector<Detection> detections;
  decoder.decode(std::span(&tensor, 1), geometry_for(ResizeMode::stretch, 32, 32, 32, 32), options_with(0.35f, 0.6f),
                 detections);
  expect_detections(detections, {{0, 0, 32, 8, 0.9f, 1}});
}

TEST(NanodetDecoder, RejectsOutputsThatDoNotPairUp) {
  EXPECT_THROW(NanodetDecoder(context_for({output_info({16, 2}), output_info({16, 32})}, 32, 32)), Error);
  EXPECT_THROW(NanodetDecoder(context_for({output_info({1, 21, 34})}, 32, 32)), Error);
}

// ---- ssd ----

TEST(SsdDecoder, BlazeFaceAnchorsFollowMediaPipe) {
  const auto anchors = SsdDecoder::generate_anchors(DecoderConfig::Ssd{}, 128, 128);
  ASSERT_EQ(anchors.size(), 896u);  // 16*16*2 + 8*8*6
  EXPECT_FLOAT_EQ(anchors[0].x_center, 0.5f / 16);
  EXPECT_FLOAT_EQ(anchors[1].x_center, 0.5f / 16);  // two anchors per stride-8 cell
  EXPECT_FLOAT_EQ(anchors[2].x_center, 1.5f / 16);
  EXPECT_FLOAT_EQ(anchors[511].y_center, 15.5f / 16);
  EXPECT_FLOAT_EQ(anchors[512].x_center, 0.5f / 8);  // stride 16: six per cell
  EXPECT_FLOAT_EQ(anchors[518].x_center, 1.5f / 8);
  EXPECT_FLOAT_EQ(anchors[895].x_center, 7.5f / 8);
  EXPECT_FLOAT_EQ(anchors[895].width, 1.0f);  // fixed anchor size

  DecoderConfig::Ssd sized;
  sized.fixed_anchor_size = false;
  sized.num_layers = 1;
  sized.strides = {32};
  sized.aspect_ratios = {1.0, 4.0};
  sized.interpolated_scale_aspect_ratio = 0.0;
  const auto scaled = SsdDecoder::generate_anchors(sized, 64, 64);
  ASSERT_EQ(scaled.size(), 8u);                     // 2x2 cells, 2 aspect ratios
  const float scale = 0.5f * (0.1484375f + 0.75f);  // one stride: mean of min and max
  EXPECT_FLOAT_EQ(scaled[1].width, scale * 2.0f);
  EXPECT_FLOAT_EQ(scaled[1].height, scale / 2.0f);
}

TEST(SsdDecoder, DecodesBlazeFaceBoxesWithTensorsInEitherOrder) {
  std::vector<float> boxes(896 * 16, 0.0f);
  std::vector<float> scores(896, -10.0f);
  // Anchor 513: stride-16 cell (0, 0), centre (0.0625, 0.0625). x offset 12.8 / 128 = 0.1,
  // w = 25.6 / 128 = 0.2, h = 12.8 / 128 = 0.1 -> (0.0625, 0.0125, 0.2625, 0.1125) of 128
  // = (8, 1.6, 33.6, 14.4); stretched from 256x256: x2.
  boxes[513 * 16 + 0] = 12.8f;
  boxes[513 * 16 + 2] = 25.6f;
  boxes[513 * 16 + 3] = 12.8f;
  scores[513] = 2.0f;
  scores[100] = 500.0f;  // clipped to 100, then sigmoid 1.0; box of anchor 100 is a point
  const float expected_score = 1.0f / (1.0f + std::exp(-2.0f));
  for (const bool scores_first : {false, true}) {
    SCOPED_TRACE(scores_first ? "scores first" : "boxes first");
    std::vector<TensorInfo> infos{output_info({1, 896, 16}), output_info({1, 896, 1})};
    std::vector<Tensor> outputs;
    outputs.push_back(make_tensor({1, 896, 16}, boxes));
    outputs.push_back(make_tensor({1, 896, 1}, scores));
    if (scores_first) {
      std::swap(infos[0], infos[1]);
      std::swap(outputs[0], outputs[1]);
    }
    const SsdDecoder decoder(context_for(infos, 128, 128));
    EXPECT_EQ(decoder.num_classes(), 1);
    std::vector<Detection> detections;
    decoder.decode(outputs, geometry_for(ResizeMode::stretch, 128, 128, 256, 256), options_with(0.5f, 0.3f),
                   detections);
    // Anchor 100 (stride 8, cell 50: gx 2, gy 3) centre ((2.5/16), (3.5/16)) * 256 = (40, 56).
    expect_detections(detections, {{40, 56, 40, 56, 1.0f, 0}, {16, 3.2f, 67.2f, 28.8f, expected_score, 0}});
  }
}

TEST(SsdDecoder, RejectsAnchorCountMismatch) {
  EXPECT_THROW(SsdDecoder(context_for({output_info({1, 2304, 16}), output_info({1, 2304, 1})}, 128, 128)), Error);
}

}  // namespace
}  // namespace detflow
