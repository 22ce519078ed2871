// detflow's OpenCV custom layers (inference/src/opencv_custom_layers.h): each one on a small graph
// built here with the onnx protobuf classes, run by ONNX Runtime as written (standard ops) and by
// OpenCV after rewrite_for_opencv routed the node to the custom layer; results must be equal
// (these ops are exact, so bit for bit). Then yolov10n_int8 from ../shared: the quantise
// layer against ONNX Runtime's DynamicQuantizeLinear on real activations, and the end-to-end head
// against ONNX Runtime's on the same input.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#ifdef DETFLOW_HAVE_ONNXRUNTIME
#include <onnxruntime_cxx_api.h>
#endif

#include "detflow/error.h"
#include "detflow/pre/preprocess.h"
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

onnx::ModelProto new_model(std::int64_t opset = 13) { return test::new_model(opset, "custom_layers_test"); }

// ---- building graphs ---------------------------------------------------------------------------

void add_int64(onnx::GraphProto& graph, const std::string& name, const Shape& dims,
               const std::vector<std::int64_t>& values) {
  auto* tensor = graph.add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(onnx::TensorProto::INT64);
  for (const auto dim : dims) tensor->add_dims(dim);
  for (const auto value : values) tensor->add_int64_data(value);
}

void add_float(onnx::GraphProto& graph, const std::string& name, const Shape& dims, const std::vector<float>& values) {
  auto* tensor = graph.add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(onnx::TensorProto::FLOAT);
  for (const auto dim : dims) tensor->add_dims(dim);
  for (const auto value : values) tensor->add_float_data(value);
}

// ---- running graphs ----------------------------------------------------------------------------

struct Feed {
  std::string name;
  Shape shape;
  std::vector<float> values;
};

using Outputs = std::vector<std::vector<float>>;  // every output as floats (integers converted)

Outputs run_opencv(const std::string& bytes, const std::vector<Feed>& feeds, const std::vector<std::string>& names) {
  detail::register_opencv_custom_layers();
  cv::dnn::Net net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  for (const auto& feed : feeds) {
    std::vector<int> sizes(feed.shape.begin(), feed.shape.end());
    net.setInput(cv::Mat(static_cast<int>(sizes.size()), sizes.data(), CV_32F, const_cast<float*>(feed.values.data())),
                 feed.name);
  }
  std::vector<cv::Mat> produced;
  net.forward(produced, std::vector<cv::String>(names.begin(), names.end()));
  Outputs outputs;
  for (const auto& mat : produced) {
    EXPECT_EQ(mat.type(), CV_32F);
    outputs.emplace_back(mat.ptr<float>(), mat.ptr<float>() + mat.total());
  }
  return outputs;
}

// Rewrites for OpenCV (checking the node went to a custom layer) and runs there.
Outputs run_rewritten(const onnx::ModelProto& model, const std::vector<Feed>& feeds, const std::string& expected_note) {
  const auto result = detail::rewrite_for_opencv(model, decision_for(feeds.front().name, feeds.front().shape));
  std::string notes;
  for (const auto& line : result.applied) notes += line + "\n";
  EXPECT_NE(notes.find(expected_note), std::string::npos) << notes;
  std::vector<std::string> names;
  for (const auto& output : model.graph().output()) names.push_back(output.name());
  return run_opencv(result.model_bytes, feeds, names);
}

#ifdef DETFLOW_HAVE_ONNXRUNTIME
Ort::Env& ort_environment() {
  static Ort::Env environment(ORT_LOGGING_LEVEL_ERROR, "detflow-custom-layer-tests");
  return environment;
}

struct OrtOutputs {
  Outputs values;
  std::vector<ONNXTensorElementDataType> types;
};

