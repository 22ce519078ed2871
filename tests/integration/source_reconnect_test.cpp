// `detflow run` against an RTSP camera served from this test process on 127.0.0.1: the
// camera reboots (gone for 3 s) and the run goes on, its JSON Lines growing again within
// 3 s of the camera's return; a camera gone for good, with source.max_reconnects set,
// ends the run with exit code 6. The model is a synthetic YOLOv8 (no ../shared needed).
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli_process.h"
#include "model_builder.h"
#include "shared_data.h"
#include "source_test_servers.h"

namespace detflow {
namespace {

namespace fs = std::filesystem;
using Seconds = std::chrono::duration<double>;
using SteadyClock = std::chrono::steady_clock;

#if DETFLOW_HAVE_RTSP_SERVER

// Reconnecting quickly keeps the test short: first wait 0.25 s, at most 0.5 s; a stall is
// 1 s without a frame.
fs::path write_config(const fs::path& folder, const std::string& url, int max_reconnects) {
  const fs::path path = folder / "camera.yaml";
  std::ofstream(path) << "source:\n  uri: " << url
                      << "\n  reconnect_initial: 0.25\n  reconnect_max: 0.5\n  stall_timeout: 1\n"
                      << "  max_reconnects: " << max_reconnects << "\n";
  return path;
}

// Seconds until `path` has more than `lines` lines, or -1 after `timeout`.
double seconds_until_more_lines(const fs::path& path, std::size_t lines, std::chrono::seconds timeout) {
  const auto start = SteadyClock::now();
  while (SteadyClock::now() - start < timeout) {
    if (test::count_lines(path) > lines) return Seconds(SteadyClock::now() - start).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

TEST(SourceReconnect, RunKeepsGoingWhenTheCameraRestarts) {
  const fs::path folder = test::temporary_directory("detflow_reconnect");
  const fs::path model = test::write_yolov8_model(folder / "model.onnx");
  const fs::path jsonl = folder / "detections.jsonl";
  auto camera = std::make_unique<test::LoopbackRtspServer>(test::live_rtsp_launch());
  const int port = camera->port();
  const fs::path config = write_config(folder, camera->url(), 0);

  test::ChildProcess child(
      {"run", "-c", config.string(), "--model", model.string(), "--json", jsonl.string(), "--no-display"}, folder);
  ASSERT_GE(seconds_until_more_lines(jsonl, 9, std::chrono::seconds(60)), 0) << "the run never started";

  camera.reset();  // the camera reboots
  std::this_thread::sleep_for(std::chrono::seconds(3));
  camera = std::make_unique<test::LoopbackRtspServer>(test::live_rtsp_launch(), port);
  const std::size_t lines_at_return = test::count_lines(jsonl);
  const double resumed_after = seconds_until_more_lines(jsonl, lines_at_return, std::chrono::seconds(15));
  std::printf("detflow run: JSON Lines grow again %.2f s after the camera came back\n", resumed_after);
  EXPECT_GE(resumed_after, 0) << "no output within 15 s of the camera's return";
  EXPECT_LT(resumed_after, 3.0);
  EXPECT_GE(seconds_until_more_lines(jsonl, lines_at_return + 20, std::chrono::seconds(20)), 0)
      << "the output does not keep growing";

  child.send(SIGINT);
  const auto result = child.wait(std::chrono::seconds(60));
  ASSERT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("lost"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("up again"), std::string::npos) << "a reconnect is reported: " << result.err;

  // One whole record per line; frame numbers and timestamps keep increasing across the gap.
  std::ifstream lines(jsonl);
  long long previous_frame = -1;
  double previous_pts = -1;
  for (std::string line; std::getline(lines, line);) {
    const auto record = nlohmann::json::parse(line);
    EXPECT_GT(record["frame"].get<long long>(), previous_frame);
    previous_frame = record["frame"].get<long long>();
    if (record["pts_ms"].is_number()) {
      EXPECT_GE(record["pts_ms"].get<double>(), previous_pts) << line;
      previous_pts = record["pts_ms"].get<double>();
    }
  }
}

TEST(SourceReconnect, CameraGoneForGoodEndsTheRunWithExitCodeSix) {
  const fs::path folder = test::temporary_directory("detflow_gone");
  const fs::path model = test::write_yolov8_model(folder / "model.onnx");
  const fs::path jsonl = folder / "detections.jsonl";
  auto camera = std::make_unique<test::LoopbackRtspServer>(test::live_rtsp_launch());
  const fs::path config = write_config(folder, camera->url(), 2);

  test::ChildProcess child(
      {"run", "-c", config.string(), "--model", model.string(), "--json", jsonl.string(), "--no-display"}, folder);
  ASSERT_GE(seconds_until_more_lines(jsonl, 4, std::chrono::seconds(60)), 0) << "the run never started";
  camera.reset();
  const auto result = child.wait(std::chrono::seconds(60));
  ASSERT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, 6) << result.err;
  EXPECT_NE(result.err.find("given up after 2 failed reopenings"), std::string::npos) << result.err;
  std::ifstream lines(jsonl);
  for (std::string line; std::getline(lines, line);) EXPECT_TRUE(nlohmann::json::accept(line)) << line;
}

#else

TEST(SourceReconnect, RunKeepsGoingWhenTheCameraRestarts) { GTEST_SKIP() << "built without gstreamer-rtsp-server-1.0"; }

#endif

}  // namespace
}  // namespace detflow
