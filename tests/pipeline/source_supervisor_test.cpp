// Supervision of live sources with scripted inner sources (no network): reopening after
// the end of a stream, exponential backoff with a bound, the stall watchdog, stop() during
// a wait or a reopening, counters and timestamps across reopenings.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "detflow/error.h"
#include "detflow/pipeline/source.h"
#include "source_internal.h"

namespace detflow {
namespace {

using namespace std::chrono_literals;
using Seconds = std::chrono::duration<double>;

// What a scripted source does after its frames: end the stream, or go silent until stopped.
enum class Then { end, go_silent };

// Delivers `frames` 8x8 frames with pts 0, 40, 80, ... ms, then ends or goes silent.
class ScriptedSource final : public Source {
 public:
  ScriptedSource(int frames, Then then, double fps = 25) : frames_(frames), then_(then) {
    info_.kind = "rtsp";
    info_.live = true;
    info_.fps = fps;
    info_.width = 8;
    info_.height = 8;
  }
  const SourceInfo& info() const override { return info_; }
  bool read(Frame& frame) override {
    if (stopped_.load()) return false;
    if (delivered_ < frames_) {
      frame.image = cv::Mat(8, 8, CV_8UC3, cv::Scalar(delivered_));
      frame.pts_ms = 40.0 * delivered_++;
      return true;
    }
    if (then_ == Then::go_silent) {
      while (!stopped_.load()) std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  void stop() override { stopped_.store(true); }
  SourceCounters counters() const override {
    SourceCounters counters;
    counters.corrupt_frames = 1;  // each source saw one bad frame: the supervisor adds them up
    return counters;
  }

 private:
  SourceInfo info_;
  int frames_;
  Then then_;
  int delivered_ = 0;
  std::atomic<bool> stopped_{false};
};

// Records each reopening and when it happened; fails the first `failures` of them.
struct ScriptedOpener {
  int failures = 0;
  int frames = 3;
  Then then = Then::end;
  std::mutex mutex;
  std::vector<std::chrono::steady_clock::time_point> attempts;

  detail::SourceOpener opener() {
    return [this](const std::atomic<bool>&, std::chrono::milliseconds) -> std::unique_ptr<Source> {
      std::lock_guard lock(mutex);
      attempts.push_back(std::chrono::steady_clock::now());
      if (static_cast<int>(attempts.size()) <= failures) {
        throw Error(ErrorKind::source, "connection refused (attempt " + std::to_string(attempts.size()) + ")");
      }
      return std::make_unique<ScriptedSource>(frames, then);
    };
  }
  std::size_t attempt_count() {
    std::lock_guard lock(mutex);
    return attempts.size();
  }
};

detail::SupervisionSettings fast_settings() {
  detail::SupervisionSettings settings;
  settings.label = "rtsp://camera/test";
  settings.reconnect_initial = Seconds(0.02);
  settings.reconnect_max = Seconds(0.08);
  settings.stall_timeout = Seconds(0.3);
  return settings;
}

TEST(SupervisedSource, ReopensAfterTheEndAndTimestampsKeepIncreasing) {
  ScriptedOpener reopen;
  auto source =
      detail::supervise_source(std::make_unique<ScriptedSource>(3, Then::end), reopen.opener(), fast_settings());
  EXPECT_EQ(source->counters().state, SourceState::up);
  Frame frame;
  double previous_pts = -1;
  for (int index = 0; index < 9; ++index) {
    ASSERT_TRUE(source->read(frame)) << index;
    EXPECT_GT(frame.pts_ms, previous_pts) << "frame " << index << " goes back in time";
    previous_pts = frame.pts_ms;
  }
  const SourceCounters counters = source->counters();
  EXPECT_EQ(counters.reconnects, 2);
  EXPECT_EQ(counters.stalls, 0);
  EXPECT_EQ(counters.state, SourceState::up);
  EXPECT_EQ(counters.last_error, "the stream ended");
  EXPECT_EQ(counters.corrupt_frames, 3) << "counts of closed sources are kept";
  EXPECT_GT(counters.seconds_disconnected, 0.02);
  EXPECT_EQ(source->info().kind, "rtsp");
}

TEST(SupervisedSource, WaitsDoubleUpToTheMaximumAndGiveUpAfterMaxReconnects) {
  ScriptedOpener reopen;
  reopen.failures = 1000;
  auto settings = fast_settings();
  settings.reconnect_initial = Seconds(0.05);
  settings.reconnect_max = Seconds(0.2);
  settings.max_reconnects = 5;
  auto source = detail::supervise_source(std::make_unique<ScriptedSource>(1, Then::end), reopen.opener(), settings);
  Frame frame;
  ASSERT_TRUE(source->read(frame));
  const auto lost = std::chrono::steady_clock::now();
  try {
    source->read(frame);
    FAIL() << "read() should give up";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::source_lost);
    EXPECT_NE(std::string(error.what()).find("given up after 5 failed reopenings"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("connection refused (attempt 5)"), std::string::npos) << error.what();
  }
  ASSERT_EQ(reopen.attempt_count(), 5u);
  // Waits 0.05, 0.1, 0.2, 0.2, 0.2 s, each within +-20 % jitter (and a little scheduling).
  const std::vector<double> expected{0.05, 0.1, 0.2, 0.2, 0.2};
  auto previous = lost;
  for (std::size_t attempt = 0; attempt < expected.size(); ++attempt) {
    const double waited = Seconds(reopen.attempts[attempt] - previous).count();
    EXPECT_GE(waited, expected[attempt] * 0.8 - 0.005) << "attempt " << attempt;
    EXPECT_LE(waited, expected[attempt] * 1.2 + 0.05) << "attempt " << attempt;
    previous = reopen.attempts[attempt];
  }
  const SourceCounters counters = source->counters();
  EXPECT_EQ(counters.state, SourceState::down);
  EXPECT_EQ(counters.reconnects, 0);
  EXPECT_NE(counters.last_error.find("connection refused"), std::string::npos);
}

TEST(SupervisedSource, FailedReopeningsAreRetriedUntilOneDelivers) {
  ScriptedOpener reopen;
  reopen.failures = 3;
  auto settings = fast_settings();
  settings.max_reconnects = 4;  // three failures in a row stay within the bound
  auto source = detail::supervise_source(std::make_unique<ScriptedSource>(1, Then::end), reopen.opener(), settings);
  Frame frame;
  ASSERT_TRUE(source->read(frame));
  ASSERT_TRUE(source->read(frame));
  EXPECT_EQ(reopen.attempt_count(), 4u);
  EXPECT_EQ(source->counters().reconnects, 1);
}

TEST(SupervisedSource, WatchdogRestartsASourceThatGoesSilent) {
  ScriptedOpener reopen;
  auto source =
      detail::supervise_source(std::make_unique<ScriptedSource>(2, Then::go_silent), reopen.opener(), fast_settings());
  Frame frame;
  ASSERT_TRUE(source->read(frame));
  ASSERT_TRUE(source->read(frame));
  const auto silent_since = std::chrono::steady_clock::now();
  ASSERT_TRUE(source->read(frame));
  const double gap = Seconds(std::chrono::steady_clock::now() - silent_since).count();
  // The stall timeout (0.3 s) plus the watchdog's period (0.075 s) and the first wait
  // (0.02 s +-20 %), with room for a busy machine.
  EXPECT_GE(gap, 0.3);
  EXPECT_LT(gap, 1.0);
  const SourceCounters counters = source->counters();
  EXPECT_EQ(counters.stalls, 1);
  EXPECT_EQ(counters.reconnects, 1);
  EXPECT_NE(counters.last_error.find("stalled"), std::string::npos) << counters.last_error;
}

TEST(SupervisedSource, DefaultStallTimeoutIsFiveSecondsOrTenFrameIntervals) {
  detail::SupervisionSettings settings;
  SourceInfo info;
  info.fps = 25;
  EXPECT_DOUBLE_EQ(detail::stall_timeout_for(settings, info).count(), 5.0);
  info.fps = 1;
  EXPECT_DOUBLE_EQ(detail::stall_timeout_for(settings, info).count(), 10.0);
  info.fps = 0;  // unknown rate
  EXPECT_DOUBLE_EQ(detail::stall_timeout_for(settings, info).count(), 5.0);
  settings.stall_timeout = Seconds(1.5);
  EXPECT_DOUBLE_EQ(detail::stall_timeout_for(settings, info).count(), 1.5);
}

TEST(SupervisedSource, StopEndsABackoffWaitAtOnce) {
  ScriptedOpener reopen;
  reopen.failures = 1000;
  auto settings = fast_settings();
  settings.reconnect_initial = Seconds(30);
  settings.reconnect_max = Seconds(30);
  auto source = detail::supervise_source(std::make_unique<ScriptedSource>(1, Then::end), reopen.opener(), settings);
  Frame frame;
  ASSERT_TRUE(source->read(frame));
  auto reading = std::async(std::launch::async, [&] { return source->read(frame); });
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(source->counters().state, SourceState::down);
  const auto stopped_at = std::chrono::steady_clock::now();
  source->stop();
  ASSERT_EQ(reading.wait_for(2s), std::future_status::ready) << "stop() did not end the wait";
  EXPECT_FALSE(reading.get());
  EXPECT_LT(Seconds(std::chrono::steady_clock::now() - stopped_at).count(), 0.5);
  EXPECT_EQ(reopen.attempt_count(), 0u);
}

TEST(SupervisedSource, StopCancelsAReopeningInProgress) {
  std::atomic<bool> attempt_started{false};
  detail::SourceOpener hanging = [&](const std::atomic<bool>& cancel,
                                     std::chrono::milliseconds) -> std::unique_ptr<Source> {
    attempt_started.store(true);
    while (!cancel.load()) std::this_thread::sleep_for(5ms);
    throw Error(ErrorKind::source, "start was cancelled");
  };
  auto source = detail::supervise_source(std::make_unique<ScriptedSource>(1, Then::end), hanging, fast_settings());
  Frame frame;
  ASSERT_TRUE(source->read(frame));
  auto reading = std::async(std::launch::async, [&] { return source->read(frame); });
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!attempt_started.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(attempt_started.load());
  EXPECT_EQ(source->counters().state, SourceState::connecting);
  source->stop();
  ASSERT_EQ(reading.wait_for(2s), std::future_status::ready);
  EXPECT_FALSE(reading.get());
}

TEST(SupervisedSource, StopDuringAReadEndsIt) {
  ScriptedOpener reopen;
  auto settings = fast_settings();
  settings.stall_timeout = Seconds(60);
  auto source =
      detail::supervise_source(std::make_unique<ScriptedSource>(0, Then::go_silent), reopen.opener(), settings);
  Frame frame;
  auto reading = std::async(std::launch::async, [&] { return source->read(frame); });
  std::this_thread::sleep_for(50ms);
  source->stop();
  ASSERT_EQ(reading.wait_for(2s), std::future_status::ready);
  EXPECT_FALSE(reading.get());
  EXPECT_EQ(reopen.attempt_count(), 0u) << "a stop is not a loss";
  EXPECT_EQ(source->counters().reconnects, 0);
}

TEST(SupervisedSource, InvalidSettingsAreRefused) {
  ScriptedOpener reopen;
  auto settings = fast_settings();
  settings.reconnect_initial = Seconds(0);
  EXPECT_THROW(detail::supervise_source(std::make_unique<ScriptedSource>(1, Then::end), reopen.opener(), settings),
               Error);
}

}  // namespace
}  // namespace detflow