OrtOutputs run_onnxruntime(const std::string& bytes, const std::vector<Feed>& feeds,
                           const std::vector<std::string>& names) {
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(2);
  Ort::Session session(ort_environment(), bytes.data(), bytes.size(), options);
  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<Ort::Value> values;
  std::vector<const char*> input_names;
  for (const auto& feed : feeds) {
    input_names.push_back(feed.name.c_str());
    values.push_back(Ort::Value::CreateTensor<float>(memory, const_cast<float*>(feed.values.data()), feed.values.size(),
                                                     feed.shape.data(), feed.shape.size()));
  }
  std::vector<const char*> output_names;
  for (const auto& name : names) output_names.push_back(name.c_str());
  auto results = session.Run(Ort::RunOptions{nullptr}, input_names.data(), values.data(), values.size(),
                             output_names.data(), output_names.size());
  OrtOutputs outputs;
  for (auto& result : results) {
    const auto info = result.GetTensorTypeAndShapeInfo();
    const std::size_t count = info.GetElementCount();
    std::vector<float> converted(count);
    switch (info.GetElementType()) {
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
        std::transform(result.GetTensorData<std::int64_t>(), result.GetTensorData<std::int64_t>() + count,
                       converted.begin(), [](std::int64_t value) { return static_cast<float>(value); });
        break;
      case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
        std::transform(result.GetTensorData<std::uint8_t>(), result.GetTensorData<std::uint8_t>() + count,
                       converted.begin(), [](std::uint8_t value) { return static_cast<float>(value); });
        break;
      default:
        std::copy(result.GetTensorData<float>(), result.GetTensorData<float>() + count, converted.begin());
    }
    outputs.values.push_back(std::move(converted));
    outputs.types.push_back(info.GetElementType());
  }
  return outputs;
}

Outputs run_onnxruntime(const onnx::ModelProto& model, const std::vector<Feed>& feeds) {
  std::vector<std::string> names;
  for (const auto& output : model.graph().output()) names.push_back(output.name());
  return run_onnxruntime(bytes_of(model), feeds, names).values;
}
#define DETFLOW_REQUIRE_ONNXRUNTIME() (void)0
#else
#define DETFLOW_REQUIRE_ONNXRUNTIME() GTEST_SKIP() << "ONNX Runtime is not built in: nothing to compare with"
#endif

[[maybe_unused]] void expect_identical(const Outputs& produced, const Outputs& expected) {
  ASSERT_EQ(produced.size(), expected.size());
  for (std::size_t output = 0; output < produced.size(); ++output) {
    ASSERT_EQ(produced[output].size(), expected[output].size()) << "output " << output;
    for (std::size_t index = 0; index < produced[output].size(); ++index) {
      EXPECT_EQ(produced[output][index], expected[output][index]) << "output " << output << " element " << index;
    }
  }
}

// ---- the layers on synthetic graphs ------------------------------------------------------------

TEST(OpenCvCustomLayers, TopKBreaksTiesByTheLowerIndexLikeOnnxRuntime) {
  // Rows with repeated values, including ties straddling the K boundary.
  const Feed feed{"x", {3, 8}, {1,  3, 3,  2, 3, 0,  5, 5,  //
                                4,  4, 4,  4, 4, 4,  4, 4,  //
                                -1, 7, -1, 7, 0, -2, 7, 0}};
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, feed.shape);
  add_int64(graph, "k3", {1}, {3});
  add_int64(graph, "k2", {1}, {2});
  auto& largest = add_node(graph, "TopK", {"x", "k3"}, {"largest_values", "largest_indices"});
  set_int(largest, "axis", -1);
  auto& smallest = add_node(graph, "TopK", {"x", "k2"}, {"smallest_values", "smallest_indices"});
  set_int(smallest, "axis", 0);
  set_int(smallest, "largest", 0);
  declare(graph.add_output(), "largest_values", onnx::TensorProto::FLOAT, {3, 3});
  declare(graph.add_output(), "largest_indices", onnx::TensorProto::INT64, {3, 3});
  declare(graph.add_output(), "smallest_values", onnx::TensorProto::FLOAT, {2, 8});
  declare(graph.add_output(), "smallest_indices", onnx::TensorProto::INT64, {2, 8});

  const Outputs produced = run_rewritten(model, {feed}, "2 TopK");
  ASSERT_EQ(produced.size(), 4u);
  // The spec's tie rule, by hand on the first two rows: 5, 5 (indices 6, 7) then the first 3 (1).
  EXPECT_EQ(produced[1][0], 6.0f);
  EXPECT_EQ(produced[1][1], 7.0f);
  EXPECT_EQ(produced[1][2], 1.0f);
  EXPECT_EQ(produced[1][3], 0.0f);  // all equal: the lowest indices
  EXPECT_EQ(produced[1][5], 2.0f);
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  expect_identical(produced, run_onnxruntime(model, {feed}));
#endif
}

