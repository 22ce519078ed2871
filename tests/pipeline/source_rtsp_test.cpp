// RTSP on loopback: a GStreamer RTSP server in the test serves a generated MJPEG clip or a
// live pattern on 127.0.0.1 (a free port chosen by the system); open_source reads it as a
// live source, reconnects when the server restarts and restarts it when it goes silent.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>

#include <gst/gst.h>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/source.h"
#include "shared_data.h"

#include "source_test_servers.h"

namespace detflow {
namespace {

#if DETFLOW_HAVE_RTSP_SERVER

namespace fs = std::filesystem;

fs::path write_mjpeg_clip(const fs::path& folder, int frames) {
  const fs::path path = folder / "served.avi";
  cv::VideoWriter writer(path.string(), cv::CAP_OPENCV_MJPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0,
                         cv::Size(320, 240));
  for (int frame = 0; frame < frames; ++frame) {
    cv::Mat image(240, 320, CV_8UC3, cv::Scalar(frame * 5, 100, 200));
    cv::circle(image, {frame * 10, 120}, 20, cv::Scalar(255, 255, 255), cv::FILLED);
    writer.write(image);
  }
  return path;
}

TEST(RtspSource, ReadsAServedFileAsALiveSource) {
  const fs::path folder = test::temporary_directory("detflow_rtsp");
  const fs::path clip = write_mjpeg_clip(folder, 50);
  test::LoopbackRtspServer server("( filesrc location=" + clip.string() + " ! avidemux ! rtpjpegpay name=pay0 pt=26 )");
  ASSERT_GT(server.port(), 0);

  const std::string url = "rtsp://127.0.0.1:" + std::to_string(server.port()) + "/test";
  auto source = open_source({.uri = url});
  EXPECT_EQ(source->info().kind, "rtsp");
  EXPECT_TRUE(source->info().live);
  EXPECT_EQ(source->info().width, 320);
  EXPECT_EQ(source->info().height, 240);
  int frames = 0;
  Frame frame;
  while (frames < 8 && source->read(frame)) {
    EXPECT_EQ(frame.image.size(), cv::Size(320, 240));
    ++frames;
  }
  EXPECT_EQ(frames, 8);
  source->stop();
  EXPECT_FALSE(source->read(frame));
}

TEST(RtspSource, NothingListeningIsAnError) {
  // Port 9 (discard) on loopback: nothing serves RTSP there.
  try {
    open_source({.uri = "rtsp://127.0.0.1:9/none"});
    FAIL() << "nothing listens on port 9";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::source) << "exit code 5, not a configuration error";
  }
}

using Seconds = std::chrono::duration<double>;
using SteadyClock = std::chrono::steady_clock;

// Reads on its own thread, as the graph's capture thread does, and notes when frames come.
class BackgroundReader {
 public:
  explicit BackgroundReader(Source& source) : source_(source) {
    thread_ = std::thread([this] {
      Frame frame;
      while (source_.read(frame)) {
        frames_.fetch_add(1);
        last_frame_ns_.store(SteadyClock::now().time_since_epoch().count());
      }
    });
  }
  ~BackgroundReader() {
    source_.stop();
    thread_.join();
  }
  int frames() const { return frames_.load(); }
  SteadyClock::time_point last_frame() const {
    return SteadyClock::time_point(SteadyClock::duration(last_frame_ns_.load()));
  }
  // Waits until a frame arrives after `since`; its delay from `since` in seconds, or -1.
  double first_frame_after(SteadyClock::time_point since, std::chrono::seconds timeout) const {
    const auto deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      if (last_frame() > since) return Seconds(last_frame() - since).count();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  Source& source_;
  std::atomic<int> frames_{0};
  std::atomic<SteadyClock::rep> last_frame_ns_{0};
  std::thread thread_;
};

SourceSettings fast_reconnect(const std::string& uri) {
  SourceSettings settings;
  settings.uri = uri;
  settings.reconnect_initial = 0.25;
  settings.reconnect_max = 0.5;
  settings.stall_timeout = 1.0;
  return settings;
}

TEST(RtspSource, ReconnectsWhenTheServerRestarts) {
  auto server = std::make_unique<test::LoopbackRtspServer>(test::live_rtsp_launch());
  const int port = server->port();
  auto source = open_source(fast_reconnect(server->url()));
  BackgroundReader reader(*source);
  ASSERT_GT(reader.first_frame_after(SteadyClock::now(), std::chrono::seconds(5)), 0);

  server.reset();  // the camera reboots: connections drop, the port closes
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_NE(source->counters().state, SourceState::up) << "3 s without a server and still up";
  server = std::make_unique<test::LoopbackRtspServer>(test::live_rtsp_launch(), port);
  const auto back = SteadyClock::now();
  const double resumed_after = reader.first_frame_after(back, std::chrono::seconds(10));
  std::printf("rtsp: first frame %.2f s after the server came back\n", resumed_after);
  EXPECT_GE(resumed_after, 0) << "no frame within 10 s of the server's return";
  EXPECT_LT(resumed_after, 3.0);
  const SourceCounters counters = source->counters();
  EXPECT_GE(counters.reconnects, 1);
  EXPECT_EQ(counters.state, SourceState::up);
  EXPECT_GT(counters.seconds_disconnected, 2.5);
  EXPECT_FALSE(counters.last_error.empty());
}

TEST(RtspSource, ServerThatStopsSendingTriggersTheWatchdog) {
  test::LoopbackRtspServer server(test::live_rtsp_launch());
  auto source = open_source(fast_reconnect(server.url()));
  BackgroundReader reader(*source);
  ASSERT_GT(reader.first_frame_after(SteadyClock::now(), std::chrono::seconds(5)), 0);

  server.set_sending(false);  // connected, but nothing comes
  const auto silent_since = SteadyClock::now();
  while (source->counters().stalls < 1 && SteadyClock::now() - silent_since < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const double detected_after = Seconds(SteadyClock::now() - silent_since).count();
  std::printf("rtsp: stall detected %.2f s after the server went silent (stall_timeout 1 s)\n", detected_after);
  ASSERT_GE(source->counters().stalls, 1) << "no stall within 5 s";
  EXPECT_LT(detected_after, 2.5);

  server.set_sending(true);
  const auto back = SteadyClock::now();
  const double resumed_after = reader.first_frame_after(back, std::chrono::seconds(10));
  std::printf("rtsp: first frame %.2f s after the server sent again\n", resumed_after);
  EXPECT_GE(resumed_after, 0);
  EXPECT_LT(resumed_after, 3.0);
}

TEST(RtspSource, BoundedReconnectsGiveUpWithSourceLost) {
  auto server = std::make_unique<test::LoopbackRtspServer>(test::live_rtsp_launch());
  SourceSettings settings = fast_reconnect(server->url());
  settings.max_reconnects = 2;
  auto source = open_source(settings);
  Frame frame;
  ASSERT_TRUE(source->read(frame));
  server.reset();
  try {
    while (source->read(frame)) {
    }
    FAIL() << "read() ended without giving up";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::source_lost);
    EXPECT_NE(std::string(error.what()).find("given up after 2"), std::string::npos) << error.what();
  }
}

#else

TEST(RtspSource, ReadsAServedFileAsALiveSource) { GTEST_SKIP() << "built without gstreamer-rtsp-server-1.0"; }

#endif

}  // namespace
}  // namespace detflow
