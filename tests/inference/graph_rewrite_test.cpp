// Graph rewrites for OpenCV 4.6 (inference/src/graph_rewrite.h), each on a small graph built
// here with the onnx protobuf classes: the original runs on ONNX Runtime (when built in), the
// rewritten one on OpenCV (and on ONNX Runtime where it is still valid ONNX), and they must agree.
// The real-model tests at the end measure the same on ../shared/models.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#ifdef DETFLOW_HAVE_ONNXRUNTIME
#include <onnxruntime_cxx_api.h>
#endif

#include "detflow/error.h"
#include "detflow/tensor.h"
#include "graph_building.h"
#include "graph_rewrite.h"
#include "opencv_custom_layers.h"
#include "shared_data.h"

namespace detflow {
namespace {

using test::add_node;
using test::bytes_of;
using test::decision_for;
using test::declare;
using test::set_int;
using test::Shape;

onnx::ModelProto new_model(std::int64_t opset = 13) { return test::new_model(opset, "rewrite_test"); }

// ---- building graphs ---------------------------------------------------------------------------

template <typename T>
void add_initializer(onnx::GraphProto& graph, const std::string& name, int element_type, const Shape& dims,
                     const std::vector<T>& values) {
  auto* tensor = graph.add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(element_type);
  for (const auto dim : dims) tensor->add_dims(dim);
  tensor->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
}

void add_float(onnx::GraphProto& graph, const std::string& name, const Shape& dims, const std::vector<float>& values) {
  add_initializer(graph, name, onnx::TensorProto::FLOAT, dims, values);
}

void add_float16(onnx::GraphProto& graph, const std::string& name, const Shape& dims,
                 const std::vector<float>& values) {
  std::vector<std::uint16_t> halves;
  for (const float value : values) halves.push_back(float_to_half(value));
  add_initializer(graph, name, onnx::TensorProto::FLOAT16, dims, halves);
}

void set_ints(onnx::NodeProto& node, const std::string& name, const Shape& values) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::INTS);
  for (const auto value : values) attribute->add_ints(value);
}

const onnx::AttributeProto* attribute_of(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& attribute : node.attribute()) {
    if (attribute.name() == name) return &attribute;
  }
  return nullptr;
}

onnx::ModelProto parsed(const std::string& bytes) {
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(bytes));
  return model;
}

std::vector<float> random_values(std::size_t count, float low, float high, unsigned seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(count);
  for (auto& value : values) value = distribution(generator);
  return values;
}

// ---- running graphs ----------------------------------------------------------------------------

struct Feed {
  std::string name;
  Shape shape;
  std::vector<float> values;
  bool as_float16 = false;  // ONNX Runtime only: pass the values as float16
};

using Outputs = std::vector<std::vector<float>>;

double max_abs_difference(const std::vector<float>& left, const std::vector<float>& right) {
  EXPECT_EQ(left.size(), right.size());
  double largest = 0.0;
  for (std::size_t index = 0; index < std::min(left.size(), right.size()); ++index) {
    largest = std::max(largest, static_cast<double>(std::abs(left[index] - right[index])));
  }
  return largest;
}

// Largest |left - right| / max(1, |right|): absolute for scores in [0, 1], relative for pixel
// coordinates in the hundreds where float32 has ~1e-5 resolution.
double max_scaled_difference(const std::vector<float>& left, const std::vector<float>& right) {
  EXPECT_EQ(left.size(), right.size());
  double largest = 0.0;
  for (std::size_t index = 0; index < std::min(left.size(), right.size()); ++index) {
    const double scale = std::max(1.0, static_cast<double>(std::abs(right[index])));
    largest = std::max(largest, std::abs(static_cast<double>(left[index]) - right[index]) / scale);
  }
  return largest;
}

Outputs run_opencv(const std::string& bytes, const std::vector<Feed>& feeds) {
  detail::register_opencv_custom_layers();  // the int8 rewrite uses detflow's layers
  cv::dnn::Net net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  std::vector<cv::Mat> blobs;
  for (const auto& feed : feeds) {
    std::vector<int> sizes(feed.shape.begin(), feed.shape.end());
    blobs.emplace_back(static_cast<int>(sizes.size()), sizes.data(), CV_32F, const_cast<float*>(feed.values.data()));
    net.setInput(blobs.back(), feed.name);
  }
  std::vector<cv::String> names;
  const onnx::ModelProto model = parsed(bytes);
  for (const auto& output : model.graph().output()) names.push_back(output.name());
  std::vector<cv::Mat> produced;
  net.forward(produced, names);
  Outputs outputs;
  for (const auto& mat : produced) {
    cv::Mat as_float;
    mat.convertTo(as_float, CV_32F);
    outputs.emplace_back(as_float.ptr<float>(), as_float.ptr<float>() + as_float.total());
  }
  return outputs;
}

#ifdef DETFLOW_HAVE_ONNXRUNTIME
Ort::Env& ort_environment() {
  static Ort::Env environment(ORT_LOGGING_LEVEL_ERROR, "detflow-rewrite-tests");
  return environment;
}