TEST(OpenCvCustomLayers, GatherElementsOnAxis1MatchesOnnxRuntime) {
  // Computed indices (a TopK's, as in YOLOv10's head) and constant ones with negative values.
  std::vector<float> values(2 * 6 * 3);
  std::mt19937 generator(11);
  std::uniform_real_distribution<float> distribution(-5.0f, 5.0f);
  for (auto& value : values) value = distribution(generator);
  const Feed feed{"x", {2, 6, 3}, values};
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, feed.shape);
  add_int64(graph, "k", {1}, {4});
  add_int64(graph, "fixed_indices", {2, 2, 3}, {0, -1, 5, 2, -6, 3, 1, 1, 1, -2, 4, 0});
  set_int(add_node(graph, "TopK", {"x", "k"}, {"top", "top_indices"}), "axis", 1);
  add_node(graph, "Neg", {"x"}, {"negated"});
  set_int(add_node(graph, "GatherElements", {"negated", "top_indices"}, {"picked"}), "axis", 1);
  set_int(add_node(graph, "GatherElements", {"x", "fixed_indices"}, {"fixed"}), "axis", -2);
  declare(graph.add_output(), "picked", onnx::TensorProto::FLOAT, {2, 4, 3});
  declare(graph.add_output(), "fixed", onnx::TensorProto::FLOAT, {2, 2, 3});

  const Outputs produced = run_rewritten(model, {feed}, "2 GatherElements");
  ASSERT_EQ(produced.size(), 2u);
  // By hand: fixed[0][1][1] = x[0][-6 + 6 = 0][1], fixed[1][0][1] = x[1][1][1].
  EXPECT_EQ(produced[1][4], values[1]);
  EXPECT_EQ(produced[1][7], values[18 + 3 + 1]);
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  expect_identical(produced, run_onnxruntime(model, {feed}));
#endif
}

TEST(OpenCvCustomLayers, ModIntegerDivGatherAndTileMatchOnnxRuntime) {
  // Integers as YOLOv10 makes them: TopK indices (a permutation of 0..11), and their negatives.
  // (Not order - 6: OpenCV 4.6's own Sub reads an int64 constant as float bits, i.e. as 0.)
  const Feed feed{"x", {1, 12}, {0.5f, 9.0f, -3.0f, 4.0f, 7.5f, 1.0f, -8.0f, 2.0f, 6.0f, -1.0f, 3.5f, 11.0f}};
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, feed.shape);
  add_int64(graph, "k", {1}, {12});
  add_int64(graph, "four", {}, {4});
  add_int64(graph, "minus_four", {}, {-4});
  add_int64(graph, "repeats", {3}, {2, 1, 3});
  add_float(graph, "three_quarters", {}, {0.75f});
  add_float(graph, "table", {12, 2},
            {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23});
  set_int(add_node(graph, "TopK", {"x", "k"}, {"sorted", "order"}), "axis", -1);
  add_node(graph, "Neg", {"order"}, {"negative"});
  add_node(graph, "Mod", {"negative", "four"}, {"mod_positive_divisor"});
  add_node(graph, "Mod", {"order", "minus_four"}, {"mod_negative_divisor"});
  set_int(add_node(graph, "Mod", {"negative", "four"}, {"fmod_integer"}), "fmod", 1);
  set_int(add_node(graph, "Mod", {"x", "three_quarters"}, {"fmod_float"}), "fmod", 1);
  add_node(graph, "Div", {"negative", "four"}, {"quotient"});
  add_node(graph, "Div", {"order", "minus_four"}, {"quotient_negative_divisor"});
  add_node(graph, "Gather", {"table", "order"}, {"rows"});  // computed indices, axis 0: [1, 12, 2]
  add_node(graph, "Tile", {"rows", "repeats"}, {"tiled"});
  for (const char* name :
       {"mod_positive_divisor", "mod_negative_divisor", "fmod_integer", "quotient", "quotient_negative_divisor"}) {
    declare(graph.add_output(), name, onnx::TensorProto::INT64, {1, 12});
  }
  declare(graph.add_output(), "fmod_float", onnx::TensorProto::FLOAT, {1, 12});
  declare(graph.add_output(), "tiled", onnx::TensorProto::FLOAT, {2, 12, 6});

  const Outputs produced = run_rewritten(model, {feed}, "2 integer Div, 1 Gather, 4 Mod, 1 Tile");
  ASSERT_EQ(produced.size(), 7u);
  // By hand for the first element: the largest x is 11, at index 11:
  // -11 mod 4 = 1 and 11 mod -4 = -1 (the divisor's sign), fmod(-11, 4) = -3 (the dividend's),
  // -11 / 4 = -2 and 11 / -4 = -2 (truncated); rows[0][0] = table[11] = {22, 23}.
  EXPECT_EQ(produced[0][0], 1.0f);
  EXPECT_EQ(produced[1][0], -1.0f);
  EXPECT_EQ(produced[2][0], -3.0f);
  EXPECT_EQ(produced[3][0], -2.0f);
  EXPECT_EQ(produced[4][0], -2.0f);
  EXPECT_EQ(produced[6][0], 22.0f);
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  expect_identical(produced, run_onnxruntime(model, {feed}));
#endif
}

