// Outputs a script can trust: `detflow inspect --json` prints one JSON document and nothing
// else on standard output (libraries that print while engines are probed are routed to the
// log), `inspect --verify` compares the engines and says so in its exit status, `run`
// checks a non-ONNX-Runtime engine on the first frame, and `bench --soak` reports a
// resident-memory slope.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cli_process.h"
#include "model_builder.h"
#include "shared_data.h"

namespace detflow {
namespace {

using test::run_detflow;

constexpr int exit_usage = 2;
constexpr int exit_verify_disagreement = 7;

// The standard output parsed as exactly one JSON document (fails the test otherwise).
nlohmann::json parse_stdout(const test::ProcessResult& result) {
  try {
    return nlohmann::json::parse(result.out);
  } catch (const nlohmann::json::exception& error) {
    ADD_FAILURE() << "standard output is not one JSON document (" << error.what() << "):\n"
                  << result.out.substr(0, 2000) << "\nstderr:\n"
                  << result.err.substr(0, 2000);
    return {};
  }
}

class CliStreams : public ::testing::Test {
 protected:
  std::filesystem::path folder_ = test::temporary_directory("cli-streams");
  // A 160x120 picture: a gradient with two rectangles.
  std::filesystem::path write_picture(const std::string& name) {
    cv::Mat image(120, 160, CV_8UC3);
    for (int y = 0; y < image.rows; ++y) {
      for (int x = 0; x < image.cols; ++x) image.at<cv::Vec3b>(y, x) = cv::Vec3b(x, y * 2, 128);
    }
    cv::rectangle(image, cv::Rect(20, 20, 40, 60), cv::Scalar(255, 255, 255), cv::FILLED);
    cv::rectangle(image, cv::Rect(100, 50, 30, 30), cv::Scalar(0, 0, 0), cv::FILLED);
    const auto path = folder_ / name;
    cv::imwrite(path.string(), image);
    return path;
  }
  std::filesystem::path yolov8_model() {
    test::SyntheticModelOptions options;
    options.metadata = test::ultralytics_metadata(80, 64, 64);
    return test::write_yolov8_model(folder_ / "yolov8.onnx", options);
  }
};

TEST_F(CliStreams, InspectJsonWithEngineProbesIsOnlyJson) {
  const auto result = run_detflow({"inspect", yolov8_model().string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto document = parse_stdout(result);
  ASSERT_TRUE(document.contains("engines")) << result.out;
  EXPECT_FALSE(document["engines"].empty());
  EXPECT_EQ(document["family"]["name"], "yolov8");
}

TEST_F(CliStreams, InspectJsonIsOnlyJsonForEverySharedModel) {
  const auto shared = test::shared_dir();
  if (!shared || !std::filesystem::is_directory(*shared / "models")) {
    GTEST_SKIP() << test::missing_shared_message("models/");
  }
  std::vector<std::filesystem::path> models;
  for (const auto& entry : std::filesystem::directory_iterator(*shared / "models")) {
    if (entry.path().extension() == ".onnx") models.push_back(entry.path());
  }
  std::sort(models.begin(), models.end());
  ASSERT_FALSE(models.empty());
  for (const auto& model : models) {
    SCOPED_TRACE(model.filename().string());
    const auto result = run_detflow({"inspect", model.string(), "--json"}, std::chrono::seconds(600));
    ASSERT_FALSE(result.timed_out);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    const auto document = parse_stdout(result);
    EXPECT_TRUE(document.contains("engines")) << model;
  }
}

TEST_F(CliStreams, InspectVerifyAgreesOnASyntheticModelAndExitsZero) {
  const auto model = yolov8_model();
  const auto json = run_detflow({"inspect", model.string(), "--verify", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err << json.out;
  const auto document = parse_stdout(json);
  ASSERT_TRUE(document.contains("verify")) << json.out;
  EXPECT_EQ(document["verify"]["all_agree"], true) << document["verify"].dump(2);
  EXPECT_EQ(document["verify"]["reference"], "onnxruntime:cpu");
  ASSERT_FALSE(document["verify"]["engines"].empty());
  EXPECT_EQ(document["verify"]["engines"][0]["engine"], "opencv:cpu");
  EXPECT_EQ(document["verify"]["engines"][0]["verdict"], "agree");
  EXPECT_FALSE(document.contains("engines")) << "verification replaces the probe";

  const auto text = run_detflow({"inspect", model.string(), "--verify"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("verdict: every engine agrees with onnxruntime:cpu"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("opencv:cpu"), std::string::npos) << text.out;
}

TEST_F(CliStreams, InspectVerifyRejectsBadImagesInOneLine) {
  const auto model = yolov8_model();
  const auto missing = run_detflow({"inspect", model.string(), "--verify", "--image", "missing.png"});
  EXPECT_EQ(missing.exit_code, exit_usage) << missing.err;
  ASSERT_EQ(missing.err_lines().size(), 1u) << missing.err;
  EXPECT_NE(missing.err.find("missing.png"), std::string::npos) << missing.err;
  const auto without_verify = run_detflow({"inspect", model.string(), "--image", "missing.png"});
  EXPECT_EQ(without_verify.exit_code, exit_usage) << without_verify.err;
  EXPECT_NE(without_verify.err.find("needs --verify"), std::string::npos) << without_verify.err;
}

TEST_F(CliStreams, InspectVerifyOnAnImage) {
  const auto model = yolov8_model();
  const auto picture = write_picture("picture.png");
  const auto result = run_detflow({"inspect", model.string(), "--verify", "--image", picture.string(), "--json"});
  EXPECT_NE(result.exit_code, exit_verify_disagreement) << result.out;
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto document = parse_stdout(result);
  EXPECT_NE(document["verify"]["input"].get<std::string>().find("picture.png (160x120)"), std::string::npos)
      << document["verify"].dump(2);
}

TEST_F(CliStreams, RunWithOpenCvChecksTheFirstFrameAndProceedsWhenTheEnginesAgree) {
  const auto model = yolov8_model();
  const auto frame = write_picture("frame.png");
  std::ofstream(folder_ / "strict.yaml") << "engine:\n  verify: strict\n";
  const auto result = run_detflow({"run", "-c", (folder_ / "strict.yaml").string(), "--model", model.string(),
                                   "--source", frame.string(), "--engine", "opencv", "--json",
                                   (folder_ / "out.jsonl").string(), "--no-display", "-v"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("engine opencv:cpu agrees with onnxruntime on the first frame"), std::string::npos)
      << result.err;
  EXPECT_EQ(test::count_lines(folder_ / "out.jsonl"), 1u) << "the frame read ahead for the check is not lost";
}

TEST_F(CliStreams, BenchSoakReportsASlopeInTheTableAndTheJson) {
  const auto model = yolov8_model();
  const auto json_path = folder_ / "soak.json";
  const auto result = run_detflow(
      {"bench", "--model", model.string(), "--soak", "6", "--threads", "1", "--json", json_path.string(), "--quiet"},
      std::chrono::seconds(120));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("MiB/hour"), std::string::npos) << result.out;
  EXPECT_EQ(result.out.find("{"), std::string::npos) << "a table, not JSON, on standard output";
  std::ifstream file(json_path);
  const auto report = nlohmann::json::parse(file);
  ASSERT_TRUE(report.contains("soak"));
  EXPECT_TRUE(report["soak"]["slope_mib_per_hour"].is_number()) << report.dump(2);
  EXPECT_GT(report["soak"]["frames_processed"].get<std::int64_t>(), 0);

  const auto too_short = run_detflow({"bench", "--model", model.string(), "--soak", "2"});
  EXPECT_EQ(too_short.exit_code, exit_usage) << too_short.err;
}

}  // namespace
}  // namespace detflow