Outputs run_onnxruntime(const std::string& bytes, const std::vector<Feed>& feeds) {
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(2);
  Ort::Session session(ort_environment(), bytes.data(), bytes.size(), options);
  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<std::vector<std::uint16_t>> halves(feeds.size());
  std::vector<Ort::Value> values;
  std::vector<const char*> input_names;
  for (std::size_t index = 0; index < feeds.size(); ++index) {
    const Feed& feed = feeds[index];
    input_names.push_back(feed.name.c_str());
    if (feed.as_float16) {
      for (const float value : feed.values) halves[index].push_back(float_to_half(value));
      values.push_back(Ort::Value::CreateTensor(memory, halves[index].data(), halves[index].size() * 2,
                                                feed.shape.data(), feed.shape.size(),
                                                ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16));
    } else {
      values.push_back(Ort::Value::CreateTensor<float>(memory, const_cast<float*>(feed.values.data()),
                                                       feed.values.size(), feed.shape.data(), feed.shape.size()));
    }
  }
  Ort::AllocatorWithDefaultOptions allocator;
  std::vector<std::string> output_names;
  for (std::size_t index = 0; index < session.GetOutputCount(); ++index) {
    output_names.emplace_back(session.GetOutputNameAllocated(index, allocator).get());
  }
  std::vector<const char*> output_pointers;
  for (const auto& name : output_names) output_pointers.push_back(name.c_str());
  auto results = session.Run(Ort::RunOptions{nullptr}, input_names.data(), values.data(), values.size(),
                             output_pointers.data(), output_pointers.size());
  Outputs outputs;
  for (auto& result : results) {
    const auto info = result.GetTensorTypeAndShapeInfo();
    const std::size_t count = info.GetElementCount();
    std::vector<float> converted(count);
    if (info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
      const auto* bits = result.GetTensorData<std::uint16_t>();
      for (std::size_t index = 0; index < count; ++index) converted[index] = half_to_float(bits[index]);
    } else {
      const float* data = result.GetTensorData<float>();
      std::copy(data, data + count, converted.begin());
    }
    outputs.push_back(std::move(converted));
  }
  return outputs;
}
#define DETFLOW_REQUIRE_ONNXRUNTIME() (void)0
#else
#define DETFLOW_REQUIRE_ONNXRUNTIME() GTEST_SKIP() << "ONNX Runtime is not built in: equivalence not checked"
#endif

// ---- 1. static input dims ----------------------------------------------------------------------

onnx::ModelProto symbolic_input_model() {
  auto model = new_model();
  auto& graph = *model.mutable_graph();
  auto* input = graph.add_input();
  input->set_name("images");
  auto* tensor_type = input->mutable_type()->mutable_tensor_type();
  tensor_type->set_elem_type(onnx::TensorProto::FLOAT);
  tensor_type->mutable_shape()->add_dim()->set_dim_param("batch");
  tensor_type->mutable_shape()->add_dim()->set_dim_value(3);
  tensor_type->mutable_shape()->add_dim()->set_dim_param("height");
  tensor_type->mutable_shape()->add_dim();  // unknown, no name
  add_float(graph, "two", {1}, {2.0f});
  add_node(graph, "Mul", {"images", "two"}, {"doubled"});
  declare(graph.add_output(), "doubled", onnx::TensorProto::FLOAT, {});
  return model;
}

TEST(GraphRewrite, FixesSymbolicInputDimsToTheDecidedShape) {
  const auto result = detail::rewrite_for_opencv(symbolic_input_model(), decision_for("images", {1, 3, 8, 10}));
  ASSERT_EQ(result.applied.size(), 1u);
  EXPECT_NE(result.applied[0].find("[batch, 3, height, ?] -> [1, 3, 8, 10]"), std::string::npos) << result.applied[0];
  const auto rewritten = parsed(result.model_bytes);
  const auto& dims = rewritten.graph().input(0).type().tensor_type().shape().dim();
  ASSERT_EQ(dims.size(), 4);
  EXPECT_EQ(dims[0].dim_value(), 1);
  EXPECT_EQ(dims[2].dim_value(), 8);
  EXPECT_EQ(dims[3].dim_value(), 10);

  Feed feed{"images", {1, 3, 8, 10}, random_values(240, -1.0f, 1.0f, 1)};
  const auto produced = run_opencv(result.model_bytes, {feed});
  ASSERT_EQ(produced.size(), 1u);
  for (std::size_t index = 0; index < feed.values.size(); ++index) {
    ASSERT_FLOAT_EQ(produced[0][index], 2.0f * feed.values[index]);
  }
}

TEST(GraphRewrite, RejectsADecisionThatContradictsTheModel) {
  EXPECT_THROW(detail::rewrite_for_opencv(symbolic_input_model(), decision_for("images", {1, 3, 8})), Error);
  EXPECT_THROW(detail::rewrite_for_opencv(symbolic_input_model(), decision_for("images", {1, 4, 8, 8})), Error);
  EXPECT_THROW(detail::rewrite_for_opencv(symbolic_input_model(), decision_for("pixels", {1, 3, 8, 8})), Error);
  try {
    detail::rewrite_for_opencv(symbolic_input_model(), decision_for("images", {1, 4, 8, 8}));
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos);
    EXPECT_NE(message.find("images"), std::string::npos) << message;
  }
}

// ---- 5. Split sizes input -> attribute ---------------------------------------------------------

onnx::ModelProto uneven_split_model() {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, {1, 6, 4});
  add_initializer(graph, "sizes", onnx::TensorProto::INT64, {3}, std::vector<std::int64_t>{1, 2, 3});
  auto& split = add_node(graph, "Split", {"x", "sizes"}, {"a", "b", "c"});
  set_int(split, "axis", 1);
  declare(graph.add_output(), "a", onnx::TensorProto::FLOAT, {1, 1, 4});
  declare(graph.add_output(), "b", onnx::TensorProto::FLOAT, {1, 2, 4});
  declare(graph.add_output(), "c", onnx::TensorProto::FLOAT, {1, 3, 4});
  return model;
}

TEST(GraphRewrite, SplitSizesInputBecomesAttribute) {
  const auto original = uneven_split_model();
  const auto result = detail::rewrite_for_opencv(original, decision_for("x", {1, 6, 4}));
  ASSERT_EQ(result.applied.size(), 1u);
  EXPECT_NE(result.applied[0].find("Split: 1 nodes"), std::string::npos) << result.applied[0];
  const auto rewritten = parsed(result.model_bytes);
  const auto& split = rewritten.graph().node(0);
  EXPECT_EQ(split.input_size(), 1);
  const auto* sizes = attribute_of(split, "split");
  ASSERT_NE(sizes, nullptr);
  EXPECT_EQ(Shape(sizes->ints().begin(), sizes->ints().end()), (Shape{1, 2, 3}));

  // What OpenCV computes from the rewritten graph is what the input form means: slices of 1, 2
  // and 3 channels (OpenCV 4.6 reading the original would cut three equal parts of 2).
  Feed feed{"x", {1, 6, 4}, random_values(24, -1.0f, 1.0f, 2)};
  const auto produced = run_opencv(result.model_bytes, {feed});
  ASSERT_EQ(produced.size(), 3u);
  const std::vector<float> expected_c(feed.values.begin() + 12, feed.values.end());
  EXPECT_EQ(produced[0], std::vector<float>(feed.values.begin(), feed.values.begin() + 4));
  EXPECT_EQ(produced[2], expected_c);
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  const auto reference = run_onnxruntime(bytes_of(original), {feed});
  ASSERT_EQ(reference.size(), produced.size());
  for (std::size_t index = 0; index < reference.size(); ++index) EXPECT_EQ(produced[index], reference[index]);
#endif
}