TEST(OpenCvCustomLayers, ComputedTopKIsRefusedByTheRewrite) {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, {1, 8});
  add_node(graph, "Shape", {"x"}, {"shape"});
  add_int64(graph, "one", {1}, {1});
  add_node(graph, "Div", {"shape", "one"}, {"k"});
  set_int(add_node(graph, "TopK", {"x", "k"}, {"values", "indices"}), "axis", 1);
  declare(graph.add_output(), "values", onnx::TensorProto::FLOAT, {1, 8});
  try {
    detail::rewrite_for_opencv(model, decision_for("x", {1, 8}));
    FAIL() << "a TopK with a computed K was rewritten";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("constant K"), std::string::npos) << error.what();
  }
}

// ---- dynamic quantisation -------------------------------------------------------------------------

// x -> DetflowDynamicQuantize -> (q - zero_point, scale), for OpenCV.
std::string dynamic_quantize_graph(std::int64_t count) {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, {1, count});
  add_node(graph, detail::dynamic_quantize_op, {"x"}, {"steps", "scale"});
  declare(graph.add_output(), "steps", onnx::TensorProto::FLOAT, {1, count});
  declare(graph.add_output(), "scale", onnx::TensorProto::FLOAT, {1, 1});
  return bytes_of(model);
}

// x -> DynamicQuantizeLinear -> DequantizeLinear -> y, the standard ops, for ONNX Runtime.
[[maybe_unused]] onnx::ModelProto quantize_dequantize_graph(std::int64_t count) {
  auto model = new_model(13);
  auto& graph = *model.mutable_graph();
  declare(graph.add_input(), "x", onnx::TensorProto::FLOAT, {1, count});
  add_node(graph, "DynamicQuantizeLinear", {"x"}, {"q", "scale", "zero_point"});
  add_node(graph, "DequantizeLinear", {"q", "scale", "zero_point"}, {"y"});
  declare(graph.add_output(), "y", onnx::TensorProto::FLOAT, {1, count});
  return model;
}

// The dequantised value (q - zero_point) * scale from the integer-form layer's two outputs:
// what DequantizeLinear computes from DynamicQuantizeLinear's.
std::vector<float> quantize_dequantize_on_opencv(const std::vector<float>& values) {
  const auto count = static_cast<std::int64_t>(values.size());
  auto outputs = run_opencv(dynamic_quantize_graph(count), {Feed{"x", {1, count}, values}}, {"steps", "scale"});
  const float scale = outputs.at(1).at(0);
  for (auto& step : outputs.at(0)) step *= scale;
  return outputs.at(0);
}

TEST(OpenCvCustomLayers, DynamicQuantizeRoundsHalfToEvenAsTheSpecSays) {
  // Range [0, 255] -> scale 1, zero point 0: x / scale lands exactly on .5 and rounds to even.
  const std::vector<float> ties{255.0f, 0.5f, 1.5f, 2.5f, 3.5f, 100.5f, 254.5f, 0.0f};
  EXPECT_EQ(quantize_dequantize_on_opencv(ties), (std::vector<float>{255, 0, 2, 2, 4, 100, 254, 0}));
  // Range [-51, 204] -> scale 1, zero point 51: negative ties, and the zero point shift.
  const std::vector<float> shifted{-51.0f, 204.0f, -10.5f, -0.5f, 7.5f, -50.5f};
  EXPECT_EQ(quantize_dequantize_on_opencv(shifted), (std::vector<float>{-51, 204, -10, -0, 8, -50}));
  // All zeros: ONNX Runtime's scale 1 instead of a division by zero.
  EXPECT_EQ(quantize_dequantize_on_opencv({0.0f, 0.0f, 0.0f}), (std::vector<float>{0, 0, 0}));
}

TEST(OpenCvCustomLayers, DynamicQuantizeEqualsOnnxRuntimeDynamicQuantizeLinearBitForBit) {
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  std::mt19937 generator(5);
  const std::vector<std::pair<float, float>> ranges{{-3.0f, 7.0f}, {0.25f, 2.0f}, {-9.0f, -0.5f}, {-1e-3f, 4e-3f}};
  for (const auto& [low, high] : ranges) {
    std::uniform_real_distribution<float> distribution(low, high);
    std::vector<float> values(20000);
    for (auto& value : values) value = distribution(generator);
    const auto count = static_cast<std::int64_t>(values.size());
    const Feed feed{"x", {1, count}, values};
    const auto expected = run_onnxruntime(quantize_dequantize_graph(count), {feed});
    const auto produced = quantize_dequantize_on_opencv(values);
    std::size_t mismatches = 0;
    for (std::size_t index = 0; index < values.size(); ++index) mismatches += produced[index] != expected[0][index];
    EXPECT_EQ(mismatches, 0u) << "range [" << low << ", " << high << "]";
  }
#endif
}

