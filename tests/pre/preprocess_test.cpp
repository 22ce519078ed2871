// Preprocessing: geometry formulas and round trips, the fused resize + conversion checked
// pixel by pixel against cv::resize + cv::copyMakeBorder + a per-pixel normalisation (and
// level for level, bit-exact, over many random and edge sizes), the batch slot, the
// OpenCL (UMat) path and setup errors.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>
#include <opencv2/core/ocl.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "detflow/error.h"
#include "detflow/pre/preprocess.h"
#include "shared_data.h"

namespace detflow {
namespace {

PreprocessSpec make_spec(int width, int height, ResizeMode resize) {
  PreprocessSpec spec;
  spec.width = width;
  spec.height = height;
  spec.resize = resize;
  return spec;
}

cv::Mat random_frame(int width, int height, int seed) {
  cv::Mat frame(height, width, CV_8UC3);
  cv::RNG rng(static_cast<std::uint64_t>(seed));
  rng.fill(frame, cv::RNG::UNIFORM, 0, 256);
  return frame;
}

TEST(Geometry, LetterboxCenterPortraitMatchesUltralyticsFormula) {
  // 810x1080 -> 640: r = 640/1080, resized 480x640, left = round(80 - 0.1) = 80.
  const Geometry geometry = compute_geometry(make_spec(640, 640, ResizeMode::letterbox_center), 810, 1080);
  EXPECT_DOUBLE_EQ(geometry.scale_x, 640.0 / 1080.0);
  EXPECT_DOUBLE_EQ(geometry.scale_y, 640.0 / 1080.0);
  EXPECT_EQ(geometry.resized_width, 480);
  EXPECT_EQ(geometry.resized_height, 640);
  EXPECT_EQ(geometry.pad_left, 80.0);
  EXPECT_EQ(geometry.pad_top, 0.0);
}

TEST(Geometry, LetterboxCenterOddPaddingRoundsTowardsTheTopLeftShare) {
  // 333x101 -> 416: r = 416/333, resized 416 x round(126.17) = 126; the 290 rows of
  // padding split 145 / 145. 768x577 -> 416: resized 416 x round(312.54) = 313; 103 rows
  // split round(51.5 - 0.1) = 51 on top and 52 below.
  const PreprocessSpec spec = make_spec(416, 416, ResizeMode::letterbox_center);
  const Geometry wide = compute_geometry(spec, 333, 101);
  EXPECT_EQ(wide.resized_width, 416);
  EXPECT_EQ(wide.resized_height, 126);
  EXPECT_EQ(wide.pad_left, 0.0);
  EXPECT_EQ(wide.pad_top, 145.0);
  const Geometry odd = compute_geometry(spec, 768, 577);
  EXPECT_EQ(odd.resized_height, 313);
  EXPECT_EQ(odd.pad_top, 51.0);
}

TEST(Geometry, LetterboxTopLeftHasNoLeadingPadding) {
  const Geometry geometry = compute_geometry(make_spec(416, 416, ResizeMode::letterbox_top_left), 768, 576);
  EXPECT_DOUBLE_EQ(geometry.scale_x, 416.0 / 768.0);
  EXPECT_EQ(geometry.resized_width, 416);
  EXPECT_EQ(geometry.resized_height, 312);
  EXPECT_EQ(geometry.pad_left, 0.0);
  EXPECT_EQ(geometry.pad_top, 0.0);
}

TEST(Geometry, StretchScalesEachAxis) {
  const Geometry geometry = compute_geometry(make_spec(320, 320, ResizeMode::stretch), 640, 427);
  EXPECT_DOUBLE_EQ(geometry.scale_x, 0.5);
  EXPECT_DOUBLE_EQ(geometry.scale_y, 320.0 / 427.0);
  EXPECT_EQ(geometry.resized_width, 320);
  EXPECT_EQ(geometry.resized_height, 320);
  EXPECT_EQ(geometry.pad_left, 0.0);
  EXPECT_EQ(geometry.pad_top, 0.0);
}

TEST(Geometry, RejectsEmptySizes) {
  EXPECT_THROW(compute_geometry(make_spec(640, 640, ResizeMode::letterbox_center), 0, 480), Error);
  EXPECT_THROW(compute_geometry(make_spec(0, 640, ResizeMode::stretch), 640, 480), Error);
}

class GeometryRoundTrip : public ::testing::TestWithParam<std::tuple<ResizeMode, int, int>> {};

TEST_P(GeometryRoundTrip, SourceCornersLandOnTheResizedImageAndMapBack) {
  const auto [mode, source_width, source_height] = GetParam();
  const Geometry geometry = compute_geometry(make_spec(416, 320, mode), source_width, source_height);
  // The source frame's corners map to the resized image's corners inside the input.
  const cv::Point2d top_left = geometry.to_input({0, 0});
  const cv::Point2d bottom_right = geometry.to_input({double(source_width), double(source_height)});
  EXPECT_NEAR(top_left.x, geometry.pad_left, 1e-9);
  EXPECT_NEAR(top_left.y, geometry.pad_top, 1e-9);
  EXPECT_NEAR(bottom_right.x, geometry.pad_left + geometry.resized_width, 0.5);
  EXPECT_NEAR(bottom_right.y, geometry.pad_top + geometry.resized_height, 0.5);
  EXPECT_LE(geometry.pad_left + geometry.resized_width, geometry.input_width);
  EXPECT_LE(geometry.pad_top + geometry.resized_height, geometry.input_height);
  for (const cv::Point2d point :
       {cv::Point2d{0, 0}, cv::Point2d{17.5, 3.25}, cv::Point2d{source_width - 1.0, source_height - 1.0}}) {
    const cv::Point2d back = geometry.to_source(geometry.to_input(point));
    EXPECT_NEAR(back.x, point.x, 1e-9);
    EXPECT_NEAR(back.y, point.y, 1e-9);
  }
}

INSTANTIATE_TEST_SUITE_P(ModesAndSizes, GeometryRoundTrip,
                         ::testing::Combine(::testing::Values(ResizeMode::letterbox_center,
                                                              ResizeMode::letterbox_top_left, ResizeMode::stretch),
                                            ::testing::Values(333, 1920, 101), ::testing::Values(1080, 77, 321)));

// The straightforward computation the fused loop must equal: 8-bit resize, border,
// then value = (pixel * scale - mean) / std per channel, element by element.
std::vector<double> reference_values(const cv::Mat& frame, const PreprocessSpec& spec) {
  const Geometry geometry = compute_geometry(spec, frame.cols, frame.rows);
  cv::Mat resized;
  cv::resize(frame, resized, cv::Size(geometry.resized_width, geometry.resized_height), 0, 0, cv::INTER_LINEAR);
  const int left = static_cast<int>(geometry.pad_left);
  const int top = static_cast<int>(geometry.pad_top);
  cv::Mat padded;
  cv::copyMakeBorder(resized, padded, top, spec.height - top - resized.rows, left, spec.width - left - resized.cols,
                     cv::BORDER_CONSTANT, cv::Scalar::all(spec.pad_value));
  std::vector<double> values(static_cast<std::size_t>(3 * spec.width * spec.height));
  for (int y = 0; y < spec.height; ++y) {
    for (int x = 0; x < spec.width; ++x) {
      const cv::Vec3b pixel = padded.at<cv::Vec3b>(y, x);
      for (int channel = 0; channel < 3; ++channel) {
        const int source_channel = spec.color == ColorOrder::rgb ? 2 - channel : channel;
        const auto index = static_cast<std::size_t>(channel);
        const double value = (pixel[source_channel] * spec.scale - spec.mean[index]) / spec.std[index];
        const std::size_t position = spec.layout == Layout::nchw
                                         ? static_cast<std::size_t>((channel * spec.height + y) * spec.width + x)
                                         : static_cast<std::size_t>((y * spec.width + x) * 3 + channel);
        values[position] = value;
      }
    }
  }
  return values;
}

// Compares slot `batch_index` of `tensor` with the reference, element by element.
void expect_slot_equals_reference(const Tensor& tensor, int batch_index, const std::vector<double>& expected,
                                  ElementType type) {
  const std::size_t offset = expected.size() * static_cast<std::size_t>(batch_index);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < expected.size() && mismatches < 5; ++i) {
    double actual = 0;
    double tolerance = 0;
    switch (type) {
      case ElementType::float32:
        actual = tensor.data<float>()[offset + i];
        tolerance = 1e-5 * std::max(1.0, std::abs(expected[i]));
        break;
      case ElementType::float16:
        actual = half_to_float(tensor.data<std::uint16_t>()[offset + i]);
        tolerance = 1e-3 * std::max(1.0, std::abs(expected[i]));  // half precision: 11 significant bits
        break;
      default:
        actual = tensor.data<std::uint8_t>()[offset + i];
        tolerance = 0.5 + 1e-9;  // rounded to the nearest level
        break;
    }
    const double reference = type == ElementType::uint8 ? std::clamp(expected[i], 0.0, 255.0) : expected[i];
    if (std::abs(actual - reference) > tolerance) {
      ADD_FAILURE() << "element " << i << ": " << actual << " != " << reference;
      ++mismatches;
    }
  }
}

using ConversionCase = std::tuple<Layout, ColorOrder, ElementType, ResizeMode>;

class PreprocessMatchesReference : public ::testing::TestWithParam<ConversionCase> {};

TEST_P(PreprocessMatchesReference, OddLandscapePortraitAndInputSizedFrames) {
  const auto [layout, color, type, mode] = GetParam();
  PreprocessSpec spec = make_spec(96, 64, mode);
  spec.layout = layout;
  spec.color = color;
  spec.type = type;
  if (type == ElementType::uint8) {
    spec.scale = 1.0;  // uint8 tensors carry raw levels; keep one non-trivial channel
    spec.mean = {0.0, 10.0, 0.0};
  } else {
    spec.scale = 1.0 / 255.0;
    spec.mean = {0.485, 0.456, 0.406};
    spec.std = {0.229, 0.224, 0.225};
  }
  spec.pad_value = 114.0;
  Preprocessor preprocessor(spec);
  Tensor tensor;
  preprocessor.prepare(tensor);
  int seed = 1;
  // Odd landscape, portrait, and a frame of exactly the input size (no resize).
  for (const cv::Size size : {cv::Size(151, 77), cv::Size(45, 130), cv::Size(96, 64)}) {
    SCOPED_TRACE(std::to_string(size.width) + "x" + std::to_string(size.height));
    const cv::Mat frame = random_frame(size.width, size.height, seed++);
    const Geometry geometry = preprocessor.run(frame, tensor);
    const Geometry expected = compute_geometry(spec, size.width, size.height);
    EXPECT_EQ(geometry.pad_left, expected.pad_left);
    EXPECT_EQ(geometry.resized_width, expected.resized_width);
    expect_slot_equals_reference(tensor, 0, reference_values(frame, spec), type);
  }
}

INSTANTIATE_TEST_SUITE_P(AllCombinations, PreprocessMatchesReference,
                         ::testing::Combine(::testing::Values(Layout::nchw, Layout::nhwc),
                                            ::testing::Values(ColorOrder::bgr, ColorOrder::rgb),
                                            ::testing::Values(ElementType::float32, ElementType::float16,
                                                              ElementType::uint8),
                                            ::testing::Values(ResizeMode::letterbox_center,
                                                              ResizeMode::letterbox_top_left, ResizeMode::stretch)));

// The fused resize against cv::resize(INTER_LINEAR) + cv::copyMakeBorder, level for
// level. With identity normalisation every element type holds the 8-bit level exactly
// (float16 represents 0..255 exactly), so a single rounding difference anywhere in the
// resize is a mismatch.
PreprocessSpec identity_spec(int width, int height, ResizeMode mode, Layout layout, ColorOrder color,
                             ElementType type) {
  PreprocessSpec spec = make_spec(width, height, mode);
  spec.layout = layout;
  spec.color = color;
  spec.type = type;
  spec.scale = 1.0;
  spec.pad_value = 114.0;
  return spec;
}

cv::Mat reference_letterbox(const cv::Mat& frame, const PreprocessSpec& spec) {
  const Geometry geometry = compute_geometry(spec, frame.cols, frame.rows);
  cv::Mat resized;
  cv::resize(frame, resized, cv::Size(geometry.resized_width, geometry.resized_height), 0, 0, cv::INTER_LINEAR);
  const int left = static_cast<int>(geometry.pad_left);
  const int top = static_cast<int>(geometry.pad_top);
  cv::Mat padded;
  cv::copyMakeBorder(resized, padded, top, spec.height - top - resized.rows, left, spec.width - left - resized.cols,
                     cv::BORDER_CONSTANT, cv::Scalar::all(spec.pad_value));
  return padded;
}

double element_value(const Tensor& tensor, std::size_t index) {
  switch (tensor.type()) {
    case ElementType::float32:
      return tensor.data<float>()[index];
    case ElementType::float16:
      return half_to_float(tensor.data<std::uint16_t>()[index]);
    default:
      return tensor.data<std::uint8_t>()[index];
  }
}

// Number of elements of slot 0 that differ from `padded` (an 8-bit BGR image of the input
// size); the first few are reported.
std::size_t count_level_mismatches(const Tensor& tensor, const cv::Mat& padded, const PreprocessSpec& spec) {
  std::size_t mismatches = 0;
  for (int y = 0; y < spec.height; ++y) {
    for (int x = 0; x < spec.width; ++x) {
      const cv::Vec3b pixel = padded.at<cv::Vec3b>(y, x);
      for (int channel = 0; channel < 3; ++channel) {
        const int source_channel = spec.color == ColorOrder::rgb ? 2 - channel : channel;
        const std::size_t position = spec.layout == Layout::nchw
                                         ? static_cast<std::size_t>((channel * spec.height + y) * spec.width + x)
                                         : static_cast<std::size_t>((y * spec.width + x) * 3 + channel);
        const double actual = element_value(tensor, position);
        if (actual != pixel[source_channel] && ++mismatches <= 3) {
          ADD_FAILURE() << "x " << x << " y " << y << " channel " << channel << ": " << actual
                        << " != " << int(pixel[source_channel]);
        }
      }
    }
  }
  return mismatches;
}

class FusedResizeIsBitExact : public ::testing::TestWithParam<ConversionCase> {};

TEST_P(FusedResizeIsBitExact, RandomAndEdgeSizesEqualCvResize) {
  const auto [layout, color, type, mode] = GetParam();
  cv::RNG rng(static_cast<std::uint64_t>(1000 + 100 * int(layout) + 30 * int(color) + 7 * int(type) + int(mode)));
  // Input sizes: square, landscape, portrait, tiny, odd; each Preprocessor sees many
  // frame sizes in turn, so its cached tables are rebuilt (and reused) along the way.
  const std::vector<cv::Size> inputs = {{64, 64}, {97, 61}, {45, 130}, {1, 1}, {3, 7}};
  for (const cv::Size input : inputs) {
    const PreprocessSpec spec = identity_spec(input.width, input.height, mode, layout, color, type);
    Preprocessor preprocessor(spec);
    Tensor tensor;
    preprocessor.prepare(tensor);
    std::vector<cv::Size> frames = {{1, 1},
                                    {1, 57},
                                    {57, 1},
                                    {2, 3},
                                    {input.width * 2, input.height * 2},          // exact 2x (area path)
                                    {input.width / 2 + 1, input.height / 3 + 1},  // upscale
                                    {input.width + 1, input.height},
                                    {input.width, input.height + 1},  // near identity
                                    {333, 101},
                                    {101, 333},
                                    {768, 576}};
    for (int i = 0; i < 12; ++i) frames.emplace_back(rng.uniform(1, 400), rng.uniform(1, 400));
    frames.push_back(frames[frames.size() - 3]);  // a size seen before, with other sizes between
    int seed = 0;
    for (const cv::Size size : frames) {
      SCOPED_TRACE(std::to_string(size.width) + "x" + std::to_string(size.height) + " -> " +
                   std::to_string(input.width) + "x" + std::to_string(input.height));
      const cv::Mat frame = random_frame(size.width, size.height, ++seed);
      preprocessor.run(frame, tensor);
      EXPECT_EQ(count_level_mismatches(tensor, reference_letterbox(frame, spec), spec), 0u);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCombinations, FusedResizeIsBitExact,
                         ::testing::Combine(::testing::Values(Layout::nchw, Layout::nhwc),
                                            ::testing::Values(ColorOrder::bgr, ColorOrder::rgb),
                                            ::testing::Values(ElementType::float32, ElementType::float16,
                                                              ElementType::uint8),
                                            ::testing::Values(ResizeMode::letterbox_center,
                                                              ResizeMode::letterbox_top_left, ResizeMode::stretch)));

TEST(Preprocess, FusedResizeOfManyRandomSizesEqualsCvResize) {
  // Down- and upscaling in each axis independently, odd sizes, one-pixel rows and columns.
  cv::RNG rng(4242);
  int mismatching_cases = 0;
  for (int i = 0; i < 300; ++i) {
    const int input_width = rng.uniform(1, 160);
    const int input_height = rng.uniform(1, 160);
    const int frame_width = i % 25 == 0 ? 1 : rng.uniform(1, 320);
    const int frame_height = i % 25 == 1 ? 1 : rng.uniform(1, 320);
    const PreprocessSpec spec = identity_spec(input_width, input_height, ResizeMode::stretch, Layout::nchw,
                                              ColorOrder::rgb, ElementType::uint8);
    Preprocessor preprocessor(spec);
    Tensor tensor;
    preprocessor.prepare(tensor);
    const cv::Mat frame = random_frame(frame_width, frame_height, 500 + i);
    preprocessor.run(frame, tensor);
    const std::size_t mismatches = count_level_mismatches(tensor, reference_letterbox(frame, spec), spec);
    if (mismatches != 0) {
      ++mismatching_cases;
      ADD_FAILURE() << frame_width << "x" << frame_height << " -> " << input_width << "x" << input_height << ": "
                    << mismatches << " elements differ";
    }
  }
  EXPECT_EQ(mismatching_cases, 0);
}

TEST(Preprocess, FusedResizeReadsRegionsOfInterestByRow) {
  // A view into a larger image: rows are `step` bytes apart and the SIMD gathers must not
  // read past the view's right edge into pixels that are not part of the frame.
  const cv::Mat large = random_frame(240, 180, 77);
  for (const cv::Rect region : {cv::Rect(3, 5, 101, 77), cv::Rect(200, 0, 40, 180), cv::Rect(0, 179, 240, 1)}) {
    const cv::Mat view = large(region);
    ASSERT_FALSE(view.isContinuous() && region.height > 1);
    const PreprocessSpec spec =
        identity_spec(64, 48, ResizeMode::letterbox_center, Layout::nchw, ColorOrder::rgb, ElementType::float32);
    Preprocessor preprocessor(spec);
    Tensor tensor;
    preprocessor.prepare(tensor);
    preprocessor.run(view, tensor);
    EXPECT_EQ(count_level_mismatches(tensor, reference_letterbox(view.clone(), spec), spec), 0u);
  }
}

// The frames the reference detections were made from: 768x576 -> 416 and 810x1080 -> 640,
// float32 NCHW RGB / 255 as the YOLO models take them, equal to cv::resize +
// copyMakeBorder + normalisation, and the levels equal exactly.
TEST(Preprocess, SharedFramesEqualCvResizeLetterbox) {
  for (const auto& [name, size] : {std::pair<std::string, int>{"media/dog.jpg", 416}, {"media/bus.jpg", 640}}) {
    DETFLOW_SHARED_FILE(path, name);
    const cv::Mat frame = cv::imread(path.string(), cv::IMREAD_COLOR);
    ASSERT_FALSE(frame.empty()) << path;
    SCOPED_TRACE(name);
    PreprocessSpec spec = make_spec(size, size, ResizeMode::letterbox_center);
    Preprocessor normalising(spec);
    Tensor tensor;
    normalising.prepare(tensor);
    normalising.run(frame, tensor);
    expect_slot_equals_reference(tensor, 0, reference_values(frame, spec), ElementType::float32);
    spec = identity_spec(size, size, ResizeMode::letterbox_center, Layout::nchw, ColorOrder::rgb, ElementType::uint8);
    Preprocessor levels(spec);
    levels.prepare(tensor);
    levels.run(frame, tensor);
    EXPECT_EQ(count_level_mismatches(tensor, reference_letterbox(frame, spec), spec), 0u);
  }
}

TEST(Preprocess, TensorShapeFollowsLayoutAndBatch) {
  PreprocessSpec spec = make_spec(32, 24, ResizeMode::stretch);
  Tensor tensor;
  Preprocessor(spec).prepare(tensor, 2);
  EXPECT_EQ(tensor.shape(), (std::vector<std::int64_t>{2, 3, 24, 32}));
  EXPECT_EQ(tensor.type(), ElementType::float32);
  spec.layout = Layout::nhwc;
  spec.type = ElementType::float16;
  Preprocessor(spec).prepare(tensor, 1);
  EXPECT_EQ(tensor.shape(), (std::vector<std::int64_t>{1, 24, 32, 3}));
  EXPECT_EQ(tensor.type(), ElementType::float16);
}

TEST(Preprocess, WritesOnlyItsBatchSlot) {
  const PreprocessSpec spec = make_spec(40, 40, ResizeMode::letterbox_center);
  Preprocessor preprocessor(spec);
  Tensor tensor;
  preprocessor.prepare(tensor, 3);
  std::fill_n(tensor.data<float>(), tensor.element_count(), -7.0f);
  const cv::Mat frame = random_frame(57, 31, 11);
  preprocessor.run(frame, tensor, 1);
  const std::size_t slot = tensor.element_count() / 3;
  for (std::size_t i = 0; i < slot; ++i) {
    ASSERT_EQ(tensor.data<float>()[i], -7.0f) << "slot 0 element " << i;
    ASSERT_EQ(tensor.data<float>()[2 * slot + i], -7.0f) << "slot 2 element " << i;
  }
  expect_slot_equals_reference(tensor, 1, reference_values(frame, spec), ElementType::float32);
}

TEST(Preprocess, CopiesOwnTheirScratchAndRunConcurrently) {
  const PreprocessSpec spec = make_spec(48, 48, ResizeMode::letterbox_center);
  const Preprocessor prototype(spec);
  const cv::Mat frames[2] = {random_frame(90, 60, 21), random_frame(33, 71, 22)};
  const std::vector<double> expected[2] = {reference_values(frames[0], spec), reference_values(frames[1], spec)};
  Tensor tensors[2];
  std::vector<std::thread> threads;
  for (int worker = 0; worker < 2; ++worker) {
    threads.emplace_back([&, worker] {
      Preprocessor copy = prototype;  // each worker its own copy, as the pipeline does
      copy.prepare(tensors[worker]);
      for (int repeat = 0; repeat < 20; ++repeat) copy.run(frames[worker], tensors[worker]);
    });
  }
  for (std::thread& thread : threads) thread.join();
  expect_slot_equals_reference(tensors[0], 0, expected[0], ElementType::float32);
  expect_slot_equals_reference(tensors[1], 0, expected[1], ElementType::float32);
}

TEST(Preprocess, PaddingUsesTheNormalisedPadValue) {
  PreprocessSpec spec = make_spec(16, 16, ResizeMode::letterbox_center);
  spec.pad_value = 0.0;
  spec.scale = 1.0 / 127.5;
  spec.mean = {1.0, 1.0, 1.0};
  Preprocessor preprocessor(spec);
  Tensor tensor;
  preprocessor.prepare(tensor);
  preprocessor.run(cv::Mat(4, 16, CV_8UC3, cv::Scalar(255, 255, 255)), tensor);  // 16x4 centred: rows 6..9
  EXPECT_FLOAT_EQ(tensor.data<float>()[0], -1.0f);                               // padding, first row
  EXPECT_FLOAT_EQ(tensor.data<float>()[7 * 16 + 3], 1.0f);                       // image
  EXPECT_FLOAT_EQ(tensor.data<float>()[15 * 16 + 15], -1.0f);                    // padding, last row
}

TEST(Preprocess, GrayAndBgraFramesAreConvertedToBgr) {
  PreprocessSpec spec = make_spec(24, 24, ResizeMode::stretch);
  Preprocessor preprocessor(spec);
  Tensor from_gray, from_bgr;
  preprocessor.prepare(from_gray);
  preprocessor.prepare(from_bgr);
  cv::Mat gray(30, 20, CV_8UC1);
  cv::randu(gray, 0, 256);
  cv::Mat bgr, bgra;
  cv::cvtColor(gray, bgr, cv::COLOR_GRAY2BGR);
  cv::cvtColor(bgr, bgra, cv::COLOR_BGR2BGRA);
  preprocessor.run(gray, from_gray);
  preprocessor.run(bgr, from_bgr);
  EXPECT_EQ(0, std::memcmp(from_gray.bytes(), from_bgr.bytes(), from_bgr.byte_size()));
  preprocessor.run(bgra, from_gray);
  EXPECT_EQ(0, std::memcmp(from_gray.bytes(), from_bgr.bytes(), from_bgr.byte_size()));
}

TEST(Preprocess, UMatPathEqualsMatPath) {
  // OpenCV only picks GPU devices by default; PoCL (the CI's OpenCL) is a CPU device.
  // Must be set before OpenCV first initialises OpenCL in this process; a user's own
  // choice wins.
  ::setenv("OPENCV_OPENCL_DEVICE", ":CPU:", 0);
  for (const bool use_opencl : {false, true}) {
    cv::ocl::setUseOpenCL(use_opencl);
    if (use_opencl && !cv::ocl::useOpenCL()) {
      std::cout << "[   INFO   ] no OpenCL device: the UMat path ran on the host only\n";
    }
    SCOPED_TRACE(std::string("OpenCL ") + (cv::ocl::useOpenCL() ? "on" : "off"));
    PreprocessSpec spec = make_spec(64, 64, ResizeMode::letterbox_center);
    Preprocessor preprocessor(spec);
    Tensor from_host, from_device;
    preprocessor.prepare(from_host);
    preprocessor.prepare(from_device);
    for (const cv::Size size : {cv::Size(120, 90), cv::Size(64, 64)}) {
      const cv::Mat frame = random_frame(size.width, size.height, size.width);
      const Geometry host_geometry = preprocessor.run(frame, from_host);
      const Geometry device_geometry = preprocessor.run(frame.getUMat(cv::ACCESS_READ), from_device);
      EXPECT_EQ(host_geometry.pad_top, device_geometry.pad_top);
      EXPECT_EQ(host_geometry.resized_height, device_geometry.resized_height);
      // An OpenCL resize may round its fixed-point interpolation differently: one level.
      float largest_difference = 0;
      for (std::size_t i = 0; i < from_host.element_count(); ++i) {
        largest_difference =
            std::max(largest_difference, std::abs(from_host.data<float>()[i] - from_device.data<float>()[i]));
      }
      EXPECT_LE(largest_difference, 1.0f / 255.0f + 1e-6f);
    }
  }
  cv::ocl::setUseOpenCL(true);
}

TEST(Preprocess, SetupErrorsNameTheValue) {
  PreprocessSpec spec = make_spec(32, 32, ResizeMode::stretch);
  spec.type = ElementType::int64;
  EXPECT_THROW(Preprocessor{spec}, Error);
  spec.type = ElementType::float32;
  spec.std = {1.0, 0.0, 1.0};
  EXPECT_THROW(Preprocessor{spec}, Error);
  spec.std = {1.0, 1.0, 1.0};
  Preprocessor preprocessor(spec);
  Tensor tensor;
  EXPECT_THROW(preprocessor.run(random_frame(8, 8, 1), tensor), Error);  // not prepared
  preprocessor.prepare(tensor, 2);
  EXPECT_THROW(preprocessor.run(random_frame(8, 8, 1), tensor, 2), Error);
  EXPECT_THROW(preprocessor.run(cv::Mat(), tensor), Error);
  EXPECT_THROW(preprocessor.run(cv::Mat(8, 8, CV_32FC3), tensor), Error);
  try {
    preprocessor.run(cv::Mat(8, 8, CV_16UC3), tensor);
    FAIL() << "expected detflow::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("CV_16UC3"), std::string::npos) << error.what();
  }
}

// The reference detections were made on bus.jpg (810x1080) with the letterbox described
// in reference/README.md; the geometry must follow those formulas for that frame.
TEST(Preprocess, SharedReferenceLetterboxGeometry) {
  DETFLOW_SHARED_FILE(reference, "reference/yolov8n__bus.jsonl");
  std::ifstream file(reference);
  std::string line;
  ASSERT_TRUE(std::getline(file, line));
  const auto number_after = [&](const std::string& key) {
    const auto position = line.find("\"" + key + "\":");
    EXPECT_NE(position, std::string::npos) << key;
    return std::stoi(line.substr(position + key.size() + 3));
  };
  const int width = number_after("width");
  const int height = number_after("height");
  ASSERT_EQ(width, 810);
  ASSERT_EQ(height, 1080);
  const Geometry geometry = compute_geometry(make_spec(640, 640, ResizeMode::letterbox_center), width, height);
  const double ratio = std::min(640.0 / width, 640.0 / height);
  const int resized_width = static_cast<int>(std::lround(width * ratio));
  const int resized_height = static_cast<int>(std::lround(height * ratio));
  EXPECT_DOUBLE_EQ(geometry.scale_x, ratio);
  EXPECT_EQ(geometry.resized_width, resized_width);
  EXPECT_EQ(geometry.resized_height, resized_height);
  EXPECT_EQ(geometry.pad_left, std::lround((640 - resized_width) / 2.0 - 0.1));
  EXPECT_EQ(geometry.pad_top, std::lround((640 - resized_height) / 2.0 - 0.1));
  // A box at the input's image edges maps back to the frame edges.
  EXPECT_NEAR(geometry.to_source({geometry.pad_left, 0}).x, 0.0, 1e-9);
  EXPECT_NEAR(geometry.to_source({geometry.pad_left + resized_width, 640}).y, height, 1e-6);
}

}  // namespace
}  // namespace detflow
