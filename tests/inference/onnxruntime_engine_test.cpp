// The ONNX Runtime engine on synthetic models of every detector family: outputs compared
// with values computed here, independently, from the formulas in model_builder.h.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>

#include "detflow/error.h"
#include "detflow/inference/engine.h"
#include "model_builder.h"
#include "shared_data.h"

namespace detflow {
namespace {

using Shape = std::vector<std::int64_t>;

#define DETFLOW_REQUIRE_ONNXRUNTIME() \
  if (!onnxruntime_available()) GTEST_SKIP() << "this build has no ONNX Runtime"

std::unique_ptr<Engine> onnxruntime_engine(const std::filesystem::path& path, EngineOptions options = {}) {
  options.backend = "onnxruntime";
  return create_engine(read_model_info(path), options);
}

// Random pixels in [0, 1), deterministic per seed, as float32 or float16.
Tensor random_image(ElementType type, Shape shape, std::uint32_t seed, const std::string& name = "") {
  Tensor tensor(type, std::move(shape));
  tensor.name = name;
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  for (std::size_t index = 0; index < tensor.element_count(); ++index) {
    if (type == ElementType::float16) {
      tensor.data<std::uint16_t>()[index] = float_to_half(pixel(generator));
    } else {
      tensor.data<float>()[index] = pixel(generator);
    }
  }
  return tensor;
}

float pixel_value(const Tensor& image, std::size_t index) {
  return image.type() == ElementType::float16 ? half_to_float(image.data<std::uint16_t>()[index])
                                              : image.data<float>()[index];
}

// Mean over channels of each pixel, row-major [y][x].
std::vector<double> channel_means(const Tensor& image, bool nhwc) {
  const auto height = static_cast<std::size_t>(image.dim(nhwc ? 1 : 2));
  const auto width = static_cast<std::size_t>(image.dim(nhwc ? 2 : 3));
  const auto channels = static_cast<std::size_t>(image.dim(nhwc ? 3 : 1));
  std::vector<double> means(height * width, 0.0);
  for (std::size_t y = 0; y < height; ++y) {
    for (std::size_t x = 0; x < width; ++x) {
      double sum = 0;
      for (std::size_t c = 0; c < channels; ++c) {
        sum += pixel_value(image, nhwc ? (y * width + x) * channels + c : (c * height + y) * width + x);
      }
      means[y * width + x] = sum / static_cast<double>(channels);
    }
  }
  return means;
}

std::vector<double> block_means(const std::vector<double>& means, std::size_t width, std::size_t height,
                                std::size_t stride) {
  std::vector<double> blocks;
  for (std::size_t by = 0; by < height / stride; ++by) {
    for (std::size_t bx = 0; bx < width / stride; ++bx) {
      double sum = 0;
      for (std::size_t y = 0; y < stride; ++y) {
        for (std::size_t x = 0; x < stride; ++x) sum += means[(by * stride + y) * width + bx * stride + x];
      }
      blocks.push_back(sum / static_cast<double>(stride * stride));
    }
  }
  return blocks;
}

// Anchors over strides 8, 16, 32, each stride's grid repeated `repeats` times in a row.
std::vector<double> yolo_anchors(const Tensor& image, int repeats) {
  const auto width = static_cast<std::size_t>(image.dim(3));
  const auto height = static_cast<std::size_t>(image.dim(2));
  const auto means = channel_means(image, false);
  std::vector<double> anchors;
  for (const std::size_t stride : {8u, 16u, 32u}) {
    const auto blocks = block_means(means, width, height, stride);
    for (int repeat = 0; repeat < repeats; ++repeat) anchors.insert(anchors.end(), blocks.begin(), blocks.end());
  }
  return anchors;
}

double expected_value(double anchor, int column) {
  return anchor * test::channel_scale(column) + test::channel_offset(column);
}

float output_value(const Tensor& tensor, std::size_t index) {
  return tensor.type() == ElementType::float16 ? half_to_float(tensor.data<std::uint16_t>()[index])
                                               : tensor.data<float>()[index];
}

// Rows-of-columns layout [1, N, C] (or columns-of-rows [1, C, N] when transposed).
void expect_layout(const Tensor& output, const std::vector<double>& anchors, int columns, bool columns_first,
                   double tolerance) {
  ASSERT_EQ(output.rank(), 3u);
  const auto count = static_cast<std::int64_t>(anchors.size());
  ASSERT_EQ(output.shape(), columns_first ? (Shape{1, columns, count}) : (Shape{1, count, columns}));
  int mismatches = 0;
  for (std::size_t n = 0; n < anchors.size(); ++n) {
    for (int c = 0; c < columns; ++c) {
      const std::size_t index = columns_first ? static_cast<std::size_t>(c) * anchors.size() + n
                                              : n * static_cast<std::size_t>(columns) + static_cast<std::size_t>(c);
      const double expected = expected_value(anchors[n], c);
      if (std::abs(output_value(output, index) - expected) > tolerance * std::max(1.0, std::abs(expected)) &&
          ++mismatches <= 5) {
        ADD_FAILURE() << output.name << " anchor " << n << " column " << c << ": " << output_value(output, index)
                      << " != " << expected;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

class OnnxRuntimeEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    DETFLOW_REQUIRE_ONNXRUNTIME();
    directory_ = test::temporary_directory("ort-engine");
  }
  std::filesystem::path directory_;
};

TEST_F(OnnxRuntimeEngine, Yolov8LayoutMatchesIndependentComputation) {
  test::SyntheticModelOptions options;
  options.width = 96;
  options.height = 64;
  const auto engine = onnxruntime_engine(test::write_yolov8_model(directory_ / "v8.onnx", options));
  EXPECT_EQ(engine->report().backend, "onnxruntime");
  EXPECT_EQ(engine->report().targets, std::vector<std::string>{"CPUExecutionProvider"});
  ASSERT_EQ(engine->inputs().size(), 1u);
  EXPECT_EQ(engine->inputs()[0].fixed_shape(), (Shape{1, 3, 64, 96}));
  EXPECT_EQ(engine->outputs()[0].fixed_shape(), (Shape{1, 84, test::anchor_count(96, 64)}));

  const auto image = random_image(ElementType::float32, {1, 3, 64, 96}, 7, "images");
  std::vector<Tensor> outputs;
  engine->run({&image, 1}, outputs);
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].name, "output0");
  EXPECT_EQ(outputs[0].type(), ElementType::float32);
  expect_layout(outputs[0], yolo_anchors(image, 1), 84, true, 1e-5);
}

// Workers share one session: sharers run at the same time, from their own threads, and each
// gets exactly what the original computes for its input.
TEST_F(OnnxRuntimeEngine, SharersRunConcurrentlyOnOneSession) {
  test::SyntheticModelOptions options;
  options.width = 96;
  options.height = 64;
  const auto original = onnxruntime_engine(test::write_yolov8_model(directory_ / "shared.onnx", options));
  std::vector<std::unique_ptr<Engine>> sharers;
  for (int worker = 0; worker < 3; ++worker) {
    sharers.push_back(original->share());
    ASSERT_NE(sharers.back(), nullptr);
    EXPECT_EQ(sharers.back()->report().targets, original->report().targets);
    EXPECT_EQ(sharers.back()->outputs()[0].fixed_shape(), original->outputs()[0].fixed_shape());
  }
  std::vector<Tensor> images;
  std::vector<std::vector<Tensor>> expected(sharers.size());
  for (std::size_t worker = 0; worker < sharers.size(); ++worker) {
    images.push_back(random_image(ElementType::float32, {1, 3, 64, 96}, static_cast<unsigned>(11 + worker), "images"));
    original->run({&images[worker], 1}, expected[worker]);
  }
  std::vector<std::vector<Tensor>> produced(sharers.size());
  std::vector<std::thread> threads;
  for (std::size_t worker = 0; worker < sharers.size(); ++worker) {
    threads.emplace_back([&, worker] {
      for (int repeat = 0; repeat < 20; ++repeat) sharers[worker]->run({&images[worker], 1}, produced[worker]);
    });
  }
  for (auto& thread : threads) thread.join();
  for (std::size_t worker = 0; worker < sharers.size(); ++worker) {
    const auto got = produced[worker][0].view<float>();
    const auto want = expected[worker][0].view<float>();
    ASSERT_EQ(got.size(), want.size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin())) << "worker " << worker;
  }
}

TEST_F(OnnxRuntimeEngine, Yolov5Float16InAndOut) {
  test::SyntheticModelOptions options;
  options.io_type = ElementType::float16;
  options.classes = 3;
  const auto engine = onnxruntime_engine(test::write_yolov5_model(directory_ / "v5.onnx", options));
  EXPECT_EQ(engine->inputs()[0].type, ElementType::float16);
  EXPECT_EQ(engine->outputs()[0].type, ElementType::float16);
  const auto image = random_image(ElementType::float16, {1, 3, 64, 64}, 11);
  std::vector<Tensor> outputs;
  engine->run({&image, 1}, outputs);
  ASSERT_EQ(outputs[0].type(), ElementType::float16);
  expect_layout(outputs[0], yolo_anchors(image, 3), 8, false, 2e-3);  // float16 output rounding
}

TEST_F(OnnxRuntimeEngine, YoloxRows) {
  const auto engine = onnxruntime_engine(test::write_yolox_model(directory_ / "yolox.onnx"));
  const auto image = random_image(ElementType::float32, {1, 3, 64, 64}, 3);
  std::vector<Tensor> outputs;
  engine->run({&image, 1}, outputs);
  EXPECT_EQ(outputs[0].name, "output");
  expect_layout(outputs[0], yolo_anchors(image, 1), 85, false, 1e-5);
}

TEST_F(OnnxRuntimeEngine, Yolov10RowsFromTheGlobalMean) {
  const auto engine = onnxruntime_engine(test::write_yolov10_model(directory_ / "v10.onnx"));
  const auto image = random_image(ElementType::float32, {1, 3, 64, 64}, 5);
  std::vector<Tensor> outputs;
  engine->run({&image, 1}, outputs);
  ASSERT_EQ(outputs[0].shape(), (Shape{1, 300, 6}));
  double sum = 0;
  for (const auto value : image.view<float>()) sum += value;
  const double mean = sum / static_cast<double>(image.element_count());
  for (int k = 0; k < 300; ++k) {
    for (int c = 0; c < 6; ++c) {
      const double expected = expected_value(mean, c) + k / 300.0;
      ASSERT_NEAR(outputs[0].data<float>()[k * 6 + c], expected, 1e-5) << "row " << k << " column " << c;
    }
  }
}

TEST_F(OnnxRuntimeEngine, NanodetSixOutputsInOrder) {
  test::SyntheticModelOptions options;
  options.classes = 4;
  const auto engine = onnxruntime_engine(test::write_nanodet_model(directory_ / "nanodet.onnx", options));
  const auto image = random_image(ElementType::float32, {1, 3, 64, 64}, 9);
  std::vector<Tensor> outputs;
  engine->run({&image, 1}, outputs);
  ASSERT_EQ(outputs.size(), 6u);
  const auto means = channel_means(image, false);
  const std::vector<std::size_t> strides{8, 16, 32};
  for (std::size_t index = 0; index < 6; ++index) {
    const auto stride = strides[index % 3];
    const bool classes = index < 3;
    EXPECT_EQ(outputs[index].name,
              std::string(classes ? "cls_pred_stride_" : "dis_pred_stride_") + std::to_string(stride));
    expect_layout(outputs[index], block_means(means, 64, 64, stride), classes ? 4 : 32, false, 1e-5);
  }
}

TEST_F(OnnxRuntimeEngine, BlazeFaceChannelsLast) {
  const auto engine = onnxruntime_engine(test::write_blazeface_model(directory_ / "face.onnx"));
  EXPECT_EQ(engine->inputs()[0].fixed_shape(), (Shape{1, 128, 128, 3}));
  const auto image = random_image(ElementType::float32, {1, 128, 128, 3}, 13);
  std::vector<Tensor> outputs;
  engine->run({&image, 1}, outputs);
  ASSERT_EQ(outputs.size(), 2u);
  const auto means = channel_means(image, true);
  std::vector<double> anchors;
  for (const auto& [stride, per_cell] : std::vector<std::pair<std::size_t, int>>{{8, 2}, {16, 6}}) {
    for (const auto block : block_means(means, 128, 128, stride)) anchors.insert(anchors.end(), per_cell, block);
  }
  ASSERT_EQ(anchors.size(), 896u);
  EXPECT_EQ(outputs[0].name, "regressors");
  expect_layout(outputs[0], anchors, 16, false, 1e-5);
  EXPECT_EQ(outputs[1].name, "classificators");
  expect_layout(outputs[1], anchors, 1, false, 1e-5);
}

TEST_F(OnnxRuntimeEngine, DynamicModelTakesTheRequestedSizeAndReportsFixedOutputs) {
  test::SyntheticModelOptions options;
  options.dynamic = true;
  EngineOptions engine_options;
  engine_options.input_width = 128;
  engine_options.input_height = 64;
  const auto engine =
      onnxruntime_engine(test::write_yolov8_model(directory_ / "dynamic.onnx", options), engine_options);
  EXPECT_EQ(engine->inputs()[0].fixed_shape(), (Shape{1, 3, 64, 128}));
  EXPECT_EQ(engine->outputs()[0].fixed_shape(), (Shape{1, 84, test::anchor_count(128, 64)}));
  const auto& notes = engine->report().notes;
  EXPECT_TRUE(std::any_of(notes.begin(), notes.end(),
                          [](const std::string& note) { return note.find("from options") != std::string::npos; }));
  const auto image = random_image(ElementType::float32, {1, 3, 64, 128}, 17);
  std::vector<Tensor> outputs;
  engine->run({&image, 1}, outputs);
  expect_layout(outputs[0], yolo_anchors(image, 1), 84, true, 1e-5);
}

// Anonymous dims (no dim_param) cannot be pinned by name before the session exists, so
// the output shape is learned from one run on zeros at construction.
TEST_F(OnnxRuntimeEngine, AnonymousDynamicDimsAreLearnedFromOneRun) {
  test::SyntheticModelOptions options;
  options.dynamic = true;
  const auto written = test::write_yolov8_model(directory_ / "named.onnx", options);
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(test::read_bytes(written)));
  for (auto* value : {model.mutable_graph()->mutable_input(0), model.mutable_graph()->mutable_output(0)}) {
    for (auto& dim : *value->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim()) {
      if (dim.has_dim_param()) dim.clear_dim_param();
    }
  }
  std::string bytes;
  ASSERT_TRUE(model.SerializeToString(&bytes));
  test::write_bytes(directory_ / "anonymous.onnx", bytes);
  EngineOptions engine_options;
  engine_options.input_width = 96;
  engine_options.input_height = 32;
  const auto engine = onnxruntime_engine(directory_ / "anonymous.onnx", engine_options);
  EXPECT_EQ(engine->outputs()[0].fixed_shape(), (Shape{1, 84, test::anchor_count(96, 32)}));
  const auto& notes = engine->report().notes;
  EXPECT_TRUE(std::any_of(notes.begin(), notes.end(), [](const std::string& note) {
    return note.find("learned") != std::string::npos;
  })) << ::testing::PrintToString(notes);
  std::vector<Tensor> outputs;
  for (const std::uint32_t seed : {21u, 22u}) {
    const auto image = random_image(ElementType::float32, {1, 3, 32, 96}, seed);
    engine->run({&image, 1}, outputs);
    expect_layout(outputs[0], yolo_anchors(image, 1), 84, true, 1e-5);
  }
}