// ---- yolov10n_int8 -------------------------------------------------------------------------------

onnx::ModelProto read_model(const std::filesystem::path& path) {
  onnx::ModelProto model;
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(model.ParseFromIstream(&file)) << path;
  return model;
}

// The reference letterbox (640x640 centred, RGB / 255, pad 114) of an image.
Feed letterboxed(const std::filesystem::path& image_path) {
  const cv::Mat image = cv::imread(image_path.string());
  EXPECT_FALSE(image.empty()) << image_path;
  PreprocessSpec spec;
  Preprocessor preprocessor(spec);
  Tensor tensor;
  preprocessor.prepare(tensor);
  preprocessor.run(image, tensor);
  Feed feed{"images", {1, 3, 640, 640}, {}};
  feed.values.assign(tensor.data<float>(), tensor.data<float>() + tensor.element_count());
  return feed;
}

#ifdef DETFLOW_HAVE_ONNXRUNTIME
// The nodes computing `output` from `cut`, with `cut` as the graph input: the end-to-end head alone.
onnx::ModelProto head_from(const onnx::ModelProto& model, const std::string& cut, const std::string& output,
                           const Shape& cut_shape) {
  onnx::ModelProto head = model;
  auto& graph = *head.mutable_graph();
  std::unordered_map<std::string, int> producer;
  for (int index = 0; index < graph.node_size(); ++index) {
    for (const auto& name : graph.node(index).output()) producer[name] = index;
  }
  std::unordered_set<int> needed;
  std::vector<std::string> pending{output};
  while (!pending.empty()) {
    const std::string name = pending.back();
    pending.pop_back();
    const auto found = producer.find(name);
    if (name == cut || found == producer.end() || !needed.insert(found->second).second) continue;
    for (const auto& input : graph.node(found->second).input()) pending.push_back(input);
  }
  google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
  for (int index = 0; index < graph.node_size(); ++index) {
    if (needed.contains(index)) *kept.Add() = graph.node(index);
  }
  graph.mutable_node()->Swap(&kept);
  graph.clear_input();
  declare(graph.add_input(), cut, onnx::TensorProto::FLOAT, cut_shape);
  return head;
}
#endif

// Every DynamicQuantizeLinear of the real model, on the real activations ONNX Runtime computes for
// a real image: the quantise layer given the same activation must return exactly
// (q - zero_point) * scale from ONNX Runtime's q, scale and zero point.
TEST(OpenCvCustomLayersRealModel, DynamicQuantizeMatchesOnnxRuntimeOnEveryYoloV10Activation) {
  DETFLOW_SHARED_FILE(model_path, "models/yolov10n_int8.onnx");
  DETFLOW_SHARED_FILE(image_path, "media/street.jpg");
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  auto model = read_model(model_path);
  std::vector<std::string> activations;
  for (const auto& node : model.graph().node()) {
    if (node.op_type() == "DynamicQuantizeLinear") activations.push_back(node.input(0));
  }
  ASSERT_GT(activations.size(), 70u);
  std::vector<std::string> names;
  for (const auto& activation : activations) {
    std::vector<std::pair<std::string, int>> outputs{{activation, onnx::TensorProto::FLOAT},
                                                     {activation + "_quantized", onnx::TensorProto::UINT8},
                                                     {activation + "_scale", onnx::TensorProto::FLOAT},
                                                     {activation + "_zero_point", onnx::TensorProto::UINT8}};
    for (const auto& [name, type] : outputs) {
      auto* output = model.mutable_graph()->add_output();
      output->set_name(name);
      output->mutable_type()->mutable_tensor_type()->set_elem_type(type);
      names.push_back(name);
    }
  }
  const auto reference = run_onnxruntime(bytes_of(model), {letterboxed(image_path)}, names).values;
  std::size_t elements = 0;
  for (std::size_t index = 0; index < activations.size(); ++index) {
    const auto& x = reference[4 * index];
    const auto& q = reference[4 * index + 1];
    const float scale = reference[4 * index + 2].at(0);
    const float zero_point = reference[4 * index + 3].at(0);
    const auto produced = quantize_dequantize_on_opencv(x);
    std::size_t mismatches = 0;
    for (std::size_t element = 0; element < x.size(); ++element) {
      mismatches += produced[element] != (q[element] - zero_point) * scale;
    }
    EXPECT_EQ(mismatches, 0u) << activations[index];
    elements += x.size();
  }
  std::cout << "quantisation equals ONNX Runtime's on " << activations.size() << " activations, " << elements
            << " elements\n";
#endif
}

