// Fidelity against ../shared/reference: for every MODEL__MEDIA.jsonl there, detflow with
// the reference's preprocessing and thresholds (the family defaults, with score 0.25,
// class-aware NMS at IoU 0.45, at most 300 boxes) must reach F1 >= 0.99 and mean
// |score diff| <= 0.01 on both engines. The family is auto-detected, as a user gets it.
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "detection_match.h"
#include "detflow/pipeline/detector.h"
#include "detflow/pipeline/source.h"
#include "shared_data.h"

namespace detflow {
namespace {

constexpr int kVideoFrames = 100;  // the reference covers the first 100 frames of videos

struct ReferenceCase {
  std::string model;   // file stem in models/
  std::string media;   // file stem in media/
  std::string engine;  // "onnxruntime" | "opencv"
};

// Readable names in ctest's listing instead of the parameter's bytes.
void PrintTo(const ReferenceCase& reference_case, std::ostream* out) {
  *out << reference_case.model << " on " << reference_case.media << " with " << reference_case.engine;
}

std::vector<ReferenceCase> reference_cases() {
  std::vector<ReferenceCase> cases;
  const auto reference_dir = test::shared_file("reference");
  if (!reference_dir) return cases;
  const std::regex name_pattern(R"((.+)__(.+)\.jsonl)");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(*reference_dir)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::smatch match;
    const std::string name = file.filename().string();
    if (!std::regex_match(name, match, name_pattern)) continue;
    for (const char* engine : {"onnxruntime", "opencv"}) cases.push_back({match[1], match[2], engine});
  }
  return cases;
}

std::filesystem::path media_path(const std::string& stem) {
  for (const char* extension : {".avi", ".mp4", ".jpg", ".png"}) {
    if (auto file = test::shared_file("media/" + stem + extension)) return *file;
  }
  return {};
}

class ReferenceTest : public ::testing::TestWithParam<ReferenceCase> {};

TEST_P(ReferenceTest, AgreesWithReference) {
  const auto& parameters = GetParam();
  if (parameters.engine == "onnxruntime" && !onnxruntime_available()) {
    GTEST_SKIP() << "this build has no ONNX Runtime";
  }
  DETFLOW_SHARED_FILE(model_file, "models/" + parameters.model + ".onnx");
  DETFLOW_SHARED_FILE(reference_file, "reference/" + parameters.model + "__" + parameters.media + ".jsonl");
  const auto media = media_path(parameters.media);
  ASSERT_FALSE(media.empty()) << "no media file for " << parameters.media;

  ModelSettings settings;
  settings.path = model_file;
  settings.score_threshold = 0.25f;
  settings.iou_threshold = 0.45f;
  settings.max_detections = 300;
  EngineOptions engine_options;
  engine_options.backend = parameters.engine;
  engine_options.target = "cpu";
  DetectorSetup detector(settings, engine_options);
  ASSERT_EQ(detector.engine_report().backend, parameters.engine) << "the engine fell back";
  auto engine = detector.make_engine();

  SourceSettings source_settings;
  source_settings.uri = media.string();
  source_settings.mode = SourceMode::file;
  auto source = open_source(source_settings);

  Preprocessor preprocessor(detector.preprocess_spec());
  Tensor input;
  preprocessor.prepare(input);
  input.name = engine->inputs().front().name;
  std::vector<Tensor> outputs;
  std::vector<Detection> detections;
  test::DetectionStream candidate;
  Frame frame;
  for (long index = 0; index < kVideoFrames && source->read(frame); ++index) {
    const Geometry geometry = preprocessor.run(frame.image, input);
    engine->run(std::span<const Tensor>(&input, 1), outputs);
    detector.postprocess(outputs, geometry, detections);
    auto& boxes = candidate[index];
    for (const auto& detection : detections) {
      boxes.push_back({detection.x1, detection.y1, detection.x2, detection.y2, detection.score, detection.class_id});
    }
  }

  const auto reference = test::read_detection_stream(reference_file);
  const auto result = test::match_detections(candidate, reference);
  RecordProperty("f1", std::to_string(result.f1));
  std::cout << parameters.model << " on " << parameters.media << " with " << parameters.engine << ": "
            << result.to_string() << "\n";
  EXPECT_EQ(result.frames_missing, 0);
  EXPECT_GE(result.f1, 0.99) << result.to_string();
  EXPECT_LE(result.mean_abs_score_diff, 0.01) << result.to_string();
}

std::string case_name(const ::testing::TestParamInfo<ReferenceCase>& info) {
  std::string name = info.param.model + "__" + info.param.media + "__" + info.param.engine;
  for (auto& character : name) {
    if (!std::isalnum(static_cast<unsigned char>(character))) character = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(SharedReference, ReferenceTest, ::testing::ValuesIn(reference_cases()), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ReferenceTest);

// Keeps the skip visible when ../shared is absent (a user's fresh clone).
TEST(SharedReferencePresence, ReferenceFilesFound) {
  if (reference_cases().empty()) GTEST_SKIP() << test::missing_shared_message("reference/*.jsonl");
  SUCCEED();
}

}  // namespace
}  // namespace detflow
