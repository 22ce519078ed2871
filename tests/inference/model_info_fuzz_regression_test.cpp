// Inputs fuzz/model_info_fuzzer.cpp found failing, as tests of the same functions in the normal
// build. The fuzzer's own reproducers are in fuzz/corpus/model_info/regression_* (replayed by
// the FuzzSmoke.model_info test when clang is installed).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "detflow/inference/describe.h"
#include "detflow/inference/model_info.h"
#include "model_builder.h"
#include "shared_data.h"

namespace detflow {
namespace {

using test::ModelBuilder;

// ONNX strings are proto2 strings: protobuf does not check them for UTF-8, and nlohmann::json
// threw type_error 316 when `detflow inspect --json` dumped such a model's description.
TEST(ModelInfoFuzzRegression, JsonOfAModelWithInvalidUtf8StringsDumps) {
  ModelBuilder builder;
  builder.producer("exporter\xff", "1.\xc3")
      .doc_string("cut \xe2\x82")
      .metadata("names", "{0: '\xfe'}")
      .input("images\x80", ElementType::float32, {1, 3, 8, 8})
      .node("Relu", {"images\x80"}, {"y"})
      .output("y", ElementType::float32, {1, 3, 8, 8});
  const ModelInfo info = read_model_info_from_bytes(builder.serialize(), "invalid-utf8.onnx");
  EXPECT_EQ(info.producer_name, "exporter\xff");  // the value itself is kept as the file has it

  const nlohmann::json document = to_json(info);
  std::string dumped;
  ASSERT_NO_THROW(dumped = document.dump(2));
  EXPECT_TRUE(nlohmann::json::accept(dumped));
  EXPECT_EQ(document["producer_name"], "exporter\xEF\xBF\xBD");  // U+FFFD for the bad byte
  EXPECT_EQ(document["inputs"][0]["name"], "images\xEF\xBF\xBD");
  EXPECT_EQ(document["metadata"]["names"], "{0: '\xEF\xBF\xBD'}");
  EXPECT_EQ(document["ir_version"], info.ir_version);
}

// The in-memory reader (what the fuzzers call) and the file reader agree, refusals included.
TEST(ModelInfoFuzzRegression, BytesAndFileReadersAgree) {
  const auto directory = test::temporary_directory("model-info-bytes");
  ModelBuilder builder;
  builder.input("x", ElementType::float32, {1, 3, 4, 4})
      .node("Relu", {"x"}, {"y"})
      .output("y", ElementType::float32, {1, 3, 4, 4});
  const auto path = builder.write(directory / "relu.onnx");
  const ModelInfo from_file = read_model_info(path);
  const ModelInfo from_bytes = read_model_info_from_bytes(builder.serialize(), path);
  EXPECT_EQ(to_json(from_file), to_json(from_bytes));
  try {
    read_model_info_from_bytes("\x08", "bad.onnx");
    FAIL() << "a lone protobuf tag was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("'bad.onnx'"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace detflow
