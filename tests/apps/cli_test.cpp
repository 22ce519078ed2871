// The detflow command line, run as a child process: every bad input fails before any
// processing with one "detflow: error: " line and exit status 2; real runs write complete
// outputs; SIGINT drains and finalises.
#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_process.h"
#include "model_builder.h"
#include "shared_data.h"

namespace detflow {
namespace {

using test::run_detflow;

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Exit status 2, exactly one line on stderr, starting with the prefix and naming `expected`.
void expect_one_line_usage_error(const test::ProcessResult& result, const std::string& expected) {
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, 2) << result.err;
  const auto lines = result.err_lines();
  ASSERT_EQ(lines.size(), 1u) << result.err;
  EXPECT_EQ(lines[0].rfind("detflow: error: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(expected), std::string::npos) << lines[0];
}

bool have_ffprobe() { return std::system("command -v ffprobe >/dev/null 2>&1") == 0; }

long long decoded_frames(const std::filesystem::path& path) {
  const std::string command =
      "ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames "
      "-of csv=p=0 '" +
      path.string() + "' 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 128> buffer{};
  std::string output;
  while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
  if (::pclose(pipe) != 0) return -1;
  try {
    return std::stoll(output);
  } catch (...) {
    return -1;
  }
}

class CliBadInput : public ::testing::Test {
 protected:
  std::filesystem::path folder_ = test::temporary_directory("cli-input");
  // An existing file standing in for a model: the source and output checks come before
  // the model is parsed, so these tests need no real model.
  std::filesystem::path stand_in_model() {
    const auto path = folder_ / "stand-in.onnx";
    write_file(path, "not parsed before the source opens");
    return path;
  }
};

TEST_F(CliBadInput, MissingModel) {
  expect_one_line_usage_error(
      run_detflow({"run", "--model", (folder_ / "missing.onnx").string(), "--source", "x.mp4", "--no-display"}),
      "missing.onnx: no such file");
}

TEST_F(CliBadInput, DirectoryAsModel) {
  expect_one_line_usage_error(run_detflow({"run", "--model", folder_.string(), "--source", "x.mp4", "--no-display"}),
                              "is a directory");
}

TEST_F(CliBadInput, NoModelOrNoSource) {
  expect_one_line_usage_error(run_detflow({"run", "--source", "x.mp4"}), "--model");
  expect_one_line_usage_error(run_detflow({"run", "--model", stand_in_model().string()}), "--source");
}

TEST_F(CliBadInput, MissingSource) {
  expect_one_line_usage_error(run_detflow({"run", "--model", stand_in_model().string(), "--source",
                                           (folder_ / "missing.mp4").string(), "--no-display"}),
                              "missing.mp4");
}

TEST_F(CliBadInput, NonexistentCamera) {
  expect_one_line_usage_error(
      run_detflow({"run", "--model", stand_in_model().string(), "--source", "/dev/video9", "--no-display"}),
      "/dev/video9");
}

TEST_F(CliBadInput, UnknownUrlScheme) {
  expect_one_line_usage_error(
      run_detflow({"run", "--model", stand_in_model().string(), "--source", "ftp://example.com/a.mp4", "--no-display"}),
      "ftp");
}

TEST_F(CliBadInput, OutputFolderMissing) {
  expect_one_line_usage_error(run_detflow({"run", "--model", stand_in_model().string(), "--source", "x.mp4", "--output",
                                           (folder_ / "no-such-folder" / "out.mp4").string()}),
                              "does not exist");
  expect_one_line_usage_error(run_detflow({"run", "--model", stand_in_model().string(), "--source", "x.mp4", "--json",
                                           (folder_ / "no-such-folder" / "out.jsonl").string()}),
                              "does not exist");
}

TEST_F(CliBadInput, UnwritableOutput) {
  expect_one_line_usage_error(run_detflow({"run", "--model", stand_in_model().string(), "--source", "x.mp4", "--json",
                                           "/proc/detflow-test.jsonl"}),
                              "not writable");
  expect_one_line_usage_error(run_detflow({"run", "--model", stand_in_model().string(), "--source", "x.mp4",
                                           "--stats-json", "/proc/detflow-stats.json"}),
                              "not writable");
}

TEST_F(CliBadInput, UnsupportedVideoExtension) {
  expect_one_line_usage_error(run_detflow({"run", "--model", stand_in_model().string(), "--source", "x.mp4", "--output",
                                           (folder_ / "out.mov").string()}),
                              ".mp4, .mkv or .avi");
}

TEST_F(CliBadInput, InvalidYamlKeyAndValue) {
  write_file(folder_ / "key.yaml", "model:\n  confidence: 0.3\n");
  expect_one_line_usage_error(run_detflow({"run", "-c", (folder_ / "key.yaml").string()}),
                              "unknown key 'model.confidence'");
  write_file(folder_ / "value.yaml", "engine:\n  workers: 65\n");
  expect_one_line_usage_error(run_detflow({"run", "-c", (folder_ / "value.yaml").string()}),
                              "engine.workers = '65': out of range");
  write_file(folder_ / "syntax.yaml", "model: [unclosed\n");
  expect_one_line_usage_error(run_detflow({"run", "-c", (folder_ / "syntax.yaml").string()}), "invalid YAML");
  expect_one_line_usage_error(run_detflow({"run", "-c", (folder_ / "missing.yaml").string()}), "no such file");
}

TEST_F(CliBadInput, InvalidFlagValues) {
  expect_one_line_usage_error(run_detflow({"run", "--conf", "1.5", "--print-config"}), "model.conf = '1.5'");
  expect_one_line_usage_error(run_detflow({"run", "--size", "big", "--print-config"}), "--size big");
  expect_one_line_usage_error(run_detflow({"run", "--engine", "tensorflow", "--print-config"}), "engine.backend");
  expect_one_line_usage_error(run_detflow({"run", "--workers", "x", "--print-config"}), "engine.workers");
  expect_one_line_usage_error(run_detflow({"run", "--detection-interval", "0", "--print-config"}),
                              "detection.interval = '0'");
  expect_one_line_usage_error(run_detflow({"run", "--bogus"}), "--bogus");
  expect_one_line_usage_error(run_detflow({}), "subcommand");
}

TEST_F(CliBadInput, InspectRejectsFilesThatAreNotModels) {
  write_file(folder_ / "empty.onnx", "");
  expect_one_line_usage_error(run_detflow({"inspect", (folder_ / "empty.onnx").string()}), "empty.onnx");
  std::string random_bytes(4096, '\0');
  unsigned state = 12345;
  for (char& byte : random_bytes) {
    state = state * 1103515245u + 12345u;
    byte = static_cast<char>(state >> 24);
  }
  write_file(folder_ / "random.onnx", random_bytes);
  expect_one_line_usage_error(run_detflow({"inspect", (folder_ / "random.onnx").string()}), "random.onnx");
  constexpr char png_start[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0";  // 16x16 RGB
  write_file(folder_ / "picture.onnx", std::string(png_start, sizeof png_start - 1));
  expect_one_line_usage_error(run_detflow({"inspect", (folder_ / "picture.onnx").string()}), "picture.onnx");
  expect_one_line_usage_error(run_detflow({"inspect", folder_.string()}), folder_.string());
  expect_one_line_usage_error(run_detflow({"inspect", (folder_ / "missing.onnx").string()}), "missing.onnx");
}

TEST_F(CliBadInput, InspectRejectsATruncatedModel) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  const std::string bytes = test::read_text(model);
  write_file(folder_ / "truncated.onnx", bytes.substr(0, bytes.size() / 2));
  expect_one_line_usage_error(run_detflow({"inspect", (folder_ / "truncated.onnx").string()}), "truncated.onnx");
}

TEST(CliHelp, HelpListsTheConfigurationKeysAndExitsZero) {
  const auto result = run_detflow({"run", "--help"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  for (const char* expected : {"--model", "--source", "--output", "--json", "--print-config", "model.conf",
                               "engine.threads", "sinks.display", "{camera}"}) {
    EXPECT_NE(result.out.find(expected), std::string::npos) << expected;
  }
}

TEST(CliPrintConfig, RoundTripsThroughAFile) {
  const auto folder = test::temporary_directory("cli-print");
  write_file(folder / "base.yaml", "model:\n  conf: 0.3\nengine:\n  workers: 2\n");
  const auto first =
      run_detflow({"run", "-c", (folder / "base.yaml").string(), "--iou", "0.5", "--classes", "person,2", "--size",
                   "320x256", "--output", "out.mkv", "--no-display", "--live", "--print-config"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("conf: 0.3"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("iou: 0.5"), std::string::npos);
  EXPECT_NE(first.out.find("workers: 2"), std::string::npos);
  EXPECT_NE(first.out.find("input_width: 320"), std::string::npos);
  EXPECT_NE(first.out.find("input_height: 256"), std::string::npos);
  EXPECT_NE(first.out.find("video: out.mkv"), std::string::npos);
  EXPECT_NE(first.out.find("display: \"off\""), std::string::npos);
  EXPECT_NE(first.out.find("mode: live"), std::string::npos);
  write_file(folder / "printed.yaml", first.out);
  const auto second = run_detflow({"run", "-c", (folder / "printed.yaml").string(), "--print-config"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, first.out);
}

TEST(CliInspect, DescribesARealModelInTextAndJson) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  const auto text = run_detflow({"inspect", model.string()});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("family: yolox"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("images"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("opencv:cpu"), std::string::npos) << text.out;
  const auto json = run_detflow({"inspect", model.string(), "--json", "--no-probe"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto document = nlohmann::json::parse(json.out);
  EXPECT_EQ(document["family"]["name"], "yolox");
  EXPECT_EQ(document["input_decision"]["shape"], nlohmann::json({1, 3, 416, 416}));
  EXPECT_FALSE(document.contains("engines"));
}

class CliRun : public ::testing::Test {
 protected:
  std::filesystem::path folder_ = test::temporary_directory("cli-run");
};

TEST_F(CliRun, FortyFramesGiveAFortyFrameVideoAndFortyJsonLines) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  const auto result =
      run_detflow({"run", "--model", model.string(), "--source", video.string(), "--output",
                   (folder_ / "out.mp4").string(), "--json", (folder_ / "out.jsonl").string(), "--stats-json",
                   (folder_ / "stats.json").string(), "--no-display", "--max-frames", "40"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("out.mp4"), std::string::npos) << "the outputs are announced: " << result.out;
  EXPECT_NE(result.err.find("yolox"), std::string::npos) << "the decisions are printed: " << result.err;
  EXPECT_EQ(test::count_lines(folder_ / "out.jsonl"), 40u);
  const auto statistics = nlohmann::json::parse(test::read_text(folder_ / "stats.json"));
  EXPECT_EQ(statistics["frames_processed"], 40) << statistics.dump();
  if (!have_ffprobe()) GTEST_SKIP() << "ffprobe missing: frame count not checked";
  EXPECT_EQ(decoded_frames(folder_ / "out.mp4"), 40);

  // The detections match the independent reference on these frames.
  const auto reference = test::shared_file("reference/yolox_nano__vtest.jsonl");
  const auto detmatch = test::shared_file("tools/detmatch.py");
  if (!reference || !detmatch) return;
  std::ifstream reference_file(*reference);
  std::ofstream first_frames(folder_ / "reference-40.jsonl");
  std::string line;
  for (int index = 0; index < 40 && std::getline(reference_file, line); ++index) first_frames << line << '\n';
  first_frames.close();
  const std::string command = "python3 '" + detmatch->string() + "' '" + (folder_ / "out.jsonl").string() + "' '" +
                              (folder_ / "reference-40.jsonl").string() + "' --min-f1 0.99 >/dev/null";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

TEST_F(CliRun, TrackingWithADetectionIntervalCountsAndEndsEveryTrack) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  // --detection-interval implies --track; lines and zones are drawn and counted.
  const auto result = run_detflow({"run",
                                   "--model",
                                   model.string(),
                                   "--source",
                                   video.string(),
                                   "--output",
                                   (folder_ / "out.mp4").string(),
                                   "--json",
                                   (folder_ / "out.jsonl").string(),
                                   "--events",
                                   (folder_ / "events.jsonl").string(),
                                   "--stats-json",
                                   (folder_ / "stats.json").string(),
                                   "--line",
                                   "door=300,0,300,576",
                                   "--zone",
                                   "z=100,100,400,100,400,400,100,400",
                                   "--detection-interval",
                                   "2",
                                   "--no-display",
                                   "--max-frames",
                                   "30"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("line door: in "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("zone z: occupancy "), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("(detector ran on 15 of 30 frames)"), std::string::npos) << result.out;

  const auto statistics = nlohmann::json::parse(test::read_text(folder_ / "stats.json"));
  EXPECT_EQ(statistics["frames_processed"], 30) << statistics.dump();
  EXPECT_EQ(statistics["frames_detected"], 15) << statistics.dump();
  ASSERT_TRUE(statistics.contains("counts")) << statistics.dump();
  EXPECT_EQ(statistics["counts"]["lines"][0]["name"], "door");
  EXPECT_TRUE(statistics["counts"]["lines"][0].contains("in"));
  EXPECT_EQ(statistics["counts"]["zones"][0]["name"], "z");
  EXPECT_TRUE(statistics["counts"]["zones"][0].contains("occupancy"));

  // Every frame has its line; every other one was predicted.
  std::ifstream lines(folder_ / "out.jsonl");
  std::string line;
  int frames = 0, skipped = 0;
  while (std::getline(lines, line)) {
    const auto record = nlohmann::json::parse(line);
    EXPECT_EQ(record["frame"], frames);
    if (record.value("detector_ran", true)) {
      EXPECT_EQ(frames % 2, 0) << line;
    } else {
      ++skipped;
      for (const auto& detection : record["detections"]) EXPECT_EQ(detection.value("predicted", false), true) << line;
    }
    ++frames;
  }
  EXPECT_EQ(frames, 30);
  EXPECT_EQ(skipped, 15);

  // The events file is complete: every track that started has ended.
  std::ifstream events(folder_ / "events.jsonl");
  int starts = 0, ends = 0;
  while (std::getline(events, line)) {
    const auto event = nlohmann::json::parse(line);
    starts += event["type"] == "track_start" ? 1 : 0;
    ends += event["type"] == "track_end" ? 1 : 0;
  }
  EXPECT_GT(starts, 0);
  EXPECT_EQ(ends, starts);
}

TEST_F(CliRun, AnnotatedImagesKeepTheirNames) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(bus, "media/bus.jpg");
  DETFLOW_SHARED_FILE(dog, "media/dog.jpg");
  std::filesystem::create_directories(folder_ / "in");
  std::filesystem::create_symlink(bus, folder_ / "in" / "bus.jpg");
  std::filesystem::create_symlink(dog, folder_ / "in" / "dog.jpg");
  const auto result = run_detflow({"run", "--model", model.string(), "--source", (folder_ / "in").string(), "--output",
                                   (folder_ / "annotated").string(), "--json", (folder_ / "images.jsonl").string(),
                                   "--no-display", "-q"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(std::filesystem::is_regular_file(folder_ / "annotated" / "bus.jpg"));
  EXPECT_TRUE(std::filesystem::is_regular_file(folder_ / "annotated" / "dog.jpg"));
  EXPECT_EQ(test::count_lines(folder_ / "images.jsonl"), 2u);
  EXPECT_TRUE(result.out.empty()) << "--quiet prints no statistics: " << result.out;
}

// Waits until `path` has at least `lines` lines or the child has run for `timeout`.
bool wait_for_lines(const std::filesystem::path& path, std::size_t lines, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (test::count_lines(path) >= lines) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST_F(CliRun, SigintDrainsAndEveryOutputIsComplete) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  test::ChildProcess child({"run", "--model", model.string(), "--source", video.string(), "--output",
                            (folder_ / "out.mp4").string(), "--json", (folder_ / "out.jsonl").string(), "--no-display"},
                           folder_);
  ASSERT_TRUE(wait_for_lines(folder_ / "out.jsonl", 15, std::chrono::seconds(60)));
  child.send(SIGINT);
  const auto result = child.wait(std::chrono::seconds(60));
  ASSERT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("frames:"), std::string::npos) << "statistics are printed: " << result.out;
  const std::size_t lines = test::count_lines(folder_ / "out.jsonl");
  EXPECT_GE(lines, 15u);
  EXPECT_LT(lines, 795u);
  std::ifstream jsonl(folder_ / "out.jsonl");
  for (std::string line; std::getline(jsonl, line);) {
    EXPECT_TRUE(nlohmann::json::accept(line)) << "a whole JSON object per line: " << line;
  }
  if (!have_ffprobe()) GTEST_SKIP() << "ffprobe missing: frame count not checked";
  EXPECT_EQ(decoded_frames(folder_ / "out.mp4"), static_cast<long long>(lines));
}

TEST_F(CliRun, SecondSigintQuitsAtOnceAndTheVideoStillPlays) {
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  test::ChildProcess child({"run", "--model", model.string(), "--source", video.string(), "--output",
                            (folder_ / "out.mp4").string(), "--json", (folder_ / "out.jsonl").string(), "--no-display"},
                           folder_);
  ASSERT_TRUE(wait_for_lines(folder_ / "out.jsonl", 10, std::chrono::seconds(60)));
  child.send(SIGINT);
  child.send(SIGINT);
  const auto result = child.wait(std::chrono::seconds(60));
  ASSERT_FALSE(result.timed_out);
  EXPECT_TRUE(result.exit_code == 130 || result.exit_code == 0) << result.exit_code << " " << result.err;
  if (!have_ffprobe()) GTEST_SKIP() << "ffprobe missing: video not checked";
  EXPECT_GE(decoded_frames(folder_ / "out.mp4"), 10);
}

// Exit codes (README "Exit codes", apps/exit_codes.h): each failure kind has its own, so a
// supervisor can tell a configuration to fix from a camera to wait for.
class CliExitCodes : public ::testing::Test {
 protected:
  std::filesystem::path folder_ = test::temporary_directory("cli-exit");
  // A folder with one 64x48 grey PPM image.
  std::filesystem::path image_folder() {
    std::filesystem::create_directories(folder_ / "in");
    write_file(folder_ / "in" / "a.ppm", "P6\n64 48\n255\n" + std::string(64 * 48 * 3, '\x80'));
    return folder_ / "in";
  }
};

// Exit status `code`, exactly one error line, naming `expected`.
void expect_one_line_error(const test::ProcessResult& result, int code, const std::string& expected) {
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, code) << result.err;
  std::vector<std::string> errors;
  for (const auto& line : result.err_lines()) {
    if (line.rfind("detflow: error: ", 0) == 0) errors.push_back(line);
  }
  ASSERT_EQ(errors.size(), 1u) << result.err;
  EXPECT_NE(errors[0].find(expected), std::string::npos) << errors[0];
}

TEST_F(CliExitCodes, AModelThatIsNotAModelIsThree) {
  write_file(folder_ / "not-a-model.onnx", "these bytes are no protobuf");
  expect_one_line_error(run_detflow({"run", "--model", (folder_ / "not-a-model.onnx").string(), "--source",
                                     image_folder().string(), "--no-display"}),
                        3, "not-a-model.onnx");
}

TEST_F(CliExitCodes, AnOutputThatFailsWhileWritingIsFour) {
  const auto model = test::write_yolov8_model(folder_ / "model.onnx");
  // The annotated image cannot be written: a folder already has its name.
  std::filesystem::create_directories(folder_ / "annotated" / "a.ppm");
  expect_one_line_error(run_detflow({"run", "--model", model.string(), "--source", image_folder().string(), "--output",
                                     (folder_ / "annotated").string() + "/", "--no-display"}),
                        4, "a.ppm");
  // Statistics written after the run to a full disk.
  expect_one_line_error(run_detflow({"run", "--model", model.string(), "--source", image_folder().string(),
                                     "--stats-json", "/dev/full", "--no-display"}),
                        4, "/dev/full");
}

TEST_F(CliExitCodes, ASourceThatCannotBeOpenedIsFive) {
  write_file(folder_ / "stand-in.onnx", "not parsed: the source opens first");
  // Port 9 (discard) on loopback: nothing serves RTSP or HTTP there.
  expect_one_line_error(run_detflow({"run", "--model", (folder_ / "stand-in.onnx").string(), "--source",
                                     "rtsp://127.0.0.1:9/none", "--no-display"}),
                        5, "rtsp://127.0.0.1:9/none");
  expect_one_line_error(run_detflow({"run", "--model", (folder_ / "stand-in.onnx").string(), "--source",
                                     "http://127.0.0.1:9/video", "--no-display"}),
                        5, "http://127.0.0.1:9/video");
}

TEST_F(CliExitCodes, AFinishedRunIsZeroAndConfigurationErrorsAreTwo) {
  const auto model = test::write_yolov8_model(folder_ / "model.onnx");
  const auto finished = run_detflow({"run", "--model", model.string(), "--source", image_folder().string(), "--json",
                                     (folder_ / "out.jsonl").string(), "--no-display", "-q"});
  EXPECT_EQ(finished.exit_code, 0) << finished.err;
  EXPECT_EQ(test::count_lines(folder_ / "out.jsonl"), 1u);
  write_file(folder_ / "backoff.yaml", "source:\n  reconnect_initial: 5\n  reconnect_max: 1\n");
  expect_one_line_error(run_detflow({"run", "-c", (folder_ / "backoff.yaml").string(), "--model", model.string(),
                                     "--source", image_folder().string(), "--no-display"}),
                        2, "source.reconnect_max");
}

}  // namespace
}  // namespace detflow