// The end-to-end head (Split, ReduceMax, TopK, GatherElements, Gather, Mod, integer Div, Tile, ...)
// on OpenCV, fed by OpenCV's own backbone, against ONNX Runtime running the original head on that
// same tensor: every op there is exact, so [1, 300, 6] must be equal bit for bit.
TEST(OpenCvCustomLayersRealModel, YoloV10HeadEqualsOnnxRuntimeOnTheSameInput) {
  DETFLOW_SHARED_FILE(model_path, "models/yolov10n_int8.onnx");
  DETFLOW_SHARED_FILE(image_path, "media/bus.jpg");
  const std::string head_input = "/model.23/Transpose_output_0";  // [1, 8400, 84]
  const auto original = read_model(model_path);
  const auto rewritten = detail::rewrite_for_opencv(original, decision_for("images", {1, 3, 640, 640}));
  onnx::ModelProto with_head_input;
  ASSERT_TRUE(with_head_input.ParseFromString(rewritten.model_bytes));
  auto* extra = with_head_input.mutable_graph()->add_output();  // OpenCV names only graph outputs
  declare(extra, head_input, onnx::TensorProto::FLOAT, {1, 8400, 84});
  const auto produced = run_opencv(bytes_of(with_head_input), {letterboxed(image_path)}, {"output0", head_input});
  ASSERT_EQ(produced.size(), 2u);
  ASSERT_EQ(produced[0].size(), 300u * 6u);
  ASSERT_EQ(produced[1].size(), 8400u * 84u);
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  const auto head = head_from(original, head_input, "output0", {1, 8400, 84});
  const auto expected = run_onnxruntime(head, {Feed{head_input, {1, 8400, 84}, produced[1]}});
  expect_identical({produced[0]}, expected);
  int confident = 0;
  for (std::size_t row = 0; row < 300; ++row) confident += produced[0][row * 6 + 4] >= 0.25f;
  EXPECT_GT(confident, 0);
#endif
}

// ---- ONNX Runtime's MLAS arithmetic (dynamic int8 models) -----------------------------------------

#if defined(__x86_64__) && defined(__GNUC__)
[[maybe_unused]] bool cpu_supports(const char* feature) {
  __builtin_cpu_init();
  if (std::string(feature) == "fma") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return __builtin_cpu_supports("avx512f");
}
#else
bool cpu_supports(const char*) { return false; }
#endif

[[maybe_unused]] std::vector<float> uniform_values(std::size_t count, float low, float high, unsigned seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(count);
  for (auto& value : values) value = distribution(generator);
  return values;
}

[[maybe_unused]] std::size_t count_mismatches(const std::vector<float>& produced, const std::vector<float>& expected) {
  EXPECT_EQ(produced.size(), expected.size());
  std::size_t mismatches = 0;
  for (std::size_t index = 0; index < std::min(produced.size(), expected.size()); ++index) {
    mismatches += produced[index] != expected[index];
  }
  return mismatches;
}

// Sigmoid: the layer repeats MLAS's FMA3 kernel, so on an x86-64 CPU with FMA it equals ONNX
// Runtime's Sigmoid bit for bit, over the clamped range, near 0 and beyond +-18.
TEST(OpenCvCustomLayers, LogisticEqualsOnnxRuntimeSigmoidBitForBit) {
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  if (!cpu_supports("fma")) GTEST_SKIP() << "ONNX Runtime uses its SSE2 kernel on this CPU";
  auto values = uniform_values(30000, -25.0f, 25.0f, 11);
  const std::vector<float> edges{0.0f, -0.0f, 18.0f, -18.0f, 17.99f, 1e-8f, -1e-8f, 88.0f, -104.0f, 3.5f};
  values.insert(values.end(), edges.begin(), edges.end());
  const auto count = static_cast<std::int64_t>(values.size());
  auto reference = new_model(13);
  declare(reference.mutable_graph()->add_input(), "x", onnx::TensorProto::FLOAT, {1, count});
  add_node(*reference.mutable_graph(), "Sigmoid", {"x"}, {"y"});
  declare(reference.mutable_graph()->add_output(), "y", onnx::TensorProto::FLOAT, {1, count});
  auto custom = reference;
  custom.mutable_graph()->mutable_node(0)->set_op_type(detail::logistic_op);
  const Feed feed{"x", {1, count}, values};
  const auto produced = run_opencv(bytes_of(custom), {feed}, {"y"});
  const auto expected = run_onnxruntime(reference, {feed});
  EXPECT_EQ(count_mismatches(produced.at(0), expected.at(0)), 0u);
  // And it is the logistic function: within 1e-6 of the exact value.
  double worst = 0.0;
  for (std::size_t index = 0; index < values.size(); ++index) {
    worst = std::max(worst, std::abs(produced[0][index] - 1.0 / (1.0 + std::exp(-static_cast<double>(values[index])))));
  }
  EXPECT_LE(worst, 1e-6);
#endif
}