TEST(GraphRewrite, SplitWithComputedSizesIsRefused) {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, {1, 6, 4});
  declare(graph.add_input(), "sizes", onnx::TensorProto::INT64, {2});
  add_node(graph, "Split", {"x", "sizes"}, {"a", "b"});
  declare(graph.add_output(), "a", onnx::TensorProto::FLOAT, {});
  declare(graph.add_output(), "b", onnx::TensorProto::FLOAT, {});
  EXPECT_THROW(detail::split_input_to_attribute(model), Error);
}

// ---- 4. broadcast constants --------------------------------------------------------------------

TEST(GraphRewrite, BroadcastConstantIsMaterialisedAtFullShape) {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, {1, 4, 6});
  const auto strides = random_values(6, 0.5f, 2.0f, 3);
  add_float(graph, "strides", {1, 6}, strides);  // [1, N] against [1, K, N], as YOLOv8/v10 heads have
  add_float(graph, "offset", {1, 4, 1}, {1.0f, 2.0f, 3.0f, 4.0f});
  add_node(graph, "Mul", {"x", "strides"}, {"scaled"});
  add_node(graph, "Add", {"offset", "scaled"}, {"y"});
  declare(graph.add_output(), "y", onnx::TensorProto::FLOAT, {1, 4, 6});

  auto rewritten = model;
  const auto note = detail::expand_broadcast_constants(rewritten);
  ASSERT_TRUE(note.has_value());
  EXPECT_NE(note->find("Mul [1, 6] -> [1, 4, 6]"), std::string::npos) << *note;
  EXPECT_EQ(note->find("Add"), std::string::npos) << "per-channel [1, K, 1] needs no rewrite: " << *note;
  const auto& mul = rewritten.graph().node(0);
  const onnx::TensorProto* full = nullptr;
  for (const auto& tensor : rewritten.graph().initializer()) {
    if (tensor.name() == mul.input(1)) full = &tensor;
  }
  ASSERT_NE(full, nullptr);
  EXPECT_EQ(Shape(full->dims().begin(), full->dims().end()), (Shape{1, 4, 6}));

  Feed feed{"x", {1, 4, 6}, random_values(24, -1.0f, 1.0f, 4)};
  const auto produced = run_opencv(bytes_of(rewritten), {feed});
  ASSERT_EQ(produced.size(), 1u);
  for (std::size_t index = 0; index < 24; ++index) {
    const float expected = static_cast<float>(index / 6 + 1) + feed.values[index] * strides[index % 6];
    ASSERT_FLOAT_EQ(produced[0][index], expected) << index;
  }
  EXPECT_ANY_THROW(run_opencv(bytes_of(model), {feed})) << "OpenCV now broadcasts [1, N]: the rewrite may go";
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  const auto before = run_onnxruntime(bytes_of(model), {feed});
  const auto after = run_onnxruntime(bytes_of(rewritten), {feed});
  EXPECT_EQ(before, after);
  EXPECT_LE(max_abs_difference(produced[0], before[0]), 1e-6);
#endif
}

// ---- 4. Div with a constant numerator ---------------------------------------------------------

TEST(GraphRewrite, ConstantDividedByTensorBecomesMulByReciprocal) {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, {1, 4, 6});
  const auto numerators = random_values(24, 1.0f, 5.0f, 8);
  add_float(graph, "numerators", {1, 4, 6}, numerators);
  add_node(graph, "Div", {"numerators", "x"}, {"y"});
  declare(graph.add_output(), "y", onnx::TensorProto::FLOAT, {1, 4, 6});
  const Feed feed{"x", {1, 4, 6}, random_values(24, 0.5f, 2.0f, 9)};
  auto expected = numerators;
  for (std::size_t index = 0; index < expected.size(); ++index) expected[index] /= feed.values[index];
  EXPECT_GT(max_abs_difference(run_opencv(bytes_of(model), {feed})[0], expected), 0.1)
      << "OpenCV now divides a constant by a tensor correctly: the rewrite may go";

  const auto result = detail::rewrite_for_opencv(model, decision_for("x", {1, 4, 6}));
  ASSERT_EQ(result.applied.size(), 1u);
  EXPECT_NE(result.applied[0].find("Reciprocal"), std::string::npos) << result.applied[0];
  const auto produced = run_opencv(result.model_bytes, {feed});
  ASSERT_EQ(produced.size(), 1u);
  EXPECT_LE(max_scaled_difference(produced[0], expected), 1e-6);
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  EXPECT_LE(max_scaled_difference(produced[0], run_onnxruntime(bytes_of(model), {feed})[0]), 1e-6);
  EXPECT_LE(max_scaled_difference(run_onnxruntime(result.model_bytes, {feed})[0], expected), 1e-6);
#endif
}

// ---- 2. float16 -> float32 ---------------------------------------------------------------------

onnx::ModelProto float16_model() {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT16, {1, 2, 3, 3});
  add_float16(graph, "weight", {2, 2, 1, 1}, {0.5f, -1.25f, 2.0f, 0.75f});
  add_float16(graph, "bias", {2}, {0.125f, -0.5f});
  add_float(graph, "shift", {1}, {1.5f});
  set_ints(add_node(graph, "Conv", {"x", "weight", "bias"}, {"convolved"}), "kernel_shape", {1, 1});
  // The pattern fp16 exports use around float-only ops: up to float, compute, back to float16.
  set_int(add_node(graph, "Cast", {"convolved"}, {"as_float"}), "to", onnx::TensorProto::FLOAT);
  add_node(graph, "Add", {"as_float", "shift"}, {"shifted"});
  set_int(add_node(graph, "Cast", {"shifted"}, {"y"}), "to", onnx::TensorProto::FLOAT16);
  declare(graph.add_output(), "y", onnx::TensorProto::FLOAT16, {1, 2, 3, 3});
  return model;
}

