// Several cameras in one process through the command line: a `sources:` list or a repeated
// --source, outputs per camera through {camera}, every stream's output complete and in
// order, per-camera statistics, and the configuration errors of the list (exit status 2).
// The model is synthetic and the clips are generated: nothing here needs ../shared.
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "cli_process.h"
#include "model_builder.h"
#include "shared_data.h"

namespace detflow {
namespace {

using test::run_detflow;

constexpr int kClipFrames = 30;

void write_file(const std::filesystem::path& path, const std::string& text) { std::ofstream(path) << text; }

// The "frame" of every line of a JSON Lines file, in file order (fails on a line that is not JSON).
std::vector<std::int64_t> frames_of(const std::filesystem::path& path) {
  std::vector<std::int64_t> frames;
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);) {
    const auto record = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(record.is_discarded()) << path << ": " << line;
    if (!record.is_discarded()) frames.push_back(record["frame"].get<std::int64_t>());
  }
  return frames;
}

// 0, 1, ..., count - 1.
std::vector<std::int64_t> first_frames(int count) {
  std::vector<std::int64_t> frames(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) frames[static_cast<std::size_t>(i)] = i;
  return frames;
}

bool strictly_increasing(const std::vector<std::int64_t>& frames) {
  for (std::size_t i = 1; i < frames.size(); ++i) {
    if (frames[i] <= frames[i - 1]) return false;
  }
  return true;
}

class CliMultiStream : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test::write_yolov8_model(folder_ / "model.onnx");
    clip_ = folder_ / "clip.avi";
    cv::VideoWriter writer(clip_.string(), cv::CAP_OPENCV_MJPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0,
                           cv::Size(160, 120));
    ASSERT_TRUE(writer.isOpened()) << clip_;
    for (int frame = 0; frame < kClipFrames; ++frame) {
      cv::Mat image(120, 160, CV_8UC3, cv::Scalar(40, 80, 120));
      cv::rectangle(image, cv::Rect(frame * 4, 40, 30, 30), cv::Scalar(255, 255, 255), cv::FILLED);
      writer.write(image);
    }
  }

  std::filesystem::path at(const std::string& name) const { return folder_ / name; }

  // A configuration file with the model, no display, and `rest`.
  std::filesystem::path config(const std::string& rest) {
    const auto path = folder_ / "multi.yaml";
    write_file(path, "model:\n  path: " + model_.string() + "\nsinks:\n  display: off\n" + rest);
    return path;
  }

  std::filesystem::path folder_ = test::temporary_directory("cli-multi");
  std::filesystem::path model_;
  std::filesystem::path clip_;
};