// Softmax along the last axis (rows longer than MLAS's 48-element blocks, with a remainder) and
// along an inner axis: bit for bit against ONNX Runtime on an AVX512F CPU (whose sum-exp kernel
// the layer repeats).
TEST(OpenCvCustomLayers, SoftmaxEqualsOnnxRuntimeBitForBit) {
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  if (!cpu_supports("avx512f")) GTEST_SKIP() << "ONNX Runtime sums exps in another order on this CPU";
  const std::vector<std::pair<Shape, std::int64_t>> cases{{{1, 2, 7, 403}, -1}, {{1, 16, 4, 50}, 1}, {{3, 5}, 1}};
  unsigned seed = 3;
  for (const auto& [shape, axis] : cases) {
    const auto count =
        static_cast<std::size_t>(std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>()));
    auto reference = new_model(13);
    declare(reference.mutable_graph()->add_input(), "x", onnx::TensorProto::FLOAT, shape);
    set_int(add_node(*reference.mutable_graph(), "Softmax", {"x"}, {"y"}), "axis", axis);
    declare(reference.mutable_graph()->add_output(), "y", onnx::TensorProto::FLOAT, shape);
    auto custom = reference;
    custom.mutable_graph()->mutable_node(0)->set_op_type(detail::softmax_op);
    const Feed feed{"x", shape, uniform_values(count, -12.0f, 9.0f, ++seed)};
    const auto produced = run_opencv(bytes_of(custom), {feed}, {"y"});
    const auto expected = run_onnxruntime(reference, {feed});
    EXPECT_EQ(count_mismatches(produced.at(0), expected.at(0)), 0u) << "axis " << axis << " of rank " << shape.size();
  }
#endif
}

// alpha * op(A) x op(B): against ONNX Runtime running Mul(A, alpha) -> Transpose -> MatMul (which
// its optimiser turns into FusedMatMul) and MatMul(A, Transpose(B)) with K = 400 (several of
// MLAS's K slices). Bit for bit on a CPU with FMA.
TEST(OpenCvCustomLayers, MlasMatMulEqualsOnnxRuntimeFusedMatMulBitForBit) {
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  if (!cpu_supports("fma")) GTEST_SKIP() << "ONNX Runtime's SGEMM kernel differs on this CPU";
  struct Case {
    Shape a, b, c;
    bool trans_a, trans_b;
    float alpha;
  };
  const std::vector<Case> cases{{{1, 2, 32, 400}, {1, 2, 32, 400}, {1, 2, 400, 400}, true, false, 0.1767767f},
                                {{1, 2, 64, 400}, {1, 2, 400, 400}, {1, 2, 64, 400}, false, true, 1.0f},
                                {{2, 5, 300}, {2, 300, 7}, {2, 5, 7}, false, false, 1.0f},
                                {{2, 3, 5, 40}, {1, 40, 7}, {2, 3, 5, 7}, false, false, 1.0f}};
  unsigned seed = 20;
  for (const auto& test : cases) {
    auto reference = new_model(13);
    auto& graph = *reference.mutable_graph();
    declare(graph.add_input(), "a", onnx::TensorProto::FLOAT, test.a);
    declare(graph.add_input(), "b", onnx::TensorProto::FLOAT, test.b);
    std::string left = "a";
    std::string right = "b";
    const auto rank = static_cast<std::int64_t>(test.a.size());
    std::vector<std::int64_t> swap(static_cast<std::size_t>(rank));
    std::iota(swap.begin(), swap.end(), 0);
    std::swap(swap[swap.size() - 1], swap[swap.size() - 2]);
    auto set_perm = [&](onnx::NodeProto& node) {
      auto* attribute = node.add_attribute();
      attribute->set_name("perm");
      attribute->set_type(onnx::AttributeProto::INTS);
      for (const auto axis : swap) attribute->add_ints(axis);
    };
    if (test.alpha != 1.0f) {
      add_float(graph, "alpha", {}, {test.alpha});
      add_node(graph, "Mul", {left, "alpha"}, {"a_scaled"});
      left = "a_scaled";
    }
    if (test.trans_a) {
      set_perm(add_node(graph, "Transpose", {left}, {"a_t"}));
      left = "a_t";
    }
    if (test.trans_b) {
      set_perm(add_node(graph, "Transpose", {right}, {"b_t"}));
      right = "b_t";
    }
    add_node(graph, "MatMul", {left, right}, {"c"});
    declare(graph.add_output(), "c", onnx::TensorProto::FLOAT, test.c);

    auto custom = new_model(13);
    auto& layer_graph = *custom.mutable_graph();
    *layer_graph.add_input() = graph.input(0);
    *layer_graph.add_input() = graph.input(1);
    auto& layer = add_node(layer_graph, detail::mlas_matmul_op, {"a", "b"}, {"c"});
    auto* alpha = layer.add_attribute();
    alpha->set_name("alpha");
    alpha->set_type(onnx::AttributeProto::FLOAT);
    alpha->set_f(test.alpha);
    set_int(layer, "transA", test.trans_a ? 1 : 0);
    set_int(layer, "transB", test.trans_b ? 1 : 0);
    *layer_graph.add_output() = graph.output(0);

    auto size_of = [](const Shape& shape) {
      return static_cast<std::size_t>(
          std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>()));
    };
    const std::vector<Feed> feeds{Feed{"a", test.a, uniform_values(size_of(test.a), -2.0f, 2.0f, ++seed)},
                                  Feed{"b", test.b, uniform_values(size_of(test.b), -1.0f, 3.0f, ++seed)}};
    const auto produced = run_opencv(bytes_of(custom), feeds, {"c"});
    const auto expected = run_onnxruntime(reference, feeds);
    EXPECT_EQ(count_mismatches(produced.at(0), expected.at(0)), 0u)
        << "case with K = " << (test.trans_a ? test.a[test.a.size() - 2] : test.a.back());
  }