TEST_F(OnnxRuntimeEngine, ReusesTheCallersOutputBuffers) {
  const auto engine = onnxruntime_engine(test::write_yolox_model(directory_ / "yolox.onnx"));
  std::vector<Tensor> outputs;
  const auto first = random_image(ElementType::float32, {1, 3, 64, 64}, 1);
  engine->run({&first, 1}, outputs);
  const std::byte* buffer = outputs[0].bytes();
  const auto second = random_image(ElementType::float32, {1, 3, 64, 64}, 2);
  engine->run({&second, 1}, outputs);
  EXPECT_EQ(outputs[0].bytes(), buffer);
  expect_layout(outputs[0], yolo_anchors(second, 1), 85, false, 1e-5);
  // A fresh input tensor (new address) is bound anew.
  const auto third = random_image(ElementType::float32, {1, 3, 64, 64}, 3);
  engine->run({&third, 1}, outputs);
  expect_layout(outputs[0], yolo_anchors(third, 1), 85, false, 1e-5);
}

TEST_F(OnnxRuntimeEngine, RefusesMismatchedInputs) {
  const auto engine = onnxruntime_engine(test::write_yolox_model(directory_ / "yolox.onnx"));
  std::vector<Tensor> outputs;
  const auto wrong_type = random_image(ElementType::float16, {1, 3, 64, 64}, 1);
  EXPECT_THROW(engine->run({&wrong_type, 1}, outputs), Error);
  const auto wrong_shape = random_image(ElementType::float32, {1, 3, 64, 32}, 1);
  try {
    engine->run({&wrong_shape, 1}, outputs);
    FAIL() << "wrong shape accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("[1, 3, 64, 32]"), std::string::npos) << error.what();
  }
  const auto wrong_name = random_image(ElementType::float32, {1, 3, 64, 64}, 1, "pixels");
  EXPECT_THROW(engine->run({&wrong_name, 1}, outputs), Error);
  EXPECT_THROW(engine->run({}, outputs), Error);
  const auto good = random_image(ElementType::float32, {1, 3, 64, 64}, 1, "images");
  EXPECT_NO_THROW(engine->run({&good, 1}, outputs));
}

