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

TEST(JsonLinesSink, TrackedDetectionsCarryTheirIdAndPredictedTracksAreFlagged) {
  const auto path = test::temporary_directory("jsonl-sink-tracks") / "out.jsonl";
  auto sink = make_jsonl_sink(path);
  sink->open(SourceInfo{});
  auto result = test::make_result(test::make_test_frame(0, 80, 60), {detection(1, 2, 30, 40, 0.9f, 0, "person"),
                                                                     detection(50, 2, 60, 40, 0.3f, 0, "person")});
  track::Track detected;
  detected.id = 7;
  detected.detection_index = 0;
  track::Track predicted;
  predicted.id = 9;
  predicted.predicted = true;
  predicted.box = {10, 10, 20, 30};
  predicted.score = 0.8f;
  predicted.label = "person";
  result.tracks = {detected, predicted};
  EXPECT_TRUE(sink->consume(result));
  sink->finish();
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1u);
  const auto detections = nlohmann::json::parse(lines[0])["detections"];
  ASSERT_EQ(detections.size(), 3u);
  EXPECT_EQ(detections[0]["track_id"], 7);
  EXPECT_FALSE(detections[0].contains("predicted"));
  EXPECT_FALSE(detections[1].contains("track_id")) << "an untracked detection has no id";
  EXPECT_EQ(detections[2]["track_id"], 9);
  EXPECT_EQ(detections[2]["predicted"], true);
  EXPECT_EQ(detections[2]["box"], nlohmann::json({10.0, 10.0, 20.0, 30.0}));
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

TEST(JsonLinesSink, FullDeviceCountsLostLinesInsteadOfStopping) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "/dev/full missing";
  JsonLinesOptions options;
  options.counters = std::make_shared<FileOutputCounters>();
  auto sink = make_jsonl_sink("/dev/full", options);
  sink->open(SourceInfo{});
  for (int index = 0; index < 5; ++index) {
    EXPECT_TRUE(sink->consume(test::make_result(test::make_test_frame(index, 16, 16))));
  }
  EXPECT_EQ(options.counters->lines_lost, 5);
  EXPECT_EQ(options.counters->lines_written, 0);
  EXPECT_TRUE(options.counters->disk_full);
  EXPECT_NO_THROW(sink->finish());
}

std::vector<Detection> many_detections() {
  std::vector<Detection> detections;
  for (int index = 0; index < 20; ++index) {
    detections.push_back(
        detection(index, index, index + 50.5f, index + 60.25f, 0.5f, index, "label_" + std::to_string(index)));
  }
  return detections;
}

TEST(JsonLinesSink, DiskFillsAndEmptiesWithoutStoppingAndKeepsOnlyWholeLines) {
  const test::SmallDisk disk("jsonl-small-disk");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a small tmpfs (needs root): skipped";
  // Most of the disk is taken by another file, so the JSON Lines file fills the rest quickly.
  const auto filler = disk.folder() / "filler.bin";
  ASSERT_EQ(test::run_command("dd if=/dev/zero of='" + filler.string() + "' bs=64k count=12 2>/dev/null").status, 0);
  const auto path = disk.folder() / "detections.jsonl";
  JsonLinesOptions options;
  options.counters = std::make_shared<FileOutputCounters>();
  auto sink = make_jsonl_sink(path, options);
  sink->open(SourceInfo{});
  int index = 0;
  for (; index < 400 && !options.counters->disk_full; ++index) {
    ASSERT_TRUE(sink->consume(test::make_result(test::make_test_frame(index, 16, 16), many_detections())));
  }
  ASSERT_TRUE(options.counters->disk_full) << "400 lines fitted beside the filler";
  const std::int64_t written_before = options.counters->lines_written;
  // While full: every line is lost and counted, consume() never throws or blocks.
  for (int more = 0; more < 50; ++more, ++index) {
    ASSERT_TRUE(sink->consume(test::make_result(test::make_test_frame(index, 16, 16), many_detections())));
  }
  EXPECT_GE(options.counters->lines_lost, 50);
  // Space returns: writing resumes by itself.
  std::filesystem::remove(filler);
  for (int more = 0; more < 20; ++more, ++index) {
    ASSERT_TRUE(sink->consume(test::make_result(test::make_test_frame(index, 16, 16), many_detections())));
  }
  EXPECT_FALSE(options.counters->disk_full);
  EXPECT_EQ(options.counters->lines_written, written_before + 20);
  sink->finish();
  // Whole lines only, in frame order, the last one from after the disk emptied.
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(written_before + 20));
  std::int64_t previous = -1;
  for (const auto& line : lines) {
    const auto record = nlohmann::json::parse(line);  // throws on a cut line
    EXPECT_GT(record["frame"].get<std::int64_t>(), previous);
    previous = record["frame"];
  }
  EXPECT_EQ(previous, index - 1);
}

TEST(JsonLinesSink, RotationKeepsAtMostKeepFilesOfAtMostTheSize) {
  const auto folder = test::temporary_directory("jsonl-rotate");
  const auto path = folder / "out.jsonl";
  JsonLinesOptions options;
  options.rotate_bytes = 4000;
  options.rotate_keep = 3;
  options.counters = std::make_shared<FileOutputCounters>();
  auto sink = make_jsonl_sink(path, options);
  sink->open(SourceInfo{});
  constexpr int kFrames = 200;
  for (int index = 0; index < kFrames; ++index) {
    sink->consume(test::make_result(test::make_test_frame(index, 16, 16), {detection(1, 2, 3, 4, 0.5f, 0, "a")}));
  }
  sink->finish();
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) files.push_back(entry.path());
  EXPECT_EQ(files.size(), 4u) << "the current file and 3 rotated ones";
  EXPECT_GT(options.counters->rotations, 3);
  for (const auto& file : files) {
    EXPECT_LE(std::filesystem::file_size(file), 4000u) << file;
    // Rotated files are full (a line is ~110 bytes): rotation happens at the size, not earlier.
    if (file != path) {
      EXPECT_GT(std::filesystem::file_size(file), 3800u) << file;
    }
  }
  // Newest lines in out.jsonl, then .1, .2, .3 going back in time, with no gap between them.
  std::int64_t expected_last = kFrames - 1;
  for (const std::string suffix : {"", ".1", ".2", ".3"}) {
    const auto lines = read_lines(path.string() + suffix);
    ASSERT_FALSE(lines.empty()) << suffix;
    EXPECT_EQ(nlohmann::json::parse(lines.back())["frame"], expected_last) << suffix;
    expected_last = nlohmann::json::parse(lines.front())["frame"].get<std::int64_t>() - 1;
  }
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".4"));
}

TEST(JsonLinesSink, RotatingOutputKeepsThePreviousRunsFile) {
  const auto folder = test::temporary_directory("jsonl-rotate");
  const auto path = folder / "out.jsonl";
  JsonLinesOptions options;
  options.rotate_bytes = 1 << 20;
  for (int run = 0; run < 2; ++run) {
    auto sink = make_jsonl_sink(path, options);
    sink->open(SourceInfo{});
    sink->consume(test::make_result(test::make_test_frame(run, 16, 16)));
    sink->finish();
  }
  EXPECT_EQ(nlohmann::json::parse(read_lines(path).at(0))["frame"], 1);
  EXPECT_EQ(nlohmann::json::parse(read_lines(path.string() + ".1").at(0))["frame"], 0);
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
