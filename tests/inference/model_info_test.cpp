// ModelInfo read field by field from synthetic models written with ModelBuilder.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "detflow/inference/describe.h"
#include "detflow/inference/model_info.h"
#include "model_builder.h"
#include "shared_data.h"

namespace detflow {
namespace {

using test::DimSpec;
using test::ModelBuilder;

std::vector<std::int64_t> fixed(std::initializer_list<std::int64_t> values) { return values; }

TEST(ModelInfo, ReadsEveryHeaderFieldOfAHandBuiltModel) {
  const auto directory = test::temporary_directory("model-info");
  ModelBuilder builder(12, 7);
  builder.producer("pytorch", "2.1.0")
      .domain("org.example")
      .model_version(42)
      .doc_string("a doubling model")
      .metadata("imgsz", "[320, 320]")
      .metadata("stride", "32")
      .input("x", ElementType::float32, {1, 3, "height", "width"})
      .initializer("two", {1}, {2.0f})
      .initializer("weights", {2, 3, 4}, std::vector<float>(24, 0.5f))
      .node("Mul", {"x", "two"}, {"y"})
      .output("y", ElementType::float32, {1, 3, "height", "width"});
  // Initializers listed as graph inputs (old exporters do this) are not model inputs.
  builder.input("two", ElementType::float32, {1});
  const auto path = builder.write(directory / "double.onnx");

  const ModelInfo info = read_model_info(path);
  EXPECT_EQ(info.path, path);
  EXPECT_EQ(info.file_size_bytes, std::filesystem::file_size(path));
  EXPECT_EQ(info.ir_version, 7);
  ASSERT_EQ(info.opset_imports.size(), 1u);
  EXPECT_EQ(info.opset_imports[0].first, "");
  EXPECT_EQ(info.opset_imports[0].second, 12);
  EXPECT_EQ(info.default_opset(), 12);
  EXPECT_EQ(info.opset("ai.onnx"), 12);
  EXPECT_EQ(info.opset("com.microsoft"), 0);
  EXPECT_EQ(info.producer_name, "pytorch");
  EXPECT_EQ(info.producer_version, "2.1.0");
  EXPECT_EQ(info.domain, "org.example");
  EXPECT_EQ(info.model_version, 42);
  EXPECT_EQ(info.doc_string, "a doubling model");

  ASSERT_EQ(info.inputs.size(), 1u);
  EXPECT_EQ(info.inputs[0].name, "x");
  EXPECT_EQ(info.inputs[0].type, ElementType::float32);
  EXPECT_EQ(info.inputs[0].type_name, "float");
  EXPECT_TRUE(info.inputs[0].has_shape);
  ASSERT_EQ(info.inputs[0].shape.size(), 4u);
  EXPECT_EQ(info.inputs[0].shape[0], (Dim{1, ""}));
  EXPECT_EQ(info.inputs[0].shape[2], (Dim{-1, "height"}));
  EXPECT_EQ(info.inputs[0].fixed_shape(), fixed({1, 3, -1, -1}));
  EXPECT_EQ(info.inputs[0].to_string(), "x: float [1, 3, height, width]");
  ASSERT_EQ(info.outputs.size(), 1u);
  EXPECT_EQ(info.outputs[0].name, "y");

  EXPECT_EQ(info.initializer_count, 2u);
  EXPECT_EQ(info.parameter_count, 25u);
  EXPECT_EQ(info.operator_histogram, (std::map<std::string, std::size_t>{{"Mul", 1}}));
  EXPECT_EQ(info.metadata.size(), 2u);
  EXPECT_EQ(info.metadata_value("imgsz"), "[320, 320]");
  EXPECT_EQ(info.metadata_value("names"), std::nullopt);
  EXPECT_FALSE(info.uses_external_data);
  EXPECT_TRUE(info.checker_ran);
  EXPECT_TRUE(info.checker_passed) << info.checker_message;
  EXPECT_TRUE(info.warnings.empty());
}

TEST(ModelInfo, Yolov8LayoutWithUltralyticsMetadata) {
  const auto directory = test::temporary_directory("model-info");
  test::SyntheticModelOptions options;
  options.width = 96;
  options.height = 64;
  options.metadata = test::ultralytics_metadata(80, 96, 64);
  const auto info = read_model_info(test::write_yolov8_model(directory / "v8.onnx", options));
  const std::int64_t anchors = 12 * 8 + 6 * 4 + 3 * 2;
  EXPECT_EQ(test::anchor_count(96, 64), anchors);
  ASSERT_EQ(info.inputs.size(), 1u);
  EXPECT_EQ(info.inputs[0].name, "images");
  EXPECT_EQ(info.inputs[0].fixed_shape(), fixed({1, 3, 64, 96}));
  ASSERT_EQ(info.outputs.size(), 1u);
  EXPECT_EQ(info.outputs[0].name, "output0");
  EXPECT_EQ(info.outputs[0].type, ElementType::float32);
  EXPECT_EQ(info.outputs[0].fixed_shape(), fixed({1, 84, anchors}));
  EXPECT_EQ(info.metadata_value("imgsz"), "[64, 96]");
  EXPECT_EQ(info.metadata_value("task"), "detect");
  EXPECT_EQ(info.metadata_value("names")->substr(0, 24), "{0: 'class0', 1: 'class1");
  EXPECT_EQ(info.operator_histogram.at("AveragePool"), 3u);
  EXPECT_EQ(info.operator_histogram.at("Conv"), 4u);  // channel mean + one per stride
  EXPECT_EQ(info.operator_histogram.at("Concat"), 1u);
  EXPECT_TRUE(info.checker_passed) << info.checker_message;
}

TEST(ModelInfo, Float16InputsAndOutputs) {
  const auto directory = test::temporary_directory("model-info");
  test::SyntheticModelOptions options;
  options.io_type = ElementType::float16;
  const auto info = read_model_info(test::write_yolov5_model(directory / "v5.onnx", options));
  EXPECT_EQ(info.inputs[0].type, ElementType::float16);
  EXPECT_EQ(info.inputs[0].type_name, "float16");
  EXPECT_EQ(info.outputs[0].type, ElementType::float16);
  EXPECT_EQ(info.outputs[0].fixed_shape(), fixed({1, 3 * 84, 85}));
  EXPECT_EQ(info.operator_histogram.at("Cast"), 2u);
  EXPECT_EQ(info.operator_histogram.at("Concat"), 1u);
}

TEST(ModelInfo, SymbolicDimsKeepTheirNames) {
  const auto directory = test::temporary_directory("model-info");
  test::SyntheticModelOptions options;
  options.dynamic = true;
  const auto info = read_model_info(test::write_yolov8_model(directory / "dynamic.onnx", options));
  EXPECT_EQ(info.inputs[0].shape[0].symbol, "batch");
  EXPECT_EQ(info.inputs[0].shape[2].symbol, "height");
  EXPECT_EQ(info.inputs[0].shape[3].symbol, "width");
  EXPECT_FALSE(info.inputs[0].shape[3].is_fixed());
  EXPECT_EQ(info.outputs[0].to_string(), "output0: float [batch, 84, anchors]");
}

TEST(ModelInfo, EveryFamilyLayout) {
  const auto directory = test::temporary_directory("model-info");
  const auto yolox = read_model_info(test::write_yolox_model(directory / "yolox.onnx"));
  EXPECT_EQ(yolox.outputs[0].name, "output");
  EXPECT_EQ(yolox.outputs[0].fixed_shape(), fixed({1, 84, 85}));

  const auto yolov10 = read_model_info(test::write_yolov10_model(directory / "v10.onnx"));
  EXPECT_EQ(yolov10.outputs[0].fixed_shape(), fixed({1, 300, 6}));

  test::SyntheticModelOptions nanodet_options;
  nanodet_options.width = nanodet_options.height = 320;
  const auto nanodet = read_model_info(test::write_nanodet_model(directory / "nanodet.onnx", nanodet_options));
  ASSERT_EQ(nanodet.outputs.size(), 6u);
  EXPECT_EQ(nanodet.inputs[0].name, "image");
  const std::vector<std::vector<std::int64_t>> nanodet_shapes{{1, 1600, 80}, {1, 400, 80}, {1, 100, 80},
                                                              {1, 1600, 32}, {1, 400, 32}, {1, 100, 32}};
  for (std::size_t index = 0; index < 6; ++index) {
    EXPECT_EQ(nanodet.outputs[index].fixed_shape(), nanodet_shapes[index]) << nanodet.outputs[index].name;
  }
  EXPECT_EQ(nanodet.outputs[0].name, "cls_pred_stride_8");
  EXPECT_EQ(nanodet.outputs[5].name, "dis_pred_stride_32");

  const auto face = read_model_info(test::write_blazeface_model(directory / "face.onnx"));
  EXPECT_EQ(face.inputs[0].fixed_shape(), fixed({1, 128, 128, 3}));
  ASSERT_EQ(face.outputs.size(), 2u);
  EXPECT_EQ(face.outputs[0].name, "regressors");
  EXPECT_EQ(face.outputs[0].fixed_shape(), fixed({1, 896, 16}));
  EXPECT_EQ(face.outputs[1].name, "classificators");
  EXPECT_EQ(face.outputs[1].fixed_shape(), fixed({1, 896, 1}));
}

TEST(ModelInfo, UnusualTypesShapesAndDomains) {
  const auto directory = test::temporary_directory("model-info");
  ModelBuilder builder;
  builder.opset(1, "com.example")
      .input("x", ElementType::float32, {1, 3, 8, 8})
      .node("Custom", {"x"}, {"y"}, {}, "com.example")
      .node("Relu", {"y"}, {"z"})
      .output("z", ElementType::float32, {1, 3, 8, 8})
      .output_without_shape("y", ElementType::float32);
  auto& extra = *builder.proto().mutable_graph()->add_input();
  extra.set_name("scale");
  extra.mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto_DataType_DOUBLE);
  const auto info = read_model_info(builder.write(directory / "custom.onnx"));
  EXPECT_EQ(info.operator_histogram.at("com.example.Custom"), 1u);
  EXPECT_EQ(info.operator_histogram.at("Relu"), 1u);
  EXPECT_EQ(info.opset("com.example"), 1);
  ASSERT_EQ(info.inputs.size(), 2u);
  EXPECT_EQ(info.inputs[1].type, ElementType::unknown);
  EXPECT_EQ(info.inputs[1].type_name, "double");
  EXPECT_FALSE(info.outputs[1].has_shape);
  EXPECT_EQ(info.outputs[1].to_string(), "y: float [shape not declared]");
}

TEST(ModelInfo, NewerIrVersionIsAWarningNotARefusal) {
  const auto directory = test::temporary_directory("model-info");
  const auto path = ModelBuilder(21, 11)
                        .input("x", ElementType::float32, {1, 3, 4, 4})
                        .node("Relu", {"x"}, {"y"})
                        .output("y", ElementType::float32, {1, 3, 4, 4})
                        .write(directory / "future.onnx");
  const auto info = read_model_info(path);
  EXPECT_EQ(info.ir_version, 11);
  EXPECT_FALSE(info.checker_ran);
  EXPECT_FALSE(info.checker_passed);
  ASSERT_EQ(info.warnings.size(), 1u);
  EXPECT_NE(info.warnings[0].find("IR version 11"), std::string::npos) << info.warnings[0];
}

TEST(ModelInfo, CheckerComplaintIsRecordedNotThrown) {
  const auto directory = test::temporary_directory("model-info");
  const auto path = ModelBuilder()
                        .input("x", ElementType::float32, {1, 3, 4, 4})
                        .node("NoSuchOperator", {"x"}, {"y"})
                        .output("y", ElementType::float32, {1, 3, 4, 4})
                        .write(directory / "unknown-op.onnx");
  const auto info = read_model_info(path);
  EXPECT_TRUE(info.checker_ran);
  EXPECT_FALSE(info.checker_passed);
  EXPECT_NE(info.checker_message.find("NoSuchOperator"), std::string::npos) << info.checker_message;
  EXPECT_EQ(info.checker_message.find('\n'), std::string::npos);
  ASSERT_EQ(info.warnings.size(), 1u);
}

TEST(ModelInfo, ExternalDataIsFoundBesideTheModel) {
  const auto directory = test::temporary_directory("model-info");
  const auto path = ModelBuilder()
                        .input("x", ElementType::float32, {1, 4})
                        .external_initializer("w", {1, 4}, {1, 2, 3, 4}, "weights.bin")
                        .node("Add", {"x", "w"}, {"y"})
                        .output("y", ElementType::float32, {1, 4})
                        .write(directory / "external.onnx");
  const auto info = read_model_info(path);
  EXPECT_TRUE(info.uses_external_data);
  ASSERT_EQ(info.external_data_files.size(), 1u);
  EXPECT_EQ(info.external_data_files[0], directory / "weights.bin");
  EXPECT_EQ(info.parameter_count, 4u);
}

TEST(Describe, JsonAndTextCarryEveryField) {
  const auto directory = test::temporary_directory("model-info");
  test::SyntheticModelOptions options;
  options.dynamic = true;
  options.metadata = {{"imgsz", "[64, 64]"}, {"author", "tests"}};
  const auto info = read_model_info(test::write_yolov8_model(directory / "v8.onnx", options));

  const auto json = to_json(info);
  EXPECT_EQ(json.at("path"), (directory / "v8.onnx").string());
  EXPECT_EQ(json.at("ir_version"), 8);
  EXPECT_EQ(json.at("opset_imports")[0].at("domain"), "ai.onnx");
  EXPECT_EQ(json.at("opset_imports")[0].at("version"), 13);
  EXPECT_EQ(json.at("producer_name"), "detflow-tests");
  EXPECT_EQ(json.at("inputs")[0].at("shape"), nlohmann::json::parse(R"(["batch", 3, "height", "width"])"));
  EXPECT_EQ(json.at("inputs")[0].at("type"), "float");
  EXPECT_EQ(json.at("outputs")[0].at("name"), "output0");
  EXPECT_EQ(json.at("initializer_count"), info.initializer_count);
  EXPECT_EQ(json.at("parameter_count"), info.parameter_count);
  EXPECT_EQ(json.at("operator_histogram").at("AveragePool"), 3);
  EXPECT_EQ(json.at("metadata").at("author"), "tests");
  EXPECT_EQ(json.at("checker").at("passed"), true);
  EXPECT_EQ(json.at("file_size_bytes"), info.file_size_bytes);
  EXPECT_EQ(json.at("uses_external_data"), false);
  EXPECT_TRUE(json.at("warnings").empty());

  const auto text = to_text(info);
  for (const std::string expected : {"images: float [batch, 3, height, width]", "output0: float [batch, 84, anchors]",
                                     "ir version: 8", "ai.onnx 13", "producer: detflow-tests", "AveragePool 3",
                                     "author: tests", "imgsz: [64, 64]", "onnx checker: passed", "initializers: "}) {
    EXPECT_NE(text.find(expected), std::string::npos) << "missing '" << expected << "' in\n" << text;
  }
}

}  // namespace
}  // namespace detflow