TEST_F(OnnxRuntimeEngine, IntegerTypesAndInputsMatchedByName) {
  test::ModelBuilder builder;
  builder.input("pixels", ElementType::uint8, {1, 3, 4, 4})
      .input("offset", ElementType::int64, {1})
      .node("Cast", {"pixels"}, {"pixels_float"}, {test::Attribute::integer("to", onnx::TensorProto_DataType_FLOAT)})
      .node("Cast", {"offset"}, {"offset_float"}, {test::Attribute::integer("to", onnx::TensorProto_DataType_FLOAT)})
      .node("Add", {"pixels_float", "offset_float"}, {"shifted"})
      .node("ArgMax", {"pixels"}, {"brightest_channel"},
            {test::Attribute::integer("axis", 1), test::Attribute::integer("keepdims", 0)})
      .node("Cast", {"shifted"}, {"shifted_int32"}, {test::Attribute::integer("to", onnx::TensorProto_DataType_INT32)})
      .output("shifted", ElementType::float32, {1, 3, 4, 4})
      .output("brightest_channel", ElementType::int64, {1, 4, 4})
      .output("shifted_int32", ElementType::int32, {1, 3, 4, 4});
  const auto engine = onnxruntime_engine(builder.write(directory_ / "integers.onnx"));
  ASSERT_EQ(engine->inputs().size(), 2u);
  EXPECT_EQ(engine->inputs()[0].type, ElementType::uint8);
  EXPECT_EQ(engine->inputs()[1].type, ElementType::int64);

  std::vector<Tensor> inputs(2);
  inputs[0].reshape(ElementType::int64, {1});  // given in the other order, matched by name
  inputs[0].name = "offset";
  inputs[0].data<std::int64_t>()[0] = 1000;
  inputs[1].reshape(ElementType::uint8, {1, 3, 4, 4});
  inputs[1].name = "pixels";
  for (std::size_t index = 0; index < 48; ++index) {
    inputs[1].data<std::uint8_t>()[index] = static_cast<std::uint8_t>((index * 37) % 251);
  }
  std::vector<Tensor> outputs;
  engine->run(inputs, outputs);
  ASSERT_EQ(outputs.size(), 3u);
  EXPECT_EQ(outputs[1].type(), ElementType::int64);
  EXPECT_EQ(outputs[2].type(), ElementType::int32);
  for (std::size_t pixel = 0; pixel < 16; ++pixel) {
    std::int64_t brightest = 0;
    for (std::int64_t channel = 1; channel < 3; ++channel) {
      if (inputs[1].data<std::uint8_t>()[channel * 16 + pixel] >
          inputs[1].data<std::uint8_t>()[brightest * 16 + pixel]) {
        brightest = channel;
      }
    }
    EXPECT_EQ(outputs[1].data<std::int64_t>()[pixel], brightest) << pixel;
  }
  for (std::size_t index = 0; index < 48; ++index) {
    const int expected = inputs[1].data<std::uint8_t>()[index] + 1000;
    EXPECT_EQ(outputs[0].data<float>()[index], static_cast<float>(expected));
    EXPECT_EQ(outputs[2].data<std::int32_t>()[index], expected);
  }
}

