// Families without a reference file still have to find the right things in the right
// places: NanoDet-m on ../shared/media/bus.jpg (places taken from the yolov8n reference
// of the same photo) and BlazeFace, the demo's model, on skimage's astronaut photo that
// scripts/bootstrap.sh puts in the cache (the face region marked by hand).
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "detection_match.h"
#include "detflow/pipeline/detector.h"
#include "shared_data.h"

namespace detflow {
namespace {

DetectorSetup make_detector(const std::filesystem::path& model_file) {
  ModelSettings settings;
  settings.path = model_file;
  return DetectorSetup(settings, EngineOptions{});
}

std::vector<Detection> detect(DetectorSetup& detector, const std::filesystem::path& image_path) {
  const cv::Mat image = cv::imread(image_path.string(), cv::IMREAD_COLOR);
  EXPECT_FALSE(image.empty()) << image_path;
  auto engine = detector.make_engine();
  Preprocessor preprocessor(detector.preprocess_spec());
  Tensor input = detector.make_input_tensor();
  const Geometry geometry = preprocessor.run(image, input);
  std::vector<Tensor> outputs;
  engine->run(std::span<const Tensor>(&input, 1), outputs);
  std::vector<Detection> detections;
  detector.postprocess(outputs, geometry, detections);
  return detections;
}

float overlap(const Detection& detection, const test::MatchBox& box) {
  Detection other;
  other.x1 = box.x1, other.y1 = box.y1, other.x2 = box.x2, other.y2 = box.y2;
  return intersection_over_union(detection, other);
}

// The demo assets live in $DETFLOW_CACHE_DIR/assets (default ~/.cache/detflow/assets).
std::filesystem::path asset(const std::string& name) {
  std::filesystem::path cache;
  if (const char* directory = std::getenv("DETFLOW_CACHE_DIR"); directory && *directory) {
    cache = directory;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    cache = std::filesystem::path(home) / ".cache" / "detflow";
  }
  return cache / "assets" / name;
}

TEST(SensibleDetections, NanoDetFindsTheBusAndThePeopleWhereTheyAre) {
  DETFLOW_SHARED_FILE(model_file, "models/nanodet_m_320.onnx");
  DETFLOW_SHARED_FILE(image_file, "media/bus.jpg");
  DETFLOW_SHARED_FILE(places_file, "reference/yolov8n__bus.jsonl");
  DetectorSetup detector = make_detector(model_file);
  ASSERT_EQ(detector.family().family->name, "nanodet") << detector.family().reason;
  const auto detections = detect(detector, image_file);

  // The confident objects of the reference: the bus (class 5) and four people (class 0).
  const auto places = test::read_detection_stream(places_file).at(0);
  int people_expected = 0, people_found = 0, buses_expected = 0, buses_found = 0;
  for (const auto& place : places) {
    if (place.score < 0.5f) continue;
    bool found = false;
    for (const auto& detection : detections) {
      found = found || (detection.class_id == place.class_id && overlap(detection, place) >= 0.5f);
    }
    if (place.class_id == 0) people_expected += 1, people_found += found;
    if (place.class_id == 5) buses_expected += 1, buses_found += found;
  }
  ASSERT_EQ(buses_expected, 1);
  EXPECT_EQ(buses_found, 1) << "no NanoDet bus where the bus is";
  EXPECT_GE(people_found, people_expected - 1) << people_found << " of " << people_expected << " people found";
  for (const auto& detection : detections) EXPECT_EQ(detection.label, coco80_names()[detection.class_id]);
}

TEST(SensibleDetections, BlazeFaceFindsTheAstronautsFace) {
  const auto model_file = asset("blazeface.onnx");
  const auto image_file = asset("astronaut.png");
  if (!std::filesystem::exists(model_file) || !std::filesystem::exists(image_file)) {
    GTEST_SKIP() << "needs the demo assets " << model_file << " and " << image_file
                 << " (scripts/bootstrap.sh assets): skipped";
  }
  DetectorSetup detector = make_detector(model_file);
  ASSERT_EQ(detector.family().family->name, "ssd") << detector.family().reason;
  const auto detections = detect(detector, image_file);
  ASSERT_EQ(detections.size(), 1u) << "one face in the photo";
  // The face, marked by hand on the 512x512 photo: forehead to chin, ear to ear.
  const test::MatchBox face{175, 75, 275, 180, 1, 0};
  EXPECT_GE(overlap(detections[0], face), 0.6f);
  EXPECT_GE(detections[0].score, 0.8f);
}

}  // namespace
}  // namespace detflow
