// The JSON Lines sink: one parseable line per frame in the format detmatch.py reads,
// failures recorded, write errors reported.
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/sinks.h"
#include "shared_data.h"
#include "sink_test_support.h"

namespace detflow {
namespace {

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(line);
  return lines;
}

Detection detection(float x1, float y1, float x2, float y2, float score, int class_id, std::string label) {
  Detection result;
  result.x1 = x1, result.y1 = y1, result.x2 = x2, result.y2 = y2, result.score = score, result.class_id = class_id;
  result.label = std::move(label);
  return result;
}

TEST(JsonLinesSink, OneLinePerFrameWithBoxesInSourcePixels) {
  const auto path = test::temporary_directory("jsonl-sink") / "out.jsonl";
  auto sink = make_jsonl_sink(path);
  EXPECT_EQ(sink->name(), "jsonl " + path.string());
  sink->open(SourceInfo{});
  EXPECT_TRUE(sink->consume(test::make_result(
      test::make_test_frame(0, 80, 60),
      {detection(1.5f, 2.25f, 30, 40, 0.875f, 0, "person"), detection(10, 11, 12, 13, 0.5f, 16, "dog")})));
  auto unknown_time = std::make_shared<Frame>(*test::make_test_frame(1, 80, 60));
  unknown_time->pts_ms = -1;
  EXPECT_TRUE(sink->consume(test::make_result(unknown_time)));
  auto failed = test::make_result(test::make_test_frame(2, 80, 60));
  failed.failed = true;
  failed.failure = "inference: shape mismatch";
  EXPECT_TRUE(sink->consume(failed));
  sink->finish();

  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 3u);
  const auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["frame"], 0);
  EXPECT_DOUBLE_EQ(first["pts_ms"].get<double>(), 0.0);
  EXPECT_EQ(first["width"], 80);
  EXPECT_EQ(first["height"], 60);
  ASSERT_EQ(first["detections"].size(), 2u);
  const auto& person = first["detections"][0];
  EXPECT_EQ(person["box"], nlohmann::json({1.5, 2.25, 30.0, 40.0}));
  EXPECT_DOUBLE_EQ(person["score"].get<double>(), 0.875);
  EXPECT_EQ(person["class"], 0);
  EXPECT_EQ(person["label"], "person");
  EXPECT_EQ(first["detections"][1]["class"], 16);
  EXPECT_FALSE(first.contains("failed"));
  // Key order is the documented one, so the file reads naturally.
  EXPECT_EQ(lines[0].rfind("{\"frame\":0,\"pts_ms\":", 0), 0u) << lines[0];

  const auto second = nlohmann::json::parse(lines[1]);
  EXPECT_TRUE(second["pts_ms"].is_null());
  EXPECT_TRUE(second["detections"].empty());

  const auto third = nlohmann::json::parse(lines[2]);
  EXPECT_EQ(third["frame"], 2);
  EXPECT_EQ(third["failed"], true);
  EXPECT_EQ(third["reason"], "inference: shape mismatch");
}

TEST(JsonLinesSink, EachLineIsOnDiskAsSoonAsConsumeReturns) {
  const auto path = test::temporary_directory("jsonl-sink") / "flushed.jsonl";
  auto sink = make_jsonl_sink(path);
  sink->open(SourceInfo{});
  for (int index = 0; index < 3; ++index) {
    sink->consume(test::make_result(test::make_test_frame(index, 16, 16)));
    const auto lines = read_lines(path);  // read by another handle, before finish()
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(index + 1));
    EXPECT_EQ(nlohmann::json::parse(lines.back())["frame"], index);
  }
  sink->finish();
}

TEST(JsonLinesSink, DetmatchReadsTheOutput) {
  const auto detmatch = test::shared_file("tools/detmatch.py");
  if (!detmatch) GTEST_SKIP() << test::missing_shared_message("tools/detmatch.py");
  if (test::run_command("command -v python3 >/dev/null 2>&1").status != 0) GTEST_SKIP() << "python3 missing";
  const auto folder = test::temporary_directory("jsonl-sink");
  const auto path = folder / "self.jsonl";
  {
    auto sink = make_jsonl_sink(path);
    sink->open(SourceInfo{});
    sink->consume(test::make_result(test::make_test_frame(0, 80, 60), {detection(1, 2, 30, 40, 0.9f, 0, "person")}));
    sink->consume(test::make_result(test::make_test_frame(1, 80, 60), {detection(5, 5, 50, 50, 0.6f, 2, "car")}));
  }
  const auto result =
      test::run_command("python3 '" + detmatch->string() + "' '" + path.string() + "' '" + path.string() + "'");
  ASSERT_EQ(result.status, 0) << result.output;
  const auto summary = nlohmann::json::parse(result.output);
  EXPECT_EQ(summary["tp"], 2);
  EXPECT_DOUBLE_EQ(summary["f1"].get<double>(), 1.0);
}

TEST(JsonLinesSink, FullDeviceThrowsNamingThePath) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "/dev/full missing";
  auto sink = make_jsonl_sink("/dev/full");
  sink->open(SourceInfo{});
  try {
    sink->consume(test::make_result(test::make_test_frame(0, 16, 16)));
    FAIL() << "expected detflow::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("/dev/full"), std::string::npos) << error.what();
  }
  EXPECT_THROW(sink->consume(test::make_result(test::make_test_frame(1, 16, 16))), Error);
  EXPECT_NO_THROW(sink->finish());
}

TEST(JsonLinesSink, MissingFolderFailsOnOpen) {
  auto sink = make_jsonl_sink("/nonexistent-detflow-folder/out.jsonl");
  EXPECT_THROW(sink->open(SourceInfo{}), Error);
}

TEST(JsonLinesSink, FinishTwiceIsSafeAndTheDestructorCloses) {
  const auto path = test::temporary_directory("jsonl-sink") / "twice.jsonl";
  {
    auto sink = make_jsonl_sink(path);
    sink->open(SourceInfo{});
    sink->consume(test::make_result(test::make_test_frame(0, 16, 16)));
    sink->finish();
    EXPECT_NO_THROW(sink->finish());
    EXPECT_TRUE(sink->consume(test::make_result(test::make_test_frame(1, 16, 16))));  // after finish: ignored
  }
  EXPECT_EQ(read_lines(path).size(), 1u);
}

}  // namespace
}  // namespace detflow