TEST(GraphRewrite, Float16ModelBecomesFloat32) {
  const auto original = float16_model();
  auto rewritten = original;
  const auto note = detail::convert_float16_to_float32(rewritten);
  ASSERT_TRUE(note.has_value());
  EXPECT_NE(note->find("2 initializers"), std::string::npos) << *note;
  EXPECT_NE(note->find("1 Cast(to=float16)"), std::string::npos) << *note;
  EXPECT_EQ(rewritten.graph().input(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  EXPECT_EQ(rewritten.graph().output(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  for (const auto& tensor : rewritten.graph().initializer()) EXPECT_EQ(tensor.data_type(), onnx::TensorProto::FLOAT);

  // Inputs exactly representable in float16, so both graphs see the same numbers.
  auto values = random_values(18, -2.0f, 2.0f, 5);
  for (auto& value : values) value = half_to_float(float_to_half(value));
  const Feed feed{"x", {1, 2, 3, 3}, values};
  const auto produced = run_opencv(bytes_of(rewritten), {feed});
  ASSERT_EQ(produced.size(), 1u);
  const float weights[2][2] = {{0.5f, -1.25f}, {2.0f, 0.75f}};
  const float biases[2] = {0.125f, -0.5f};
  for (std::size_t channel = 0; channel < 2; ++channel) {
    for (std::size_t pixel = 0; pixel < 9; ++pixel) {
      const float expected =
          weights[channel][0] * values[pixel] + weights[channel][1] * values[9 + pixel] + biases[channel] + 1.5f;
      ASSERT_NEAR(produced[0][channel * 9 + pixel], expected, 1e-5);
    }
  }
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  Feed half_feed = feed;
  half_feed.as_float16 = true;
  const auto before = run_onnxruntime(bytes_of(original), {half_feed});
  const auto after = run_onnxruntime(bytes_of(rewritten), {feed});
  EXPECT_LE(max_abs_difference(produced[0], after[0]), 1e-5);
  // The original rounds to float16 (11-bit mantissa) on the way: |error| <= 2^-11 relative.
  EXPECT_LE(max_scaled_difference(after[0], before[0]), 2e-3);
#endif
}

// ---- 6. Conv kernel_shape ---------------------------------------------------------------------

TEST(GraphRewrite, ConvolutionWithoutKernelShapeGetsItFromTheWeight) {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, {1, 1, 4, 4});
  add_float(graph, "weight", {1, 1, 2, 3}, {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f});
  add_node(graph, "Conv", {"x", "weight"}, {"y"});  // valid ONNX: kernel_shape is optional
  declare(graph.add_output(), "y", onnx::TensorProto::FLOAT, {1, 1, 3, 2});
  EXPECT_ANY_THROW(run_opencv(bytes_of(model), {Feed{"x", {1, 1, 4, 4}, random_values(16, 0.0f, 1.0f, 7)}}));

  const auto result = detail::rewrite_for_opencv(model, decision_for("x", {1, 1, 4, 4}));
  ASSERT_EQ(result.applied.size(), 1u);
  const onnx::ModelProto rewritten = parsed(result.model_bytes);
  const auto* kernel = attribute_of(rewritten.graph().node(0), "kernel_shape");
  ASSERT_NE(kernel, nullptr);
  EXPECT_EQ(Shape(kernel->ints().begin(), kernel->ints().end()), (Shape{2, 3}));
  const Feed feed{"x", {1, 1, 4, 4}, random_values(16, 0.0f, 1.0f, 7)};
  const auto produced = run_opencv(result.model_bytes, {feed});
  ASSERT_EQ(produced.size(), 1u);
  ASSERT_EQ(produced[0].size(), 6u);
  for (std::size_t row = 0; row < 3; ++row) {
    for (std::size_t column = 0; column < 2; ++column) {
      float expected = 0.0f;
      for (std::size_t kernel_row = 0; kernel_row < 2; ++kernel_row) {
        for (std::size_t kernel_column = 0; kernel_column < 3; ++kernel_column) {
          expected += static_cast<float>(kernel_row * 3 + kernel_column + 1) *
                      feed.values[(row + kernel_row) * 4 + column + kernel_column];
        }
      }
      EXPECT_NEAR(produced[0][row * 2 + column], expected, 1e-5);
    }
  }
}

// ---- 6. dynamic int8 -> integer arithmetic in float -----------------------------------------------

// x -> DynamicQuantizeLinear -> ConvInteger / MatMulInteger -> Cast -> Mul(x_scale * w_scale)
// [-> Add bias], exactly as onnxruntime.quantization.quantize_dynamic writes it.
struct QuantizedCase {
  onnx::ModelProto model;
  onnx::ModelProto float_reference;  // the same layer with w = (w_q - zero_point) * scale
  Shape input_shape;
};

QuantizedCase quantized_convolution() {
  const std::vector<std::int8_t> weight_q{12, -7, 100, -128, 5, 0, 33, -61, 90, 17, -3, 127};  // [2, 3, 1, 2]
  const std::int8_t zero_point = 3;
  const float scale = 0.0125f;
  const std::vector<float> bias{0.25f, -0.75f};
  QuantizedCase result;
  result.input_shape = {1, 3, 4, 5};
  result.model = new_model(13);
  auto& graph = *result.model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, result.input_shape);
  add_initializer(graph, "w_q", onnx::TensorProto::INT8, {2, 3, 1, 2}, weight_q);
  add_initializer(graph, "w_zero_point", onnx::TensorProto::INT8, {}, std::vector<std::int8_t>{zero_point});
  add_float(graph, "w_scale", {}, {scale});
  add_float(graph, "bias", {1, 2, 1, 1}, bias);
  add_node(graph, "DynamicQuantizeLinear", {"x"}, {"x_q", "x_scale", "x_zero_point"});
  add_node(graph, "Mul", {"x_scale", "w_scale"}, {"scales"});
  auto& conv = add_node(graph, "ConvInteger", {"x_q", "w_q", "x_zero_point", "w_zero_point"}, {"y_int"});
  set_ints(conv, "kernel_shape", {1, 2});
  set_ints(conv, "pads", {0, 1, 0, 0});
  set_int(add_node(graph, "Cast", {"y_int"}, {"y_cast"}), "to", onnx::TensorProto::FLOAT);
  add_node(graph, "Mul", {"y_cast", "scales"}, {"y_scaled"});
  add_node(graph, "Add", {"y_scaled", "bias"}, {"y"});
  declare(graph.add_output(), "y", onnx::TensorProto::FLOAT, {1, 2, 4, 5});

  result.float_reference = new_model(13);
  auto& reference = *result.float_reference.mutable_graph();
  declare(reference.add_input(), "x", onnx::TensorProto::FLOAT, result.input_shape);
  std::vector<float> weight;
  for (const auto q : weight_q) weight.push_back(static_cast<float>(q - zero_point) * scale);
  add_float(reference, "w", {2, 3, 1, 2}, weight);
  add_float(reference, "b", {2}, bias);
  auto& float_conv = add_node(reference, "Conv", {"x", "w", "b"}, {"y"});
  set_ints(float_conv, "kernel_shape", {1, 2});
  set_ints(float_conv, "pads", {0, 1, 0, 0});
  declare(reference.add_output(), "y", onnx::TensorProto::FLOAT, {1, 2, 4, 5});
  return result;
}

QuantizedCase quantized_matrix_product() {
  const std::vector<std::int8_t> weight_q{1, -2, 3, -4, 5, 6, -7, 8, -9, 10, 11, 12};  // [4, 3]
  const std::vector<std::int8_t> zero_points{0, 2, -1};                                // per column
  const std::vector<float> scales{0.02f, 0.05f, 0.1f};
  QuantizedCase result;
  result.input_shape = {1, 2, 4};
  result.model = new_model(13);
  auto& graph = *result.model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, result.input_shape);
  add_initializer(graph, "w_q", onnx::TensorProto::INT8, {4, 3}, weight_q);
  add_initializer(graph, "w_zero_point", onnx::TensorProto::INT8, {3}, zero_points);
  add_float(graph, "w_scale", {3}, scales);
  add_node(graph, "DynamicQuantizeLinear", {"x"}, {"x_q", "x_scale", "x_zero_point"});
  add_node(graph, "Mul", {"w_scale", "x_scale"}, {"scales"});
  add_node(graph, "MatMulInteger", {"x_q", "w_q", "x_zero_point", "w_zero_point"}, {"y_int"});
  set_int(add_node(graph, "Cast", {"y_int"}, {"y_cast"}), "to", onnx::TensorProto::FLOAT);
  add_node(graph, "Mul", {"scales", "y_cast"}, {"y"});
  declare(graph.add_output(), "y", onnx::TensorProto::FLOAT, {1, 2, 3});

  result.float_reference = new_model(13);
  auto& reference = *result.float_reference.mutable_graph();
  declare(reference.add_input(), "x", onnx::TensorProto::FLOAT, result.input_shape);
  std::vector<float> weight;
  for (std::size_t index = 0; index < weight_q.size(); ++index) {
    const std::size_t column = index % 3;
    weight.push_back(static_cast<float>(weight_q[index] - zero_points[column]) * scales[column]);
  }
  add_float(reference, "w", {4, 3}, weight);
  add_node(reference, "MatMul", {"x", "w"}, {"y"});
  declare(reference.add_output(), "y", onnx::TensorProto::FLOAT, {1, 2, 3});
  return result;
}

// reproduce_dynamic_int8 turns the chain into DetflowDynamicQuantize -> float Conv/MatMul on the
// integers -> DetflowIntegerRescale (-> the bias Add): integer sums that float holds exactly and
// the same float roundings as ONNX Runtime's kernels, so OpenCV must give ONNX Runtime's output
// on the original int8 graph bit for bit (graph_rewrite.h, pass 6).
void expect_reproduces_onnxruntime(const QuantizedCase& quantized, const std::string& float_op, bool bias) {
  auto rewritten = quantized.model;
  const auto note = detail::reproduce_dynamic_int8(rewritten);
  ASSERT_TRUE(note.has_value());
  EXPECT_NE(note->find(std::string("1 DynamicQuantizeLinear -> ") + detail::dynamic_quantize_op), std::string::npos)
      << *note;
  // No integer, cast or scale-product node is left: quantise, float op, rescale (, bias Add).
  std::vector<std::string> operators;
  for (const auto& node : rewritten.graph().node()) operators.push_back(node.op_type());
  std::vector<std::string> expected{detail::dynamic_quantize_op, float_op, detail::integer_rescale_op};
  if (bias) expected.emplace_back("Add");
  EXPECT_EQ(operators, expected);

  const std::size_t count = static_cast<std::size_t>(
      std::accumulate(quantized.input_shape.begin(), quantized.input_shape.end(), 1LL, std::multiplies<>()));
  // Inputs of several ranges: all positive (zero point 0), mixed, and all negative (zero point 255).
  const std::vector<std::pair<float, float>> ranges{{0.0f, 2.0f}, {-1.0f, 3.0f}, {-5.0f, -0.5f}};
  for (std::size_t trial = 0; trial < ranges.size(); ++trial) {
    SCOPED_TRACE("inputs in [" + std::to_string(ranges[trial].first) + ", " + std::to_string(ranges[trial].second) +
                 "]");
    const Feed feed{"x", quantized.input_shape,
                    random_values(count, ranges[trial].first, ranges[trial].second, 6 + static_cast<unsigned>(trial))};
    const auto produced = run_opencv(bytes_of(rewritten), {feed});
    ASSERT_EQ(produced.size(), 1u);
    // Sanity against the unquantised float layer: close (x is quantised to uint8 over
    // [min(x, 0), max(x, 0)], half a step per input times the sum of |w| over one output's
    // inputs), but not equal, or the activations were not quantised at all.
    const auto unquantized = run_opencv(bytes_of(quantized.float_reference), {feed});
    float largest_output = 0.0f;
    for (const float value : unquantized[0]) largest_output = std::max(largest_output, std::abs(value));
    const double quantization_effect = max_abs_difference(produced[0], unquantized[0]);
    EXPECT_GT(quantization_effect, 0.0) << "activations were not quantised";
    EXPECT_LE(quantization_effect, 0.05 * largest_output);
    DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
    const auto original = run_onnxruntime(bytes_of(quantized.model), {feed});
    ASSERT_EQ(original.size(), 1u);
    ASSERT_EQ(produced[0].size(), original[0].size());
    std::size_t differing = 0;
    for (std::size_t element = 0; element < original[0].size(); ++element) {
      if (produced[0][element] != original[0][element]) {
        if (++differing <= 3) {
          ADD_FAILURE() << "element " << element << ": OpenCV " << produced[0][element] << ", ONNX Runtime "
                        << original[0][element];
        }
      }
    }
    EXPECT_EQ(differing, 0u) << "of " << original[0].size() << " outputs differ from ONNX Runtime's; max |diff| "
                             << max_abs_difference(produced[0], original[0]);
#endif
  }
}

TEST(GraphRewrite, DynamicQuantizedConvOnOpenCvEqualsOnnxRuntimeBitForBit) {
  expect_reproduces_onnxruntime(quantized_convolution(), "Conv", true);
}

TEST(GraphRewrite, DynamicQuantizedMatMulWithPerColumnScalesOnOpenCvEqualsOnnxRuntimeBitForBit) {
  expect_reproduces_onnxruntime(quantized_matrix_product(), "MatMul", false);
}

TEST(GraphRewrite, ModelWithoutThosePatternsIsLeftAlone) {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, {1, 2, 4, 4});
  add_float(graph, "scale", {1, 2, 1, 1}, {2.0f, 3.0f});
  add_node(graph, "Mul", {"x", "scale"}, {"y"});
  declare(graph.add_output(), "y", onnx::TensorProto::FLOAT, {1, 2, 4, 4});
  const auto result = detail::rewrite_for_opencv(model, decision_for("x", {1, 2, 4, 4}));
  EXPECT_TRUE(result.applied.empty());
  EXPECT_EQ(result.model_bytes, bytes_of(model));
}