#endif
}

// The whole int8 rewrite on the real model: every activation ONNX Runtime quantises (the 78 inputs
// of DynamicQuantizeLinear) and the output rows are equal bit for bit on OpenCV, on street.jpg,
// the image where the approximate (fake-quantised) form drifted most.
TEST(OpenCvCustomLayersRealModel, YoloV10Int8EveryQuantisedActivationEqualsOnnxRuntime) {
  DETFLOW_SHARED_FILE(model_path, "models/yolov10n_int8.onnx");
  DETFLOW_SHARED_FILE(image_path, "media/street.jpg");
  DETFLOW_REQUIRE_ONNXRUNTIME();
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  if (!cpu_supports("avx512f") || !cpu_supports("fma")) GTEST_SKIP() << "ONNX Runtime uses other MLAS kernels here";
  const auto model = read_model(model_path);
  std::vector<std::string> names{"output0"};
  for (const auto& node : model.graph().node()) {
    if (node.op_type() == "DynamicQuantizeLinear") names.push_back(node.input(0));
  }
  ASSERT_GT(names.size(), 70u);
  auto with_activations = model;
  const auto rewritten = detail::rewrite_for_opencv(model, decision_for("images", {1, 3, 640, 640}));
  onnx::ModelProto opencv_model;
  ASSERT_TRUE(opencv_model.ParseFromString(rewritten.model_bytes));
  for (std::size_t index = 1; index < names.size(); ++index) {
    for (auto* graph : {with_activations.mutable_graph(), opencv_model.mutable_graph()}) {
      auto* output = graph->add_output();
      output->set_name(names[index]);
      output->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    }
    // OpenCV's importer wants a shape on every graph output (ONNX Runtime would check a made-up one).
    opencv_model.mutable_graph()->mutable_output()->rbegin()->mutable_type()->mutable_tensor_type()->mutable_shape();
  }
  const Feed feed = letterboxed(image_path);
  const auto expected = run_onnxruntime(bytes_of(with_activations), {feed}, names).values;
  const auto produced = run_opencv(bytes_of(opencv_model), {feed}, names);
  ASSERT_EQ(produced.size(), names.size());
  std::size_t elements = 0;
  for (std::size_t index = 0; index < names.size(); ++index) {
    EXPECT_EQ(count_mismatches(produced[index], expected[index]), 0u) << names[index];
    elements += expected[index].size();
  }
  std::cout << "yolov10n_int8 on OpenCV equals ONNX Runtime on " << names.size() - 1 << " quantised activations and "
            << "the output (" << elements << " values)\n";
#endif
}

}  // namespace
}  // namespace detflow