TEST_F(OnnxRuntimeEngine, MissingProviderFallsBackToCpuAndSaysSo) {
  EngineOptions options;
  options.target = "cuda";
  const auto path = test::write_yolox_model(directory_ / "yolox.onnx");
  const auto engine = onnxruntime_engine(path, options);
  EXPECT_EQ(engine->report().backend, "onnxruntime");
  EXPECT_EQ(engine->report().targets, std::vector<std::string>{"CPUExecutionProvider"});
  const auto& notes = engine->report().notes;
  EXPECT_TRUE(std::any_of(notes.begin(), notes.end(), [](const std::string& note) {
    return note.find("'cuda' is not in this build") != std::string::npos;
  })) << ::testing::PrintToString(notes);

  EngineOptions ordered;
  ordered.providers = {"tensorrt", "CUDAExecutionProvider", "openvino", "cpu"};
  ordered.intra_op_threads = 1;
  const auto fallback = onnxruntime_engine(path, ordered);
  EXPECT_EQ(fallback->report().targets, std::vector<std::string>{"CPUExecutionProvider"});
  EXPECT_GE(fallback->report().notes.size(), 3u);
  const auto image = random_image(ElementType::float32, {1, 3, 64, 64}, 4);
  std::vector<Tensor> outputs;
  fallback->run({&image, 1}, outputs);
  expect_layout(outputs[0], yolo_anchors(image, 1), 85, false, 1e-5);
}

TEST_F(OnnxRuntimeEngine, UnknownProviderNameIsAConfigurationError) {
  EngineOptions options;
  options.providers = {"cdua"};
  try {
    onnxruntime_engine(test::write_yolox_model(directory_ / "yolox.onnx"), options);
    FAIL() << "unknown provider accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("'cdua'"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("cuda"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace detflow