// ---- 6b. MatMul of two computed tensors ----------------------------------------------------------

// The attention of Ultralytics' C2PSA block (YOLO11, YOLOv10) in miniature, as its ONNX export
// writes it: qkv [1, heads * (2 * key + head), H, W] reshaped to [1, heads, 2 * key + head, H * W],
// split into q, k, v on axis 2, attn = Softmax(q^T k * scale), out = v attn^T reshaped back.
constexpr std::int64_t attention_heads = 2;
constexpr std::int64_t attention_key = 2;
constexpr std::int64_t attention_head = 4;
constexpr std::int64_t attention_side = 2;  // H = W
constexpr std::int64_t attention_tokens = attention_side * attention_side;
constexpr std::int64_t attention_rows = 2 * attention_key + attention_head;
const float attention_scale = 1.0f / std::sqrt(static_cast<float>(attention_key));

onnx::ModelProto attention_model() {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  const Shape input_shape{1, attention_heads * attention_rows, attention_side, attention_side};
  declare(graph.add_input(), "qkv", onnx::TensorProto::FLOAT, input_shape);
  add_initializer(graph, "heads_shape", onnx::TensorProto::INT64, {4},
                  std::vector<std::int64_t>{1, attention_heads, attention_rows, attention_tokens});
  add_initializer(graph, "sizes", onnx::TensorProto::INT64, {3},
                  std::vector<std::int64_t>{attention_key, attention_key, attention_head});
  add_float(graph, "scale", {}, {attention_scale});
  add_initializer(graph, "image_shape", onnx::TensorProto::INT64, {4},
                  std::vector<std::int64_t>{1, attention_heads * attention_head, attention_side, attention_side});
  add_node(graph, "Reshape", {"qkv", "heads_shape"}, {"heads"});
  set_int(add_node(graph, "Split", {"heads", "sizes"}, {"q", "k", "v"}), "axis", 2);
  set_ints(add_node(graph, "Transpose", {"q"}, {"q_t"}), "perm", {0, 1, 3, 2});
  add_node(graph, "MatMul", {"q_t", "k"}, {"logits"});
  add_node(graph, "Mul", {"logits", "scale"}, {"scaled"});
  set_int(add_node(graph, "Softmax", {"scaled"}, {"attention"}), "axis", -1);
  set_ints(add_node(graph, "Transpose", {"attention"}, {"attention_t"}), "perm", {0, 1, 3, 2});
  add_node(graph, "MatMul", {"v", "attention_t"}, {"mixed"});
  add_node(graph, "Reshape", {"mixed", "image_shape"}, {"y"});
  declare(graph.add_output(), "y", onnx::TensorProto::FLOAT,
          {1, attention_heads * attention_head, attention_side, attention_side});
  return model;
}

