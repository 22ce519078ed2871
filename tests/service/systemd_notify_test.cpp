// sd_notify spoken to a socket the test binds: READY=1 after the first frame, WATCHDOG=1
// only while frames flow, STATUS= lines, STOPPING=1 at the end.
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "detflow/service/preview.h"
#include "detflow/service/run_probe.h"
#include "detflow/service/systemd_notify.h"
#include "shared_data.h"

namespace detflow::service {
namespace {

// A datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    descriptor_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    socklen_t length = sizeof(sa_family_t) + static_cast<socklen_t>(path_.size());
    std::copy(path_.begin(), path_.end(), address.sun_path);
    if (path_.front() == '@') {
      address.sun_path[0] = '\0';
    } else {
      length += 1;
    }
    bound_ = ::bind(descriptor_, reinterpret_cast<sockaddr*>(&address), length) == 0;
    timeval timeout{0, 100 * 1000};
    ::setsockopt(descriptor_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~NotifySocket() { ::close(descriptor_); }
  bool bound() const { return bound_; }

  // Every message received within `duration`.
  std::vector<std::string> receive_for(std::chrono::milliseconds duration) {
    std::vector<std::string> messages;
    const auto end = std::chrono::steady_clock::now() + duration;
    char buffer[4096];
    while (std::chrono::steady_clock::now() < end) {
      const ssize_t size = ::recv(descriptor_, buffer, sizeof buffer, 0);
      if (size > 0) messages.emplace_back(buffer, static_cast<std::size_t>(size));
    }
    return messages;
  }

 private:
  std::string path_;
  int descriptor_ = -1;
  bool bound_ = false;
};

int count_containing(const std::vector<std::string>& messages, const std::string& text) {
  int count = 0;
  for (const auto& message : messages) count += message.find(text) != std::string::npos;
  return count;
}

FrameResult tiny_frame(std::int64_t index) {
  auto frame = std::make_shared<Frame>();
  frame->index = index;
  frame->image = cv::Mat(16, 16, CV_8UC3, cv::Scalar::all(0));
  FrameResult result;
  result.frame = frame;
  return result;
}

TEST(SystemdNotifier, InactiveWithoutNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(SystemdNotifier::from_environment().active());
  EXPECT_FALSE(SystemdNotifier().notify("READY=1"));
}

TEST(SystemdNotifier, ReadsTheEnvironmentAndReachesAnAbstractSocket) {
  const std::string name = "@detflow-notify-test-" + std::to_string(::getpid());
  NotifySocket socket(name);
  ASSERT_TRUE(socket.bound());
  ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "3000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  const SystemdNotifier notifier = SystemdNotifier::from_environment();
  ::setenv("WATCHDOG_PID", "1", 1);  // another process's watchdog: not ours to ping
  EXPECT_EQ(SystemdNotifier::from_environment().watchdog_interval_s(), 0);
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  ASSERT_TRUE(notifier.active());
  EXPECT_DOUBLE_EQ(notifier.watchdog_interval_s(), 3.0);
  EXPECT_TRUE(notifier.notify("STATUS=hello"));
  const auto messages = socket.receive_for(std::chrono::milliseconds(200));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0], "STATUS=hello");
}

TEST(ServiceNotifier, ReadyAfterTheFirstFrameWatchdogOnlyWhileFramesFlow) {
  const auto path = (test::temporary_directory("notify") / "notify.sock").string();
  NotifySocket socket(path);
  ASSERT_TRUE(socket.bound());
  StatisticsRecorder recorder;
  auto latest = std::make_shared<LatestFrame>();
  RunProbe probe;
  probe.statistics = [&recorder] { return recorder.snapshot(); };
  probe.source_counters = [] { return SourceCounters{}; };  // up: a stall is the graph's
  probe.latest = latest;
  probe.stall_timeout_s = 0.5;

  ServiceNotifier notifier(probe, SystemdNotifier(path, 0.3));  // ping every 0.1 s
  // Before the first frame: alive (loading), not ready.
  auto messages = socket.receive_for(std::chrono::milliseconds(400));
  EXPECT_EQ(count_containing(messages, "READY=1"), 0);
  EXPECT_GE(count_containing(messages, "STATUS="), 1);

  // Frames flow: READY once, watchdog pings.
  std::atomic<bool> flowing{true};
  std::thread graph([&] {
    for (int index = 0; flowing; ++index) {
      latest->publish(tiny_frame(index));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  messages = socket.receive_for(std::chrono::milliseconds(800));
  EXPECT_EQ(count_containing(messages, "READY=1"), 1);
  EXPECT_GE(count_containing(messages, "WATCHDOG=1"), 3);

  // Frames stop with the source up (a hung graph): after the stall timeout the pings stop,
  // so systemd's watchdog restarts the service.
  flowing = false;
  graph.join();
  socket.receive_for(std::chrono::milliseconds(700));
  messages = socket.receive_for(std::chrono::milliseconds(600));
  EXPECT_EQ(count_containing(messages, "WATCHDOG=1"), 0);
  EXPECT_EQ(count_containing(messages, "READY=1"), 0);

  notifier.stop("finished");
  messages = socket.receive_for(std::chrono::milliseconds(200));
  ASSERT_EQ(count_containing(messages, "STOPPING=1"), 1);
  EXPECT_EQ(count_containing(messages, "STATUS=finished"), 1);
}

TEST(ServiceNotifier, KeepsPingingWhileTheSourceReconnects) {
  const auto path = (test::temporary_directory("notify") / "notify.sock").string();
  NotifySocket socket(path);
  ASSERT_TRUE(socket.bound());
  StatisticsRecorder recorder;
  auto latest = std::make_shared<LatestFrame>();
  latest->publish(tiny_frame(0));
  RunProbe probe;
  probe.statistics = [&recorder] { return recorder.snapshot(); };
  probe.source_counters = [] {
    SourceCounters counters;
    counters.state = SourceState::connecting;
    return counters;
  };
  probe.latest = latest;
  probe.stall_timeout_s = 0.1;
  ServiceNotifier notifier(probe, SystemdNotifier(path, 0.3));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto messages = socket.receive_for(std::chrono::milliseconds(600));
  EXPECT_GE(count_containing(messages, "WATCHDOG=1"), 3);
}

}  // namespace
}  // namespace detflow::service
