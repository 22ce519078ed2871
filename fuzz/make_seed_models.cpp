// make_seed_models — writes the ONNX seed corpus of the model fuzzers (built and run by
// fuzz/CMakeLists.txt; not installed).
//
//   make_seed_models OUTPUT_DIR [SHARED_MODELS_DIR]
//
// OUTPUT_DIR receives tiny models: one per detector family layout (tests/support/model_builder.h,
// 64x64 input, 3 classes; static, dynamic and float16 variants) and one per pattern the OpenCV
// graph rewrites act on (inference/src/graph_rewrite.h), each fed by a [1, 3, 8, 8] image input.
// With SHARED_MODELS_DIR (../shared/models), every *.onnx there is also written as a skeleton:
// the same graph with each initializer of more than 64 elements turned into a declared graph
// input of the same type and shape. The structure the parsers and rewrites look at stays; the
// file shrinks from megabytes to kilobytes, which keeps libFuzzer fast (it mutates whole inputs).
// Exits non-zero with a message on any failure.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "model_builder.h"

namespace {

using detflow::ElementType;
using detflow::test::Attribute;
using detflow::test::ModelBuilder;

constexpr std::int64_t largest_kept_initializer = 64;

ModelBuilder image_model(std::int64_t opset = 13) {
  ModelBuilder builder(opset);
  builder.input("images", ElementType::float32, {1, 3, 8, 8});
  return builder;
}

void add_int8_initializer(ModelBuilder& builder, const std::string& name, int element_type,
                          const std::vector<std::int64_t>& dims, const std::string& bytes) {
  auto* tensor = builder.proto().mutable_graph()->add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(element_type);
  for (const auto dim : dims) tensor->add_dims(dim);
  tensor->set_raw_data(bytes);
}

void write_pattern_models(const std::filesystem::path& folder) {
  // 3. Div with a constant numerator of several elements.
  image_model()
      .initializer("numerator", {1, 3, 1, 1}, {1.0f, 2.0f, 3.0f})
      .node("Div", {"numerator", "images"}, {"y"})
      .output("y", ElementType::float32, {1, 3, 8, 8})
      .write(folder / "div_constant_numerator.onnx");
  // 4. A constant OpenCV cannot broadcast ([1, 8] against [1, 3, 8, 8]).
  image_model()
      .initializer("row", {1, 8}, {1, 2, 3, 4, 5, 6, 7, 8})
      .node("Mul", {"images", "row"}, {"y"})
      .output("y", ElementType::float32, {1, 3, 8, 8})
      .write(folder / "broadcast_constant.onnx");
  // 5. Unsqueeze with a negative constant axis (opset 13: axes is an input).
  image_model()
      .initializer_int64("axes", {1}, {-1})
      .node("Unsqueeze", {"images", "axes"}, {"y"})
      .output("y", ElementType::float32, {1, 3, 8, 8, 1})
      .write(folder / "unsqueeze_negative_axis.onnx");
  // 5b. Custom layers: TopK with a constant K, GatherElements, Tile, Mod, integer Div.
  image_model()
      .initializer_int64("flat", {2}, {1, 192})
      .initializer_int64("k", {1}, {5})
      .node("Reshape", {"images", "flat"}, {"row"})
      .node("TopK", {"row", "k"}, {"values", "indices"}, {Attribute::integer("axis", -1)})
      .output("values", ElementType::float32, {1, 5})
      .output("indices", ElementType::int64, {1, 5})
      .write(folder / "topk_constant_k.onnx");
  image_model()
      .initializer_int64("index", {1, 3, 8, 1}, std::vector<std::int64_t>(24, 2))
      .node("GatherElements", {"images", "index"}, {"y"}, {Attribute::integer("axis", -1)})
      .output("y", ElementType::float32, {1, 3, 8, 1})
      .write(folder / "gather_elements.onnx");
  image_model()
      .initializer_int64("repeats", {4}, {1, 2, 1, 1})
      .node("Tile", {"images", "repeats"}, {"y"})
      .output("y", ElementType::float32, {1, 6, 8, 8})
      .write(folder / "tile_constant_repeats.onnx");
  image_model()
      .initializer_int64("divisor", {1}, {3})
      .node("Cast", {"images"}, {"integers"}, {Attribute::integer("to", onnx::TensorProto::INT64)})
      .node("Mod", {"integers", "divisor"}, {"remainder"})
      .node("Div", {"integers", "divisor"}, {"quotient"})
      .output("remainder", ElementType::int64, {1, 3, 8, 8})
      .output("quotient", ElementType::int64, {1, 3, 8, 8})
      .write(folder / "integer_mod_div.onnx");
  image_model()
      .initializer_int64("column", {1, 1, 1, 8}, {0, 1, 2, 3, 4, 5, 6, 7})
      .node("Cast", {"images"}, {"integers"}, {Attribute::integer("to", onnx::TensorProto::INT64)})
      .node("Gather", {"integers", "column"}, {"y"}, {Attribute::integer("axis", -1)})
      .output("y", ElementType::int64, {1, 3, 8, 1, 1, 1, 8})
      .write(folder / "gather_computed_indices.onnx");
  // 7. Split sizes as an input (opset 13).
  image_model()
      .initializer_int64("sizes", {2}, {1, 2})
      .node("Split", {"images", "sizes"}, {"a", "b"}, {Attribute::integer("axis", 1)})
      .output("a", ElementType::float32, {1, 1, 8, 8})
      .output("b", ElementType::float32, {1, 2, 8, 8})
      .write(folder / "split_sizes_input.onnx");
  // 8. Conv without kernel_shape.
  image_model()
      .initializer("weight", {2, 3, 3, 3}, std::vector<float>(54, 0.1f))
      .node("Conv", {"images", "weight"}, {"y"}, {Attribute::integers("pads", {1, 1, 1, 1})})
      .output("y", ElementType::float32, {1, 2, 8, 8})
      .write(folder / "conv_without_kernel_shape.onnx");
  // 6. Dynamic int8, as onnxruntime.quantization.quantize_dynamic writes a Conv, then
  //    Sigmoid and Softmax (which that rewrite also replaces in such models).
  {
    auto builder = image_model();
    add_int8_initializer(builder, "weight_quantized", onnx::TensorProto::INT8, {2, 3, 1, 1},
                         std::string("\x01\x02\x03\xfd\xfe\xff", 6));
    add_int8_initializer(builder, "weight_zero_point", onnx::TensorProto::INT8, {}, std::string(1, '\0'));
    builder.initializer("weight_scale", {}, {0.05f})
        .node("DynamicQuantizeLinear", {"images"}, {"images_quantized", "images_scale", "images_zero_point"})
        .node("ConvInteger", {"images_quantized", "weight_quantized", "images_zero_point", "weight_zero_point"},
              {"sum"})
        .node("Cast", {"sum"}, {"sum_float"}, {Attribute::integer("to", onnx::TensorProto::FLOAT)})
        .node("Mul", {"images_scale", "weight_scale"}, {"scale"})
        .node("Mul", {"sum_float", "scale"}, {"convolved"})
        .node("Sigmoid", {"convolved"}, {"activated"})
        .node("Softmax", {"activated"}, {"y"}, {Attribute::integer("axis", 1)})
        .output("y", ElementType::float32, {1, 2, 8, 8})
        .write(folder / "dynamic_int8_conv.onnx");
  }
  // 2. float16 weights and input.
  ModelBuilder half(13);
  half.input("images", ElementType::float16, {1, 3, 8, 8})
      .initializer_float16("two", {1}, {2.0f})
      .node("Mul", {"images", "two"}, {"doubled"})
      .node("Cast", {"doubled"}, {"y"}, {Attribute::integer("to", onnx::TensorProto::FLOAT16)})
      .output("y", ElementType::float16, {1, 3, 8, 8})
      .write(folder / "float16_mul.onnx");
  // 1. Symbolic input dims and Ultralytics metadata.
  ModelBuilder symbolic(13);
  symbolic.input("images", ElementType::float32, {"batch", 3, "height", "width"})
      .node("Relu", {"images"}, {"y"})
      .output("y", ElementType::float32, {"batch", 3, "height", "width"})
      .metadata("imgsz", "[32, 48]")
      .metadata("names", "{0: 'person', 1: \"it's\", 2: 'a\\x41'}")
      .write(folder / "symbolic_input_dims.onnx");
}

void write_family_models(const std::filesystem::path& folder) {
  using namespace detflow::test;
  for (const bool dynamic : {false, true}) {
    SyntheticModelOptions options;
    options.width = 64;
    options.height = 64;
    options.classes = 3;
    options.dynamic = dynamic;
    options.yolov10_rows = 10;
    options.metadata = ultralytics_metadata(options.classes, options.width, options.height);
    const std::string suffix = dynamic ? "_dynamic.onnx" : ".onnx";
    write_yolov8_model(folder / ("yolov8" + suffix), options);
    write_yolov5_model(folder / ("yolov5" + suffix), options);
    write_yolox_model(folder / ("yolox" + suffix), options);
    write_yolov10_model(folder / ("yolov10" + suffix), options);
    write_nanodet_model(folder / ("nanodet" + suffix), options);
    write_blazeface_model(folder / ("blazeface" + suffix), options);
  }
  SyntheticModelOptions half;
  half.width = 64;
  half.height = 64;
  half.classes = 3;
  half.io_type = ElementType::float16;
  write_yolov5_model(folder / "yolov5_float16.onnx", half);
}

void declare_as_input(onnx::GraphProto& graph, const onnx::TensorProto& tensor) {
  auto* input = graph.add_input();
  input->set_name(tensor.name());
  auto* type = input->mutable_type()->mutable_tensor_type();
  type->set_elem_type(tensor.data_type());
  auto* shape = type->mutable_shape();
  for (const auto dim : tensor.dims()) shape->add_dim()->set_dim_value(dim);
}

void write_skeleton(const std::filesystem::path& model_file, const std::filesystem::path& output) {
  onnx::ModelProto model;
  {
    std::ifstream stream(model_file, std::ios::binary);
    if (!stream || !model.ParseFromIstream(&stream)) throw std::runtime_error("cannot parse " + model_file.string());
  }
  auto& graph = *model.mutable_graph();
  google::protobuf::RepeatedPtrField<onnx::TensorProto> kept;
  for (auto& tensor : *graph.mutable_initializer()) {
    std::int64_t elements = 1;
    for (const auto dim : tensor.dims()) elements *= dim;
    if (elements > largest_kept_initializer) {
      // Models of IR < 4 already list every initializer as a graph input.
      const bool declared =
          std::any_of(graph.input().begin(), graph.input().end(),
                      [&](const onnx::ValueInfoProto& input) { return input.name() == tensor.name(); });
      if (!declared) declare_as_input(graph, tensor);
    } else {
      *kept.Add() = tensor;
    }
  }
  graph.mutable_initializer()->Swap(&kept);
  std::ofstream stream(output, std::ios::binary | std::ios::trunc);
  if (!stream || !model.SerializeToOstream(&stream)) throw std::runtime_error("cannot write " + output.string());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: make_seed_models OUTPUT_DIR [SHARED_MODELS_DIR]\n");
    return 2;
  }
  try {
    const std::filesystem::path output = argv[1];
    std::filesystem::create_directories(output);
    write_pattern_models(output);
    write_family_models(output);
    if (argc == 3 && std::filesystem::is_directory(argv[2])) {
      for (const auto& entry : std::filesystem::directory_iterator(argv[2])) {
        if (entry.path().extension() != ".onnx") continue;
        write_skeleton(entry.path(), output / ("skeleton_" + entry.path().filename().string()));
      }
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "make_seed_models: %s\n", error.what());
    return 1;
  }
  return 0;
}