// The same attention in double precision, straight from the definition.
std::vector<float> attention_by_hand(const std::vector<float>& qkv) {
  std::vector<float> result(static_cast<std::size_t>(attention_heads * attention_head * attention_tokens));
  for (std::int64_t head = 0; head < attention_heads; ++head) {
    auto at = [&](std::int64_t row, std::int64_t token) {  // [heads, rows, tokens]
      return static_cast<double>(
          qkv[static_cast<std::size_t>((head * attention_rows + row) * attention_tokens + token)]);
    };
    for (std::int64_t query = 0; query < attention_tokens; ++query) {
      std::vector<double> weights(static_cast<std::size_t>(attention_tokens));
      double largest = -1e300;
      for (std::int64_t key = 0; key < attention_tokens; ++key) {
        double dot = 0.0;
        for (std::int64_t channel = 0; channel < attention_key; ++channel) {
          dot += at(channel, query) * at(attention_key + channel, key);
        }
        weights[static_cast<std::size_t>(key)] = dot * attention_scale;
        largest = std::max(largest, weights[static_cast<std::size_t>(key)]);
      }
      double total = 0.0;
      for (auto& weight : weights) total += weight = std::exp(weight - largest);
      for (std::int64_t channel = 0; channel < attention_head; ++channel) {
        double mixed = 0.0;
        for (std::int64_t key = 0; key < attention_tokens; ++key) {
          mixed += at(2 * attention_key + channel, key) * weights[static_cast<std::size_t>(key)] / total;
        }
        result[static_cast<std::size_t>((head * attention_head + channel) * attention_tokens + query)] =
            static_cast<float>(mixed);
      }
    }
  }
  return result;
}

