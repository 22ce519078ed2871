// `detflow track` as a user runs it: bad input is one "detflow: error: " line with exit status 2;
// on ../shared/tracking's MOT17-02 det-medium its tracks beat the official ByteTrack's MOTA and
// IDF1 (motmetrics.py, TrackEval's rules) and its line count is close to the ground truth's.
// Fidelity, not timing: the speed is measured by bench/micro_track.cpp.
#include <array>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_process.h"
#include "shared_data.h"

namespace detflow {
namespace {

using test::run_detflow;

void write_file(const std::filesystem::path& path, const std::string& text) { std::ofstream(path) << text; }

void expect_one_line_usage_error(const test::ProcessResult& result, const std::string& expected) {
  EXPECT_EQ(result.exit_code, 2) << result.err;
  const auto lines = result.err_lines();
  ASSERT_EQ(lines.size(), 1u) << result.err;
  EXPECT_EQ(lines[0].rfind("detflow: error: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(expected), std::string::npos) << lines[0];
}

// Standard output of a shell command, or nullopt when it fails.
std::optional<std::string> command_output(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>/dev/null").c_str(), "r");
  if (!pipe) return std::nullopt;
  std::array<char, 4096> buffer{};
  std::string output;
  while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
  if (::pclose(pipe) != 0) return std::nullopt;
  return output;
}

// A Python 3 that has numpy and scipy (motmetrics.py needs them), or nullopt.
std::optional<std::string> python_with_scipy() {
  for (const std::string candidate : {"python3", "/usr/bin/python3"}) {
    if (command_output(candidate + " -c 'import numpy, scipy'")) return candidate;
  }
  return std::nullopt;
}

class TrackCommand : public ::testing::Test {
 protected:
  std::filesystem::path folder_ = test::temporary_directory("track-command");
};

TEST_F(TrackCommand, BadDetectionsNameTheLineAndText) {
  write_file(folder_ / "det.txt", "1,-1,10,10,50,100,0.9\n2,-1,10,oops,50,100,0.9\n");
  expect_one_line_usage_error(run_detflow({"track", "--detections", (folder_ / "det.txt").string()}),
                              "det.txt:2: field y 'oops'");
  expect_one_line_usage_error(run_detflow({"track", "--detections", (folder_ / "missing.txt").string()}),
                              "missing.txt");
}

TEST_F(TrackCommand, BadLinesZonesAndSettingsAreOneLineErrors) {
  write_file(folder_ / "det.txt", "1,-1,10,10,50,100,0.9\n");
  const std::string detections = (folder_ / "det.txt").string();
  expect_one_line_usage_error(run_detflow({"track", "--detections", detections, "--line", "door=5,5,5,5"}),
                              "zero length");
  expect_one_line_usage_error(run_detflow({"track", "--detections", detections, "--zone", "z=0,0,10,10,10,0,0,10"}),
                              "intersects itself");
  expect_one_line_usage_error(run_detflow({"track", "--detections", detections, "--zone", "z=0,0,10,10"}),
                              "at least 3 points");
  expect_one_line_usage_error(
      run_detflow({"track", "--detections", detections, "--set", "tracking.low_score_threshold=0.9"}),
      "tracking.low_score_threshold");
  expect_one_line_usage_error(run_detflow({"track", "--detections", detections, "--set", "tracking.confirm_hits=0"}),
                              "tracking.confirm_hits");
  // A frame rate of 0 (given, or in the seqinfo.ini beside the detections) is an error, not 30.
  expect_one_line_usage_error(run_detflow({"track", "--detections", detections, "--fps", "0"}),
                              "--fps 0 is out of range");
  expect_one_line_usage_error(run_detflow({"track", "--detections", detections, "--fps", "-12.5"}),
                              "--fps -12.5 is out of range");
  write_file(folder_ / "seqinfo.ini", "[Sequence]\nname=door\nframeRate=0\nseqLength=1\n");
  expect_one_line_usage_error(run_detflow({"track", "--detections", detections}), "seqinfo.ini: frameRate 0");
  EXPECT_EQ(run_detflow({"track", "--detections", detections, "--fps", "25"}).exit_code, 0) << "--fps wins";
}

TEST_F(TrackCommand, WritesTracksEventsAndCountsForAPersonWalkingThroughADoor) {
  std::string rows;
  for (int frame = 1; frame <= 60; ++frame) {
    rows += std::to_string(frame) + ",-1," + std::to_string(100 + 10 * frame) + ",200,40,100,0.9,-1,-1,-1\n";
  }
  write_file(folder_ / "det.txt", rows);
  const auto result =
      run_detflow({"track", "--detections", (folder_ / "det.txt").string(), "--output",
                   (folder_ / "tracks.txt").string(), "--events", (folder_ / "events.jsonl").string(), "--line",
                   "door=500,0,500,1000", "--zone", "room=600,0,900,0,900,400,600,400", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto summary = nlohmann::json::parse(result.out);
  EXPECT_EQ(summary["frames"], 60);
  EXPECT_EQ(summary["tracks"], 1);
  EXPECT_EQ(summary["counts"]["lines"][0]["name"], "door");
  EXPECT_EQ(summary["counts"]["lines"][0]["in"], 1) << "moving right across a downward line is 'in'";
  EXPECT_EQ(summary["counts"]["zones"][0]["entered"], 1);
  EXPECT_EQ(test::count_lines(folder_ / "tracks.txt"), 59u) << "every frame but the tentative first";
  std::ifstream events(folder_ / "events.jsonl");
  std::vector<std::string> types;
  for (std::string line; std::getline(events, line);) types.push_back(nlohmann::json::parse(line)["type"]);
  EXPECT_EQ(types, (std::vector<std::string>{"track_start", "line_cross", "zone_enter", "zone_exit", "track_end"}));
}

TEST_F(TrackCommand, BeatsByteTrackOnMot17_02DetMedium) {
  DETFLOW_SHARED_FILE(detections, "tracking/MOT17-02/det-medium.txt");
  DETFLOW_SHARED_FILE(ground_truth, "tracking/MOT17-02/gt.txt");
  DETFLOW_SHARED_FILE(motmetrics, "tools/motmetrics.py");
  DETFLOW_SHARED_FILE(line_counts, "tools/mot_line_counts.py");
  const auto python = python_with_scipy();
  if (!python) GTEST_SKIP() << "python3 with numpy and scipy is missing (Debian: python3-numpy python3-scipy)";

  const auto tracks = folder_ / "tracks.txt";
  const auto result = run_detflow({"track", "--detections", detections.string(), "--output", tracks.string(), "--line",
                                   "door=1200,0,1200,1080", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto summary = nlohmann::json::parse(result.out);
  EXPECT_EQ(summary["frames"], 600) << "seqLength from seqinfo.ini";
  EXPECT_EQ(summary["fps"], 30.0) << "frameRate from seqinfo.ini";

  const auto scores = command_output(*python + " '" + motmetrics.string() + "' '" + ground_truth.string() + "' '" +
                                     tracks.string() + "' --json");
  ASSERT_TRUE(scores) << "motmetrics.py failed";
  const auto metrics = nlohmann::json::parse(*scores);
  // Official ByteTrack (deploy code, default thresholds) on this file: MOTA 46.3, IDF1 54.4.
  EXPECT_GE(metrics["mota"].get<double>(), 0.463 + 0.03) << *scores;
  EXPECT_GE(metrics["idf1"].get<double>(), 0.544 + 0.03) << *scores;

  const auto truth = command_output(*python + " '" + line_counts.string() + "' '" + ground_truth.string() +
                                    "' --gt --line 1200,0,1200,1080");
  ASSERT_TRUE(truth);
  const double true_total = nlohmann::json::parse(*truth)["total"].get<double>();
  const auto& door = summary["counts"]["lines"][0];
  const double counted = door["in"].get<double>() + door["out"].get<double>();
  EXPECT_NEAR(counted, true_total, 0.1 * true_total + 1) << "ground truth " << *truth;
}

}  // namespace
}  // namespace detflow