TEST_F(CliMultiStream, TwoFileStreamsWriteTheirOwnCompleteOrderedOutputs) {
  const auto file =
      config("  json: " + at("out-{camera}.jsonl").string() + "\n  stats_json: " + at("stats.json").string() +
             "\nsources:\n  - name: left\n    uri: " + clip_.string() +
             "\n  - name: right\n    uri: " + clip_.string() + "\n");
  const auto result = run_detflow({"run", "-c", file.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(frames_of(at("out-left.jsonl")), first_frames(kClipFrames));
  EXPECT_EQ(frames_of(at("out-right.jsonl")), first_frames(kClipFrames));

  // The total, then a section per camera, on standard output and in --stats-json.
  EXPECT_NE(result.out.find("frames: 60 read, 60 processed"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("camera left:\nframes: 30 read, 30 processed"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("camera right:\nframes: 30 read, 30 processed"), std::string::npos) << result.out;
  const auto statistics = nlohmann::json::parse(test::read_text(at("stats.json")));
  EXPECT_EQ(statistics["frames_processed"], 2 * kClipFrames) << statistics.dump();
  EXPECT_FALSE(statistics.contains("camera"));
  ASSERT_EQ(statistics["streams"].size(), 2u) << statistics.dump();
  EXPECT_EQ(statistics["streams"][0]["camera"], "left");
  EXPECT_EQ(statistics["streams"][1]["camera"], "right");
  for (const auto& stream : statistics["streams"]) EXPECT_EQ(stream["frames_processed"], kClipFrames);
}

TEST_F(CliMultiStream, RepeatedSourceFlagMakesStreamsCam0Cam1) {
  const auto printed = run_detflow({"run", "--source", "a.mp4", "--source", "rtsp://cam/b", "--print-config"});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_NE(printed.out.find("sources:\n  - name: cam0\n    uri: a.mp4\n  - name: cam1\n    uri: "), std::string::npos)
      << printed.out;

  const auto result = run_detflow({"run", "--model", model_.string(), "--source", clip_.string(), "--source",
                                   clip_.string(), "--json", at("{camera}.jsonl").string(), "--no-display", "-q"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(frames_of(at("cam0.jsonl")), first_frames(kClipFrames));
  EXPECT_EQ(frames_of(at("cam1.jsonl")), first_frames(kClipFrames));
}

// Exit status 2 and one error line naming `expected`.
void expect_configuration_error(const test::ProcessResult& result, const std::string& expected) {
  EXPECT_EQ(result.exit_code, 2) << result.err;
  const auto lines = result.err_lines();
  ASSERT_EQ(lines.size(), 1u) << result.err;
  EXPECT_EQ(lines[0].rfind("detflow: error: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(expected), std::string::npos) << lines[0];
}

TEST_F(CliMultiStream, ListErrorsExitTwoWithOneLine) {
  const std::string two_streams =
      "sources:\n  - {name: a, uri: " + clip_.string() + "}\n  - {name: a, uri: " + clip_.string() + "}\n";
  expect_configuration_error(run_detflow({"run", "-c", config(two_streams).string()}), "duplicate stream name 'a'");
  expect_configuration_error(run_detflow({"run", "-c", config("sources: []\n").string()}), "an empty list");
  const std::string shared = "  json: " + at("out.jsonl").string() +
                             "\nsources:\n  - {name: a, uri: " + clip_.string() +
                             "}\n  - {name: b, uri: " + clip_.string() + "}\n";
  expect_configuration_error(run_detflow({"run", "-c", config(shared).string()}), "{camera}");
  EXPECT_FALSE(std::filesystem::exists(at("out.jsonl"))) << "nothing is written before the checks pass";
}

TEST_F(CliMultiStream, FourLiveCamerasAndAFileShareTheWorkers) {
  std::string streams = "sources:\n";
  for (int camera = 0; camera < 4; ++camera) {
    streams += "  - name: live" + std::to_string(camera) +
               "\n    uri: \"gst:videotestsrc is-live=true pattern=ball ! "
               "video/x-raw,width=160,height=120,framerate=30/1\"\n";
  }
  streams += "  - name: file\n    uri: " + clip_.string() + "\n";
  const auto file = config("  json: " + at("{camera}.jsonl").string() + "\n  stats_json: " + at("stats.json").string() +
                           "\npipeline:\n  max_frames: " + std::to_string(kClipFrames) + "\n" + streams);
  const auto result = run_detflow({"run", "-c", file.string(), "-q"}, std::chrono::seconds(60));
  ASSERT_FALSE(result.timed_out);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  // The file: every frame, in order. A live camera: what was not dropped, in order.
  EXPECT_EQ(frames_of(at("file.jsonl")), first_frames(kClipFrames));
  const auto statistics = nlohmann::json::parse(test::read_text(at("stats.json")));
  ASSERT_EQ(statistics["streams"].size(), 5u) << statistics.dump();
  for (int camera = 0; camera < 4; ++camera) {
    const std::string name = "live" + std::to_string(camera);
    const auto frames = frames_of(at(name + ".jsonl"));
    EXPECT_FALSE(frames.empty()) << name;
    EXPECT_TRUE(strictly_increasing(frames)) << name;
    const auto& own = statistics["streams"][static_cast<std::size_t>(camera)];
    EXPECT_EQ(own["camera"], name);
    EXPECT_EQ(own["frames_read"], kClipFrames) << own.dump();
    EXPECT_EQ(own["frames_processed"].get<std::int64_t>(), static_cast<std::int64_t>(frames.size())) << own.dump();
    EXPECT_EQ(own["frames_processed"].get<std::int64_t>() + own["frames_dropped"].get<std::int64_t>() +
                  own["frames_failed"].get<std::int64_t>(),
              kClipFrames)
        << own.dump();
  }
  EXPECT_EQ(statistics["streams"][4]["frames_processed"], kClipFrames);
}

TEST_F(CliMultiStream, ALiveStreamGivenUpFailsTheRunAfterTheOthersFinish) {
  // Port 9 (discard) on loopback: no RTSP server. It is retried, then given up (exit 6),
  // while the file stream runs to its end.
  const auto file =
      config("  json: " + at("{camera}.jsonl").string() + "\nsources:\n  - name: file\n    uri: " + clip_.string() +
             "\n  - name: gone\n    uri: rtsp://127.0.0.1:9/none\n    max_reconnects: 2\n"
             "    reconnect_initial: 0.1\n    reconnect_max: 0.2\n");
  const auto result = run_detflow({"run", "-c", file.string(), "-q"}, std::chrono::seconds(60));
  ASSERT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, 6) << result.err;
  EXPECT_NE(result.err.find("camera gone"), std::string::npos) << result.err;
  EXPECT_EQ(frames_of(at("file.jsonl")), first_frames(kClipFrames));
}

}  // namespace
}  // namespace detflow