TEST(GraphRewrite, AttentionKeepsItsScaleOnOpenCv) {
  const auto model = attention_model();
  const Shape input_shape{1, attention_heads * attention_rows, attention_side, attention_side};
  const Feed feed{
      "qkv", input_shape,
      random_values(static_cast<std::size_t>(attention_heads * attention_rows * attention_tokens), -2.0f, 2.0f, 21)};
  const auto expected = attention_by_hand(feed.values);

  // Without the MatMul pass (the Split pass alone makes the graph loadable) OpenCV fuses the scale
  // Mul into the first MatMul and never applies it.
  auto split_only = model;
  ASSERT_TRUE(detail::split_input_to_attribute(split_only).has_value());
  EXPECT_GT(max_abs_difference(run_opencv(bytes_of(split_only), {feed})[0], expected), 1e-2)
      << "OpenCV now applies an activation fused into a MatMul of two computed tensors: the rewrite may go";

  const auto result = detail::rewrite_for_opencv(model, decision_for("qkv", input_shape));
  ASSERT_EQ(result.applied.size(), 2u);  // MatMul, Split
  EXPECT_NE(result.applied[0].find("MatMul of two computed tensors: 2 nodes"), std::string::npos) << result.applied[0];
  const auto rewritten = parsed(result.model_bytes);
  int host_matmuls = 0;
  for (const auto& node : rewritten.graph().node()) {
    EXPECT_NE(node.op_type(), "Transpose") << "both Transposes fold into the products";
    if (node.op_type() != detail::mlas_matmul_op) continue;
    ++host_matmuls;
    EXPECT_EQ(attribute_of(node, "transA")->i() + attribute_of(node, "transB")->i(), 1) << node.name();
  }
  EXPECT_EQ(host_matmuls, 2);
  const auto produced = run_opencv(result.model_bytes, {feed});
  ASSERT_EQ(produced.size(), 1u);
  EXPECT_LE(max_abs_difference(produced[0], expected), 1e-5);
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  const auto reference = run_onnxruntime(bytes_of(model), {feed});
  EXPECT_LE(max_abs_difference(reference[0], expected), 1e-5);
  EXPECT_LE(max_abs_difference(produced[0], reference[0]), 1e-5);
#endif
}

// Not only the scale: any activation OpenCV fuses into its two-input MatMul is lost.
TEST(GraphRewrite, MatMulOfComputedTensorsKeepsTheActivationAfterIt) {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "a", onnx::TensorProto::FLOAT, {1, 2, 3, 4});
  declare(graph.add_input(), "b", onnx::TensorProto::FLOAT, {1, 2, 4, 5});
  add_node(graph, "MatMul", {"a", "b"}, {"product"});
  add_node(graph, "Relu", {"product"}, {"y"});
  declare(graph.add_output(), "y", onnx::TensorProto::FLOAT, {1, 2, 3, 5});
  const std::vector<Feed> feeds{{"a", {1, 2, 3, 4}, random_values(24, -1.0f, 1.0f, 22)},
                                {"b", {1, 2, 4, 5}, random_values(40, -1.0f, 1.0f, 23)}};
  std::vector<float> expected(30);
  for (std::size_t batch = 0; batch < 2; ++batch) {
    for (std::size_t row = 0; row < 3; ++row) {
      for (std::size_t column = 0; column < 5; ++column) {
        double sum = 0.0;
        for (std::size_t inner = 0; inner < 4; ++inner) {
          sum += static_cast<double>(feeds[0].values[batch * 12 + row * 4 + inner]) *
                 feeds[1].values[batch * 20 + inner * 5 + column];
        }
        expected[batch * 15 + row * 5 + column] = static_cast<float>(std::max(sum, 0.0));
      }
    }
  }
  ASSERT_TRUE(std::any_of(expected.begin(), expected.end(), [](float value) { return value == 0.0f; }));
  EXPECT_GT(max_abs_difference(run_opencv(bytes_of(model), feeds)[0], expected), 1e-2)
      << "OpenCV now applies a Relu fused into a MatMul of two computed tensors: the rewrite may go";

  const auto result = detail::rewrite_for_opencv(model, decision_for("a", {1, 2, 3, 4}));
  ASSERT_EQ(result.applied.size(), 1u);
  EXPECT_LE(max_abs_difference(run_opencv(result.model_bytes, feeds)[0], expected), 1e-5);
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  EXPECT_LE(max_abs_difference(run_onnxruntime(bytes_of(model), feeds)[0], expected), 1e-5);
#endif
}

TEST(GraphRewrite, MatMulWithAOneDimensionalOperandIsLeftToOpenCv) {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "a", onnx::TensorProto::FLOAT, {3, 4});
  declare(graph.add_input(), "b", onnx::TensorProto::FLOAT, {4});
  add_node(graph, "MatMul", {"a", "b"}, {"y"});
  declare(graph.add_output(), "y", onnx::TensorProto::FLOAT, {3});
  auto rewritten = model;
  EXPECT_FALSE(detail::computed_matmuls_to_host_layer(rewritten).has_value());
  EXPECT_EQ(bytes_of(rewritten), bytes_of(model));
}

// ---- real models -------------------------------------------------------------------------------

