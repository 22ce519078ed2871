// http:// and udp:// sources against servers on 127.0.0.1 in the test process: MJPEG
// streams (multipart/x-mixed-replace) read live, video files behind a URL read as files,
// MPEG-TS over UDP; and what supervision does when the server cuts or silences a stream.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/source.h"
#include "shared_data.h"
#include "source_internal.h"
#include "source_test_servers.h"

namespace detflow {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Seconds = std::chrono::duration<double>;

std::string read_bytes(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// An MJPG AVI of `frames` 320x240 frames at 10 fps (OpenCV's own writer: always available).
std::string make_avi(const fs::path& folder, int frames) {
  const fs::path path = folder / "clip.avi";
  cv::VideoWriter writer(path.string(), cv::CAP_OPENCV_MJPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0,
                         cv::Size(320, 240));
  for (int frame = 0; frame < frames; ++frame) {
    cv::Mat image(240, 320, CV_8UC3, cv::Scalar(frame * 5, 100, 200));
    cv::circle(image, {frame * 10, 120}, 20, cv::Scalar(255, 255, 255), cv::FILLED);
    writer.write(image);
  }
  writer.release();
  return read_bytes(path);
}

// Settings for fast tests: reconnect after 0.1 s (at most 0.3 s), a stall after 1 s.
SourceSettings fast_reconnect(const std::string& uri) {
  SourceSettings settings;
  settings.uri = uri;
  settings.reconnect_initial = 0.1;
  settings.reconnect_max = 0.3;
  settings.stall_timeout = 1.0;
  return settings;
}

TEST(HttpSource, UrlExtensionRule) {
  // Extensions decide before any request; the query string does not count.
  test::LoopbackHttpServer server;
  const fs::path folder = test::temporary_directory("detflow_http_rule");
  server.serve_file("/media/CLIP.AVI", make_avi(folder, 5), "application/octet-stream");
  auto source = open_source({.uri = server.url("/media/CLIP.AVI") + "?token=abc"});
  EXPECT_FALSE(source->info().live);
  EXPECT_EQ(source->info().kind, "http");
}

TEST(HttpSource, MjpegStreamIsReadLive) {
  test::LoopbackHttpServer server;
  server.serve_mjpeg("/video", test::make_jpeg_frames(10, 320, 240), 40ms);
  auto source = open_source({.uri = server.url("/video")});
  EXPECT_EQ(source->info().kind, "http");
  EXPECT_TRUE(source->info().live);
  EXPECT_EQ(source->info().width, 320);
  EXPECT_EQ(source->info().height, 240);
  Frame frame;
  for (int index = 0; index < 6; ++index) {
    ASSERT_TRUE(source->read(frame)) << index;
    EXPECT_EQ(frame.image.size(), cv::Size(320, 240));
  }
  source->stop();
  EXPECT_FALSE(source->read(frame));
}

TEST(HttpSource, VideoFileUrlIsReadAsAFileWithEveryFrame) {
  test::LoopbackHttpServer server;
  const fs::path folder = test::temporary_directory("detflow_http_file");
  const std::string clip = make_avi(folder, 30);
  server.serve_file("/media/clip.avi", clip, "video/x-msvideo");
  server.serve_file("/media/latest", clip, "video/x-msvideo");  // no extension: the content decides
  for (const std::string path : {"/media/clip.avi", "/media/latest"}) {
    auto source = open_source({.uri = server.url(path)});
    EXPECT_EQ(source->info().kind, "http") << path;
    EXPECT_FALSE(source->info().live) << path;
    EXPECT_EQ(source->info().frame_count, 30) << path;
    Frame frame;
    int frames = 0;
    while (source->read(frame)) ++frames;
    EXPECT_EQ(frames, 30) << path << ": a file loses no frame";
  }
}

TEST(HttpSource, VideoFileUrlThroughGStreamerReadsEveryFrame) {
  test::LoopbackHttpServer server;
  const fs::path folder = test::temporary_directory("detflow_http_gst");
  server.serve_file("/clip.avi", make_avi(folder, 20), "video/x-msvideo");
  SourceSettings settings{.uri = server.url("/clip.avi")};
  settings.video_reader = "gstreamer";
  auto source = open_source(settings);
  EXPECT_FALSE(source->info().live);
  Frame frame;
  int frames = 0;
  while (source->read(frame)) ++frames;
  EXPECT_EQ(frames, 20);
}

TEST(HttpSource, MissingPathIsASourceError) {
  test::LoopbackHttpServer server;
  try {
    open_source({.uri = server.url("/nothing-here")});
    FAIL() << "a 404 should not open";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::source);
    EXPECT_NE(std::string(error.what()).find("/nothing-here"), std::string::npos) << error.what();
  }
}

TEST(HttpSource, MjpegStreamCutByTheServerIsReopened) {
  test::LoopbackHttpServer server;
  server.serve_mjpeg("/video", test::make_jpeg_frames(10, 320, 240), 40ms);
  auto source = open_source(fast_reconnect(server.url("/video")));
  Frame frame;
  double last_pts = -1;
  for (int index = 0; index < 3; ++index) {
    ASSERT_TRUE(source->read(frame));
    last_pts = frame.pts_ms;
  }
  server.cut_streams();
  // Frames read after the cut come from a new connection (a stream the server cut has no
  // more than what was in flight); 30 frames is more than any buffer holds.
  for (int index = 0; index < 30; ++index) {
    ASSERT_TRUE(source->read(frame)) << index;
    if (frame.pts_ms < 0) continue;  // no timestamp on this one
    EXPECT_GE(frame.pts_ms, last_pts);
    last_pts = frame.pts_ms;
  }
  const SourceCounters counters = source->counters();
  EXPECT_GE(counters.reconnects, 1);
  EXPECT_EQ(counters.state, SourceState::up);
}

TEST(HttpSource, SilentMjpegStreamTriggersTheWatchdog) {
  test::LoopbackHttpServer server;
  server.serve_mjpeg("/video", test::make_jpeg_frames(10, 320, 240), 40ms);
  auto source = open_source(fast_reconnect(server.url("/video")));
  Frame frame;
  ASSERT_TRUE(source->read(frame));
  server.set_sending(false);
  auto reader = std::async(std::launch::async, [&] {
    // Drain what was in flight, then wait in read() until frames come again.
    const auto silent_since = std::chrono::steady_clock::now();
    while (source->read(frame)) {
      if (std::chrono::steady_clock::now() - silent_since > 1.5s) return true;
    }
    return false;
  });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (source->counters().stalls < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_GE(source->counters().stalls, 1) << "no stall seen within 5 s (stall_timeout 1 s)";
  server.set_sending(true);
  ASSERT_EQ(reader.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(reader.get()) << "frames came back";
  EXPECT_GE(source->counters().reconnects, 1);
}

TEST(UdpSource, MpegTsIsReadLive) {
  const int port = test::free_loopback_port(true);
  test::UdpMpegTsSender sender(port);
  sender.start();
  auto source = open_source({.uri = "udp://127.0.0.1:" + std::to_string(port)});
  EXPECT_EQ(source->info().kind, "udp");
  EXPECT_TRUE(source->info().live);
  EXPECT_EQ(source->info().width, 320);
  Frame frame;
  for (int index = 0; index < 5; ++index) {
    ASSERT_TRUE(source->read(frame)) << index;
    EXPECT_EQ(frame.image.size(), cv::Size(320, 240));
  }
}

TEST(UdpSource, SenderThatStopsTriggersTheWatchdogAndFramesResume) {
  const int port = test::free_loopback_port(true);
  test::UdpMpegTsSender sender(port);
  sender.start();
  auto source = open_source(fast_reconnect("udp://127.0.0.1:" + std::to_string(port)));
  Frame frame;
  ASSERT_TRUE(source->read(frame));
  sender.stop();
  std::atomic<bool> resumed_sending{false};
  std::chrono::steady_clock::time_point resumed_at;
  auto reader = std::async(std::launch::async, [&] {
    while (source->read(frame)) {
      if (resumed_sending.load()) return Seconds(std::chrono::steady_clock::now() - resumed_at).count();
    }
    return -1.0;
  });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (source->counters().stalls < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_GE(source->counters().stalls, 1) << "no stall seen within 5 s (stall_timeout 1 s)";
  EXPECT_NE(source->counters().state, SourceState::up);
  resumed_at = std::chrono::steady_clock::now();
  resumed_sending.store(true);
  sender.start();
  ASSERT_EQ(reader.wait_for(15s), std::future_status::ready);
  const double resume_seconds = reader.get();
  EXPECT_GE(resume_seconds, 0) << "the source ended instead of resuming";
  EXPECT_LT(resume_seconds, 3.0);
  std::printf("udp: first frame %.2f s after the sender came back\n", resume_seconds);
  EXPECT_EQ(source->counters().state, SourceState::up);
}

}  // namespace
}  // namespace detflow
