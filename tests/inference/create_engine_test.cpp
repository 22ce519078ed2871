// create_engine(): backend selection, fallback order, configuration errors, and the
// engine listing and probe used by `detflow inspect`.
#include <gtest/gtest.h>

#include <algorithm>

#include "detflow/error.h"
#include "detflow/inference/describe.h"
#include "detflow/inference/engine.h"
#include "model_builder.h"
#include "shared_data.h"

namespace detflow {
namespace {

std::string creation_error(const ModelInfo& model, const EngineOptions& options) {
  try {
    create_engine(model, options);
  } catch (const Error& error) {
    return error.what();
  }
  return {};
}

bool contains(const std::vector<std::string>& items, const std::string& wanted) {
  return std::find(items.begin(), items.end(), wanted) != items.end();
}

bool any_note_contains(const EngineReport& report, const std::string& words) {
  return std::any_of(report.notes.begin(), report.notes.end(),
                     [&](const std::string& note) { return note.find(words) != std::string::npos; });
}

TEST(CreateEngine, AutoPrefersOnnxRuntimeOnCpu) {
  if (!onnxruntime_available()) GTEST_SKIP() << "this build has no ONNX Runtime";
  const auto directory = test::temporary_directory("create-engine");
  const auto model = read_model_info(test::write_yolox_model(directory / "yolox.onnx"));
  const auto engine = create_engine(model, {});
  EXPECT_EQ(engine->report().backend, "onnxruntime");
  EXPECT_TRUE(any_note_contains(engine->report(), "input 'images' [1, 3, 64, 64] NCHW: fixed in the model"));
}

TEST(CreateEngine, ExplicitOpenCv) {
  const auto directory = test::temporary_directory("create-engine");
  const auto model = read_model_info(test::write_yolox_model(directory / "yolox.onnx"));
  EngineOptions options;
  options.backend = "opencv";
  const auto engine = create_engine(model, options);
  EXPECT_EQ(engine->report().backend, "opencv");
}

TEST(CreateEngine, ConfigurationErrorsNameTheValueAndTheChoices) {
  const auto directory = test::temporary_directory("create-engine");
  const auto model = read_model_info(test::write_yolox_model(directory / "yolox.onnx"));
  EngineOptions bad_backend;
  bad_backend.backend = "tensorflow";
  EXPECT_EQ(creation_error(model, bad_backend), "engine backend 'tensorflow' is not one of: auto, onnxruntime, opencv");

  EngineOptions opencl_on_onnxruntime;
  opencl_on_onnxruntime.backend = "onnxruntime";
  opencl_on_onnxruntime.target = "opencl";
  EXPECT_NE(creation_error(model, opencl_on_onnxruntime).find("'opencl'"), std::string::npos);

  EngineOptions cuda_on_opencv;
  cuda_on_opencv.backend = "opencv";
  cuda_on_opencv.target = "cuda";
  EXPECT_EQ(creation_error(model, cuda_on_opencv), "OpenCV target 'cuda' is not one of: cpu, opencl, opencl_fp16");

  EngineOptions unknown_target;
  unknown_target.target = "npu9000";
  EXPECT_NE(creation_error(model, unknown_target).find("'npu9000'"), std::string::npos);
}

TEST(CreateEngine, NothingLoadsListsEveryAttemptAndReason) {
  const auto directory = test::temporary_directory("create-engine");
  const auto path = test::ModelBuilder()
                        .input("images", ElementType::float32, {1, 3, 32, 32})
                        .node("NoSuchOperator", {"images"}, {"output"})
                        .output("output", ElementType::float32, {1, 3, 32, 32})
                        .write(directory / "unknown-op.onnx");
  const auto message = creation_error(read_model_info(path), {});
  ASSERT_FALSE(message.empty());
  EXPECT_NE(message.find("no engine could load model '" + path.string() + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("onnxruntime:cpu: "), std::string::npos) << message;
  EXPECT_NE(message.find("opencv:cpu: "), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// Split with its sizes as an attribute is opset-11 style; ONNX Runtime refuses it under
// opset 13, OpenCV 4.6 reads it. auto must fall back and say so.
TEST(CreateEngine, FallsBackToOpenCvWhenOnnxRuntimeRefusesTheModel) {
  if (!onnxruntime_available()) GTEST_SKIP() << "this build has no ONNX Runtime";
  const auto directory = test::temporary_directory("create-engine");
  const auto path = test::ModelBuilder(13)
                        .input("images", ElementType::float32, {1, 4, 8, 8})
                        .node("Split", {"images"}, {"first", "second"},
                              {test::Attribute::integer("axis", 1), test::Attribute::integers("split", {1, 3})})
                        .output("first", ElementType::float32, {1, 1, 8, 8})
                        .output("second", ElementType::float32, {1, 3, 8, 8})
                        .write(directory / "old-split.onnx");
  const auto engine = create_engine(read_model_info(path), {});
  EXPECT_EQ(engine->report().backend, "opencv");
  EXPECT_TRUE(any_note_contains(engine->report(), "fell back to opencv:cpu"))
      << ::testing::PrintToString(engine->report().notes);
}

TEST(AvailableEngines, ListsBothBackendsOnCpu) {
  const auto engines = available_engines();
  EXPECT_TRUE(contains(engines, "opencv:cpu")) << ::testing::PrintToString(engines);
  EXPECT_EQ(contains(engines, "onnxruntime:cpu"), onnxruntime_available()) << ::testing::PrintToString(engines);
}

TEST(ProbeEngines, EveryAvailableEngineIsTriedOnce) {
  const auto directory = test::temporary_directory("create-engine");
  const auto model = read_model_info(test::write_yolov8_model(directory / "v8.onnx"));
  const auto probes = probe_engines(model, {});
  ASSERT_EQ(probes.size(), available_engines().size());
  for (const auto& probe : probes) {
    EXPECT_FALSE(probe.detail.empty()) << probe.engine;
    if (probe.engine == "onnxruntime:cpu" || probe.engine == "opencv:cpu") {
      EXPECT_TRUE(probe.loads) << probe.engine << ": " << probe.detail;
      EXPECT_NE(probe.detail.find("output0 float [1, 84, 84]"), std::string::npos) << probe.detail;
    }
  }
}

TEST(ProbeEngines, ReportsWhyAModelDoesNotLoad) {
  const auto directory = test::temporary_directory("create-engine");
  const auto path = test::ModelBuilder()
                        .input("images", ElementType::float32, {1, 3, 32, 32})
                        .node("NoSuchOperator", {"images"}, {"output"})
                        .output("output", ElementType::float32, {1, 3, 32, 32})
                        .write(directory / "unknown-op.onnx");
  for (const auto& probe : probe_engines(read_model_info(path), {})) {
    EXPECT_FALSE(probe.loads) << probe.engine;
    EXPECT_FALSE(probe.detail.empty()) << probe.engine;
  }
}

}  // namespace
}  // namespace detflow
