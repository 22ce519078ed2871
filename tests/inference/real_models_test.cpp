// The real detectors in ../shared/models: ModelInfo as the models README describes them,
// and one ONNX Runtime run on bus.jpg (plain resize) with finite outputs of the declared shape.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>

#include "detflow/inference/engine.h"
#include "detflow/inference/model_info.h"
#include "shared_data.h"

namespace detflow {
namespace {

struct RealModel {
  const char* file;
  const char* input_name;
  ElementType input_type;
  std::vector<std::int64_t> input_shape;
  std::vector<std::vector<std::int64_t>> output_shapes;  // declaration order
};

void PrintTo(const RealModel& model, std::ostream* stream) { *stream << model.file; }

std::vector<RealModel> real_models() {
  return {
      {"yolox_nano.onnx", "images", ElementType::float32, {1, 3, 416, 416}, {{1, 3549, 85}}},
      {"yolov8n.onnx", "images", ElementType::float32, {1, 3, 640, 640}, {{1, 84, 8400}}},
      {"yolov5n_fp16.onnx", "images", ElementType::float16, {1, 3, 640, 640}, {{1, 25200, 85}}},
      {"yolov10n_int8.onnx", "images", ElementType::float32, {1, 3, 640, 640}, {{1, 300, 6}}},
      {"nanodet_m_320.onnx", "image", ElementType::float32, {1, 3, 320, 320}, {}},
  };
}

// bus.jpg resized to the input, RGB, /255, NCHW, in the engine's element type.
Tensor image_tensor(const cv::Mat& bgr, const TensorInfo& input) {
  const auto shape = input.fixed_shape();
  const int height = static_cast<int>(shape[2]);
  const int width = static_cast<int>(shape[3]);
  cv::Mat resized;
  cv::resize(bgr, resized, cv::Size(width, height));
  cv::cvtColor(resized, resized, cv::COLOR_BGR2RGB);
  cv::Mat scaled;
  resized.convertTo(scaled, CV_32FC3, 1.0 / 255.0);
  Tensor tensor(input.type, shape);
  tensor.name = input.name;
  const std::size_t plane = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
  for (int y = 0; y < height; ++y) {
    const auto* row = scaled.ptr<cv::Vec3f>(y);
    for (int x = 0; x < width; ++x) {
      for (std::size_t c = 0; c < 3; ++c) {
        const std::size_t index =
            c * plane + static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x);
        if (input.type == ElementType::float16) {
          tensor.data<std::uint16_t>()[index] = float_to_half(row[x][static_cast<int>(c)]);
        } else {
          tensor.data<float>()[index] = row[x][static_cast<int>(c)];
        }
      }
    }
  }
  return tensor;
}

class RealModels : public ::testing::TestWithParam<RealModel> {};

TEST_P(RealModels, InfoMatchesTheReadme) {
  const auto& expected = GetParam();
  DETFLOW_SHARED_FILE(path, std::string("models/") + expected.file);
  const auto info = read_model_info(path);
  ASSERT_EQ(info.inputs.size(), 1u);
  EXPECT_EQ(info.inputs[0].name, expected.input_name);
  EXPECT_EQ(info.inputs[0].type, expected.input_type);
  EXPECT_EQ(info.inputs[0].fixed_shape(), expected.input_shape);
  if (expected.output_shapes.empty()) {
    EXPECT_EQ(info.outputs.size(), 6u);  // NanoDet: three class and three box tensors
  } else {
    ASSERT_EQ(info.outputs.size(), expected.output_shapes.size());
    for (std::size_t index = 0; index < info.outputs.size(); ++index) {
      EXPECT_EQ(info.outputs[index].fixed_shape(), expected.output_shapes[index]);
    }
  }
  EXPECT_GT(info.parameter_count, 500'000u);
  EXPECT_GT(info.default_opset(), 10);
  EXPECT_FALSE(info.operator_histogram.empty());
  EXPECT_EQ(info.file_size_bytes, std::filesystem::file_size(path));
}

TEST_P(RealModels, RunsOnceOnOnnxRuntimeWithFiniteOutputs) {
  if (!onnxruntime_available()) GTEST_SKIP() << "this build has no ONNX Runtime";
  const auto& expected = GetParam();
  DETFLOW_SHARED_FILE(path, std::string("models/") + expected.file);
  DETFLOW_SHARED_FILE(bus, "media/bus.jpg");
  EngineOptions options;
  options.backend = "onnxruntime";
  const auto engine = create_engine(read_model_info(path), options);
  ASSERT_EQ(engine->report().backend, "onnxruntime");
  const cv::Mat image = cv::imread(bus.string());
  ASSERT_FALSE(image.empty());
  const auto input = image_tensor(image, engine->inputs()[0]);
  std::vector<Tensor> outputs;
  engine->run({&input, 1}, outputs);
  ASSERT_EQ(outputs.size(), engine->outputs().size());
  for (std::size_t index = 0; index < outputs.size(); ++index) {
    const auto& output = outputs[index];
    EXPECT_EQ(output.shape(), engine->outputs()[index].fixed_shape()) << output.name;
    EXPECT_EQ(output.type(), engine->outputs()[index].type) << output.name;
    std::size_t non_finite = 0;
    for (std::size_t element = 0; element < output.element_count(); ++element) {
      const float value = output.type() == ElementType::float16 ? half_to_float(output.data<std::uint16_t>()[element])
                                                                : output.data<float>()[element];
      if (!std::isfinite(value)) ++non_finite;
    }
    EXPECT_EQ(non_finite, 0u) << output.name;
  }
}

// The bus picture has people in it: YOLOv8's person row must have a confident cell, which
// shows the image reached the right input and the output was read in the right layout.
TEST(RealModelsYolov8, FindsAPersonOnTheBusPicture) {
  if (!onnxruntime_available()) GTEST_SKIP() << "this build has no ONNX Runtime";
  DETFLOW_SHARED_FILE(path, "models/yolov8n.onnx");
  DETFLOW_SHARED_FILE(bus, "media/bus.jpg");
  const auto engine = create_engine(read_model_info(path), {});
  const auto input = image_tensor(cv::imread(bus.string()), engine->inputs()[0]);
  std::vector<Tensor> outputs;
  engine->run({&input, 1}, outputs);
  const auto& output = outputs[0];
  const auto anchors = static_cast<std::size_t>(output.dim(2));
  float best_person = 0.0f;
  float best_giraffe = 0.0f;
  for (std::size_t n = 0; n < anchors; ++n) {
    best_person = std::max(best_person, output.data<float>()[4 * anchors + n]);           // class 0
    best_giraffe = std::max(best_giraffe, output.data<float>()[(4 + 23) * anchors + n]);  // class 23
  }
  EXPECT_GT(best_person, 0.6f);
  EXPECT_LT(best_giraffe, 0.2f);
}

INSTANTIATE_TEST_SUITE_P(Shared, RealModels, ::testing::ValuesIn(real_models()), [](const auto& test_info) {
  std::string name = test_info.param.file;
  name = name.substr(0, name.find('.'));
  for (auto& character : name) {
    if (!std::isalnum(static_cast<unsigned char>(character))) character = '_';
  }
  return name;
});

}  // namespace
}  // namespace detflow