onnx::ModelProto read_model(const std::filesystem::path& path) {
  onnx::ModelProto model;
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(model.ParseFromIstream(&file)) << path;
  return model;
}

// bus.jpg resized (no letterbox) to size x size, RGB, / 255, NCHW: the Ultralytics convention.
Feed bus_image(const std::filesystem::path& image_path, const std::string& input, int size) {
  cv::Mat image = cv::imread(image_path.string());
  EXPECT_FALSE(image.empty()) << image_path;
  cv::resize(image, image, cv::Size(size, size));
  const cv::Mat blob = cv::dnn::blobFromImage(image, 1.0 / 255.0, cv::Size(), cv::Scalar(), true);
  Feed feed{input, {1, 3, size, size}, {}};
  feed.values.assign(blob.ptr<float>(), blob.ptr<float>() + blob.total());
  return feed;
}

TEST(GraphRewriteRealModels, Float16YoloV5RunsOnOpenCvAsItsFloat32Conversion) {
  DETFLOW_SHARED_FILE(model_path, "models/yolov5n_fp16.onnx");
  DETFLOW_SHARED_FILE(image_path, "media/bus.jpg");
  const auto original = read_model(model_path);
  const auto result = detail::rewrite_for_opencv(original, decision_for("images", {1, 3, 640, 640}));
  ASSERT_EQ(result.applied.size(), 2u);  // float16 -> float32, Split
  const Feed feed = bus_image(image_path, "images", 640);
  const auto produced = run_opencv(result.model_bytes, {feed});
  ASSERT_EQ(produced.size(), 1u);
  ASSERT_EQ(produced[0].size(), 25200u * 85u);
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  auto float32 = original;
  ASSERT_TRUE(detail::convert_float16_to_float32(float32).has_value());
  const auto reference = run_onnxruntime(bytes_of(float32), {feed});
  const double scaled = max_scaled_difference(produced[0], reference[0]);
  std::cout << "yolov5n_fp16: OpenCV (rewritten) vs ONNX Runtime (float32 conversion): max abs diff "
            << max_abs_difference(produced[0], reference[0]) << ", max diff / max(1, |ref|) " << scaled << '\n';
  EXPECT_LE(scaled, 1e-3);
  Feed half_feed = feed;
  half_feed.as_float16 = true;
  const auto original_output = run_onnxruntime(bytes_of(original), {half_feed});
  const double float16_scaled = max_scaled_difference(produced[0], original_output[0]);
  std::cout << "yolov5n_fp16: OpenCV vs ONNX Runtime on the float16 original: max abs diff "
            << max_abs_difference(produced[0], original_output[0]) << ", scaled " << float16_scaled << '\n';
  EXPECT_LE(float16_scaled, 1e-2);  // float16 arithmetic inside ONNX Runtime
#endif
}

// YOLO11 (C2PSA attention) layer by layer: every node output becomes a graph output (typed by
// onnx shape inference), both engines run that model on bus.jpg and each tensor is compared. With
// every tensor requested OpenCV fuses nothing around them, so the final output is also checked on
// the model as the engine loads it (fusion on), which is where OpenCV 4.6 lost the attention scale.
TEST(GraphRewriteRealModels, Yolo11EveryLayerMatchesOnnxRuntime) {
  DETFLOW_SHARED_FILE(model_path, "models/yolo11n_320.onnx");
  DETFLOW_SHARED_FILE(image_path, "media/bus.jpg");
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  const auto original = read_model(model_path);
  const auto decision = decision_for("images", {1, 3, 320, 320});
  const Feed feed = bus_image(image_path, "images", 320);

  auto every_layer = original;
  {
    auto inferred = original;
    onnx::shape_inference::InferShapes(inferred);
    std::map<std::string, onnx::ValueInfoProto> declared;
    for (const auto& info : inferred.graph().value_info()) declared[info.name()] = info;
    for (const auto& output : original.graph().output()) declared.erase(output.name());  // already outputs
    auto& graph = *every_layer.mutable_graph();
    for (const auto& node : original.graph().node()) {
      for (const auto& output : node.output()) {
        const auto found = declared.find(output);
        if (found == declared.end() || found->second.type().tensor_type().elem_type() != onnx::TensorProto::FLOAT)
          continue;
        *graph.add_output() = found->second;
      }
    }
  }
  const int tensors = every_layer.graph().output_size();
  ASSERT_GT(tensors, 300);
  const auto reference = run_onnxruntime(bytes_of(every_layer), {feed});
  const auto produced = run_opencv(detail::rewrite_for_opencv(every_layer, decision).model_bytes, {feed});
  ASSERT_EQ(produced.size(), reference.size());
  std::vector<std::pair<double, std::string>> worst;
  for (int index = 0; index < tensors; ++index) {
    const auto& name = every_layer.graph().output(index).name();
    const double scaled =
        max_scaled_difference(produced[static_cast<std::size_t>(index)], reference[static_cast<std::size_t>(index)]);
    worst.emplace_back(scaled, name);
    EXPECT_LE(scaled, 1e-3) << name;
  }
  std::sort(worst.rbegin(), worst.rend());
  std::cout << "yolo11n_320, " << tensors << " tensors: largest |OpenCV - ONNX Runtime| / max(1, |ref|):";
  for (std::size_t index = 0; index < 3; ++index) std::cout << ' ' << worst[index].second << ' ' << worst[index].first;
  std::cout << '\n';

  const auto fused = run_opencv(detail::rewrite_for_opencv(original, decision).model_bytes, {feed});
  const auto final_reference = run_onnxruntime(bytes_of(original), {feed});
  const double final_scaled = max_scaled_difference(fused[0], final_reference[0]);
  std::cout << "yolo11n_320 output as the engine loads it: max abs diff "
            << max_abs_difference(fused[0], final_reference[0]) << ", scaled " << final_scaled << '\n';
  EXPECT_LE(final_scaled, 1e-3);
#endif
}

// yolov10n_int8 (dynamic int8 and the end-to-end head) is checked in opencv_custom_layers_test.cpp
// and, through the engine, in opencv_engine_test.cpp.

}  // namespace
}  // namespace detflow
