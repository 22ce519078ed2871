// read_model_info on files that are not usable models: each must give one detflow::Error
// line that names the path, never a crash and never a half-read ModelInfo.
#include <gtest/gtest.h>

#include "detflow/error.h"
#include "detflow/inference/model_info.h"
#include "model_builder.h"
#include "shared_data.h"

namespace detflow {
namespace {

using test::ModelBuilder;

// The message of the detflow::Error read_model_info throws, or "" when it does not throw.
std::string refusal(const std::filesystem::path& path) {
  try {
    read_model_info(path);
  } catch (const Error& error) {
    return error.what();
  }
  return {};
}

void expect_refused(const std::filesystem::path& path, const std::string& expected_words) {
  const auto message = refusal(path);
  ASSERT_FALSE(message.empty()) << path << " was accepted";
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find(expected_words), std::string::npos) << message;
}

ModelBuilder small_model() {
  ModelBuilder builder;
  builder.input("images", ElementType::float32, {1, 3, 32, 32})
      .initializer("scale", {1, 3, 1, 1}, {0.5f, 1.0f, 2.0f})
      .node("Mul", {"images", "scale"}, {"scaled"})
      .node("ReduceMean", {"scaled"}, {"output"},
            {test::Attribute::integers("axes", {2, 3}), test::Attribute::integer("keepdims", 0)})
      .output("output", ElementType::float32, {1, 3});
  return builder;
}

TEST(CorruptModel, MissingFile) {
  const auto directory = test::temporary_directory("corrupt");
  expect_refused(directory / "absent.onnx", "not found");
}

TEST(CorruptModel, Directory) {
  const auto directory = test::temporary_directory("corrupt");
  std::filesystem::create_directory(directory / "model.onnx");
  expect_refused(directory / "model.onnx", "directory");
}

TEST(CorruptModel, EmptyFile) {
  const auto directory = test::temporary_directory("corrupt");
  test::write_bytes(directory / "empty.onnx", "");
  expect_refused(directory / "empty.onnx", "empty");
}

TEST(CorruptModel, PngRenamedToOnnx) {
  const auto directory = test::temporary_directory("corrupt");
  test::write_bytes(directory / "picture.onnx", test::png_bytes());
  expect_refused(directory / "picture.onnx", "PNG image");
}

TEST(CorruptModel, RandomBytesOfManySizesAndSeeds) {
  const auto directory = test::temporary_directory("corrupt");
  const auto path = directory / "random.onnx";
  for (const std::size_t size : {1u, 2u, 7u, 64u, 1000u, 65536u}) {
    for (std::uint32_t seed = 1; seed <= 40; ++seed) {
      test::write_bytes(path, test::random_bytes(size, seed));
      const auto message = refusal(path);
      ASSERT_FALSE(message.empty()) << size << " random bytes, seed " << seed << " were accepted";
      EXPECT_NE(message.find(path.string()), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
}

// Field boundaries inside the file parse cleanly when cut; a complete model lists its
// graph, then its opset imports, then metadata, so every cut before the metadata starts
// loses something a model needs and must be refused.
TEST(CorruptModel, TruncatedAtEveryOffsetBeforeTheMetadata) {
  const auto directory = test::temporary_directory("corrupt");
  const auto without_metadata = small_model().serialize();
  const auto full = small_model().metadata("imgsz", "[32, 32]").serialize();
  ASSERT_EQ(full.substr(0, without_metadata.size()), without_metadata);
  const auto path = directory / "cut.onnx";
  for (std::size_t length = 0; length < without_metadata.size(); ++length) {
    test::write_bytes(path, std::string_view(full).substr(0, length));
    const auto message = refusal(path);
    ASSERT_FALSE(message.empty()) << "cut at " << length << " of " << full.size() << " bytes was accepted";
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  test::write_bytes(path, full);
  EXPECT_EQ(read_model_info(path).metadata_value("imgsz"), "[32, 32]");
}

TEST(CorruptModel, TruncatedFamilyModelAtSeveralOffsets) {
  const auto directory = test::temporary_directory("corrupt");
  const auto bytes = test::read_bytes(test::write_yolov8_model(directory / "v8.onnx"));
  const auto path = directory / "cut.onnx";
  for (const std::size_t length :
       {std::size_t{1}, std::size_t{16}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 100, bytes.size() - 1}) {
    test::write_bytes(path, std::string_view(bytes).substr(0, length));
    const auto message = refusal(path);
    ASSERT_FALSE(message.empty()) << "cut at " << length << " was accepted";
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  }
}

TEST(CorruptModel, GraphReadingAnUndefinedTensor) {
  const auto directory = test::temporary_directory("corrupt");
  const auto path = ModelBuilder()
                        .input("x", ElementType::float32, {1, 3, 4, 4})
                        .node("Add", {"x", "missing_weights"}, {"y"})
                        .output("y", ElementType::float32, {1, 3, 4, 4})
                        .write(directory / "dangling.onnx");
  expect_refused(path, "missing_weights");
}

TEST(CorruptModel, MissingExternalDataFile) {
  const auto directory = test::temporary_directory("corrupt");
  const auto path = ModelBuilder()
                        .input("x", ElementType::float32, {1, 4})
                        .external_initializer("w", {1, 4}, {1, 2, 3, 4}, "weights.bin")
                        .node("Add", {"x", "w"}, {"y"})
                        .output("y", ElementType::float32, {1, 4})
                        .write(directory / "external.onnx");
  std::filesystem::remove(directory / "weights.bin");
  expect_refused(path, "weights.bin");
}

TEST(CorruptModel, ModelWithoutInputs) {
  const auto directory = test::temporary_directory("corrupt");
  const auto path = ModelBuilder()
                        .initializer("constant", {1}, {3.0f})
                        .node("Identity", {"constant"}, {"y"})
                        .output("y", ElementType::float32, {1})
                        .write(directory / "no-inputs.onnx");
  expect_refused(path, "no inputs");
}

TEST(CorruptModel, ModelWithoutIrVersionOrGraph) {
  const auto directory = test::temporary_directory("corrupt");
  auto no_ir = small_model();
  no_ir.proto().clear_ir_version();
  expect_refused(no_ir.write(directory / "no-ir.onnx"), "IR version");
  auto no_graph = small_model();
  no_graph.proto().clear_graph();
  expect_refused(no_graph.write(directory / "no-graph.onnx"), "no graph");
}

}  // namespace
}  // namespace detflow
