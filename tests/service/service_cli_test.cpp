// `detflow run` as a service: the HTTP endpoint of a real run (probes, metrics, snapshot,
// slow preview clients while the pipeline keeps its rate), sd_notify to a socket the test
// binds, and the status page rendered by a real headless browser.
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "cli_process.h"
#include "loopback.h"
#include "model_builder.h"
#include "shared_data.h"
#include "stream_reader.h"

namespace detflow::service {
namespace {

using namespace std::chrono_literals;

// A live test camera: SMPTE colour bars (never a blank preview) at 30 frames per second.
constexpr const char* kLiveSource =
    "gst:videotestsrc is-live=true pattern=smpte ! video/x-raw,width=320,height=240,framerate=30/1";

struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  for (std::size_t size; (size = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) result.output.append(buffer, size);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

class ServiceRun : public ::testing::Test {
 protected:
  void SetUp() override { model_ = test::write_yolov8_model(folder_ / "model.onnx"); }

  // Starts `detflow run` on the live test camera with the endpoint on a free port.
  void start(std::vector<std::string> extra = {}) {
    port_ = test::free_loopback_port();
    std::vector<std::string> arguments{"run",       "--model",      model_.string(), "--source",
                                       kLiveSource, "--no-display", "--http",        std::to_string(port_)};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    child_ = std::make_unique<test::ChildProcess>(arguments, folder_);
  }

  // Waits until /readyz says ready; false after `timeout`.
  bool wait_ready(std::chrono::seconds timeout) {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(1);
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      const auto response = client.Get("/readyz");
      if (response && response->status == 200) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  std::int64_t processed() {
    httplib::Client client("127.0.0.1", port_);
    const auto response = client.Get("/status.json");
    if (!response || response->status != 200) return -1;
    return nlohmann::json::parse(response->body)["frames"]["processed"].get<std::int64_t>();
  }

  // Frames per second reaching the outputs over `window`.
  double output_rate(std::chrono::milliseconds window) {
    const std::int64_t before = processed();
    const auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(window);
    const std::int64_t after = processed();
    return static_cast<double>(after - before) /
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  test::ProcessResult stop() {
    child_->send(SIGINT);
    return child_->wait(std::chrono::seconds(60));
  }

  std::filesystem::path folder_ = test::temporary_directory("service-run");
  std::filesystem::path model_;
  int port_ = 0;
  std::unique_ptr<test::ChildProcess> child_;
};

TEST_F(ServiceRun, HttpEndpointServesProbesMetricsSnapshotAndSlowStreamsWithoutSlowingTheRun) {
  start({"--json", "detections.jsonl"});
  ASSERT_TRUE(wait_ready(60s)) << test::read_text(folder_ / "detflow.stderr");
  httplib::Client client("127.0.0.1", port_);
  EXPECT_EQ(client.Get("/healthz")->status, 200);

  const auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("# TYPE detflow_frames_total counter"), std::string::npos);
  EXPECT_NE(metrics->body.find("# TYPE detflow_stage_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(metrics->body.find("detflow_source_up 1"), std::string::npos);
  EXPECT_NE(metrics->body.find("detflow_output_lines_written_total"), std::string::npos);

  const auto snapshot = client.Get("/snapshot.jpg");
  ASSERT_TRUE(snapshot);
  ASSERT_EQ(snapshot->status, 200);
  const cv::Mat image =
      cv::imdecode(std::vector<unsigned char>(snapshot->body.begin(), snapshot->body.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(image.empty());
  EXPECT_EQ(image.cols, 320);
  EXPECT_EQ(image.rows, 240);

  // Baseline: the output rate with no preview client; then with a stuck client (never reads)
  // and two slow ones (a frame every 300 ms). The run must keep its rate.
  const double alone = output_rate(2000ms);
  StreamReader stuck(port_);
  ASSERT_NE(stuck.head().find("200"), std::string::npos);
  std::atomic<bool> reading{true};
  std::atomic<int> slow_parts{0};
  std::vector<std::thread> slow;
  for (int client_number = 0; client_number < 2; ++client_number) {
    slow.emplace_back([&] {
      StreamReader reader(port_);
      reader.head();
      while (reading && reader.next_part() >= 0) {
        ++slow_parts;
        std::this_thread::sleep_for(300ms);
      }
    });
  }
  const double with_clients = output_rate(2000ms);
  reading = false;
  for (auto& thread : slow) thread.join();
  std::cout << "[ measured ] output rate alone " << alone << " frames/s, with 1 stuck + 2 slow preview clients "
            << with_clients << " frames/s (ratio " << with_clients / alone << ")\n";
  EXPECT_GT(alone, 10);
  EXPECT_GE(with_clients, 0.8 * alone);
  EXPECT_GE(slow_parts, 6);  // the slow clients got frames too

  const auto result = stop();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_GT(test::count_lines(folder_ / "detections.jsonl"), 60u);
}

// The notification socket systemd would pass in NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) {
    descriptor_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    bound_ = ::bind(descriptor_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    timeval timeout{0, 100 * 1000};
    ::setsockopt(descriptor_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~NotifySocket() { ::close(descriptor_); }
  bool bound() const { return bound_; }
  // Messages until one contains `text` or `timeout` passes.
  std::vector<std::string> receive_until(const std::string& text, std::chrono::seconds timeout) {
    std::vector<std::string> messages;
    const auto end = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    while (std::chrono::steady_clock::now() < end) {
      const ssize_t size = ::recv(descriptor_, buffer, sizeof buffer, 0);
      if (size <= 0) continue;
      messages.emplace_back(buffer, static_cast<std::size_t>(size));
      if (messages.back().find(text) != std::string::npos) break;
    }
    return messages;
  }

 private:
  int descriptor_ = -1;
  bool bound_ = false;
};

int count_containing(const std::vector<std::string>& messages, const std::string& text) {
  int count = 0;
  for (const auto& message : messages) count += message.find(text) != std::string::npos;
  return count;
}

TEST_F(ServiceRun, NotifiesSystemdReadyWatchdogStatusAndStopping) {
  NotifySocket socket(folder_ / "notify.sock");
  ASSERT_TRUE(socket.bound());
  ::setenv("NOTIFY_SOCKET", (folder_ / "notify.sock").c_str(), 1);
  ::setenv("WATCHDOG_USEC", "600000", 1);  // a ping every 0.2 s
  const auto model = model_.string();
  test::ChildProcess child({"run", "--model", model, "--source", kLiveSource, "--no-display", "--quiet"}, folder_);
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");

  auto messages = socket.receive_until("READY=1", 60s);
  ASSERT_EQ(count_containing(messages, "READY=1"), 1) << test::read_text(folder_ / "detflow.stderr");
  messages = socket.receive_until("never sent", 2s);
  EXPECT_GE(count_containing(messages, "WATCHDOG=1"), 5);
  EXPECT_EQ(count_containing(messages, "READY=1"), 0) << "READY=1 is sent once";
  child.send(SIGTERM);
  messages = socket.receive_until("STOPPING=1", 30s);
  EXPECT_EQ(count_containing(messages, "STOPPING=1"), 1);
  EXPECT_EQ(count_containing(messages, "STATUS=finished"), 1);
  const auto result = child.wait(60s);
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

TEST_F(ServiceRun, StatusPageRendersInHeadlessChromium) {
  const auto found = run_command("command -v chromium || command -v chromium-browser");
  if (found.status != 0)
    GTEST_SKIP() << "chromium is not installed (Debian package chromium): status page not rendered";
  std::string chromium = found.output.substr(0, found.output.find('\n'));
  start();
  ASSERT_TRUE(wait_ready(60s)) << test::read_text(folder_ / "detflow.stderr");
  const std::string flags =
      "--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update "
      "--disable-sync --no-first-run --user-data-dir='" +
      (folder_ / "chromium-profile").string() + "' --virtual-time-budget=4000 --window-size=1200,800 ";
  const std::string url = "http://127.0.0.1:" + std::to_string(port_) + "/";
  const auto dom = run_command(chromium + " " + flags + "--dump-dom " + url + " 2>/dev/null");
  ASSERT_EQ(dom.status, 0) << dom.output;
  EXPECT_NE(dom.output.find("source: up"), std::string::npos) << dom.output;
  EXPECT_NE(dom.output.find("readiness: ready"), std::string::npos) << dom.output;
  EXPECT_NE(dom.output.find("capture to output"), std::string::npos) << "latency table missing";

  const auto screenshot = folder_ / "page.png";
  const auto shot =
      run_command(chromium + " " + flags + "--screenshot='" + screenshot.string() + "' " + url + " 2>/dev/null");
  ASSERT_EQ(shot.status, 0) << shot.output;
  const cv::Mat page = cv::imread(screenshot.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(page.empty()) << "no screenshot at " << screenshot;
  EXPECT_EQ(page.cols, 1200);
  // The preview sits at the top left under the header: colour bars, not the dark page.
  const cv::Mat preview = page(cv::Rect(20, 70, 300, 200));
  cv::Scalar mean, deviation;
  cv::meanStdDev(preview, mean, deviation);
  EXPECT_GT(deviation[0] + deviation[1] + deviation[2], 60.0) << "the preview region is blank";
  stop();
}

}  // namespace
}  // namespace detflow::service
