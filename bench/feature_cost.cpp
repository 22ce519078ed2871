#include "detflow/bench/feature_cost.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string_view>
#include <thread>

#include "detflow/error.h"
#include "detflow/pipeline/config.h"
#include "detflow/service/http_server.h"
#include "detflow/service/mqtt_sink.h"
#include "detflow/service/preview.h"
#include "detflow/service/run_probe.h"

namespace detflow::bench {
namespace {

using nlohmann::json;

// PipelineSettings::detection_interval comes with the detector-every-N-frames work; the
// bench compiles with and without it.
template <typename Settings>
constexpr bool has_detection_interval() {
  return requires(Settings settings) { settings.detection_interval; };
}

template <typename Settings>
void set_detection_interval(Settings& settings, int interval) {
  if constexpr (has_detection_interval<Settings>()) {
    settings.detection_interval = interval;
  } else {
    throw Error("interval" + std::to_string(interval) +
                ": this build's pipeline has no detection interval (PipelineSettings::detection_interval)");
  }
}

int interval_of(const std::string& feature) {
  return feature.rfind("interval", 0) == 0 ? std::stoi(feature.substr(8)) : 1;
}

int loopback_connect(int port, int receive_buffer_bytes) {
  const int descriptor = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (descriptor < 0) return -1;
  if (receive_buffer_bytes > 0) {
    ::setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof receive_buffer_bytes);
  }
  timeval timeout{0, 200 * 1000};  // wake often enough to notice the end of the run
  ::setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(descriptor, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(descriptor);
    return -1;
  }
  return descriptor;
}

int free_loopback_port() {
  const int descriptor = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(descriptor, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(descriptor, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(descriptor);
  return ntohs(address.sin_port);
}

// One /stream.mjpg reader. Fast: reads 64 KiB at a time. Slow: a 4 KiB receive buffer and
// 16 bytes every half second, so the server's writes block until its timeout drops it; it then
// connects again. Counts parts by their "X-Frame-Index: " header.
class PreviewClient {
 public:
  PreviewClient(int port, bool slow) : port_(port), slow_(slow), thread_([this] { run(); }) {}
  ~PreviewClient() { stop(); }
  PreviewClient(const PreviewClient&) = delete;
  PreviewClient& operator=(const PreviewClient&) = delete;

  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool connected() const { return connected_.load(); }
  json report() const {
    return {
        {"slow", slow_}, {"frames", frames_.load()}, {"bytes", bytes_.load()}, {"connections", connections_.load()}};
  }

 private:
  void run() {
    static constexpr std::string_view marker = "X-Frame-Index: ";
    std::string buffer(slow_ ? 16 : 65536, '\0');
    while (!stopping_) {
      const int descriptor = loopback_connect(port_, slow_ ? 4096 : 0);
      if (descriptor < 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      const std::string request = "GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
      if (::send(descriptor, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
        ::close(descriptor);
        continue;
      }
      ++connections_;
      connected_ = true;
      std::string tail;  // the end of the previous read, so a marker split across reads counts
      while (!stopping_) {
        const ssize_t received = ::recv(descriptor, buffer.data(), buffer.size(), 0);
        if (received == 0) break;  // the server dropped this client or the run ended
        if (received < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
          break;
        }
        bytes_ += received;
        std::string text = tail + buffer.substr(0, static_cast<std::size_t>(received));
        for (auto at = text.find(marker); at != std::string::npos; at = text.find(marker, at + marker.size())) {
          ++frames_;
        }
        tail = text.size() >= marker.size() - 1 ? text.substr(text.size() - (marker.size() - 1)) : text;
        if (slow_) std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
      connected_ = false;
      ::close(descriptor);
    }
  }

  const int port_;
  const bool slow_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::atomic<std::int64_t> frames_{0};
  std::atomic<std::int64_t> bytes_{0};
  std::atomic<std::int64_t> connections_{0};
  std::thread thread_;  // last: starts after the counters exist
};

}  // namespace

struct FeatureRun::Preview {
  std::shared_ptr<service::LatestFrame> latest;
  std::unique_ptr<service::HttpServer> server;
  std::vector<std::unique_ptr<PreviewClient>> clients;
  int clients_connected_at_start = 0;
};

bool detection_interval_available() { return has_detection_interval<PipelineSettings>(); }

std::vector<std::string> parse_feature_list(const std::string& text) {
  static const std::vector<std::string> known{"tracking", "preview", "mqtt", "interval2", "interval3"};
  std::vector<std::string> features;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const auto end = std::min(text.find(',', begin), text.size());
    const std::string name = text.substr(begin, end - begin);
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      throw Error("--with '" + text + "': unknown feature '" + name +
                  "' (expected a comma-separated list of tracking, preview, mqtt, interval2, interval3)");
    }
    if (std::find(features.begin(), features.end(), name) != features.end()) {
      throw Error("--with '" + text + "': '" + name + "' is given twice");
    }
    if (name.rfind("interval", 0) == 0 && !detection_interval_available()) {
      throw Error("--with " + name +
                  ": this build's pipeline has no detection interval (PipelineSettings::detection_interval)");
    }
    features.push_back(name);
    begin = end + 1;
  }
  return features;
}

bool feature_uses_tracking(const std::string& feature) { return !feature.empty() && feature != "preview"; }

std::vector<track::LineSettings> default_bench_lines(int width, int height) {
  std::vector<track::LineSettings> lines(2);
  lines[0].name = "left";
  lines[1].name = "right";
  for (int index = 0; index < 2; ++index) {
    const float x = static_cast<float>(width) * static_cast<float>(index + 1) / 3.0f;
    lines[static_cast<std::size_t>(index)].start = {x, 0.0f};
    lines[static_cast<std::size_t>(index)].end = {x, static_cast<float>(height)};
  }
  return lines;
}

FeatureRun::FeatureRun(FeatureSetup setup) : setup_(std::move(setup)) {}

FeatureRun::~FeatureRun() {
  if (preview_) {
    for (auto& client : preview_->clients) client->stop();
    if (preview_->server) preview_->server->stop();
  }
  if (!outbox_directory_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(outbox_directory_, ignored);
  }
}

void FeatureRun::prepare(PipelineSettings& settings, std::vector<std::unique_ptr<Sink>>& sinks) {
  const std::string& feature = setup_.feature;
  if (feature_uses_tracking(feature)) {
    settings.tracking = true;
    settings.analytics.lines = setup_.lines;
  }
  if (interval_of(feature) > 1) set_detection_interval(settings, interval_of(feature));
  if (feature == "preview") {
    preview_ = std::make_unique<Preview>();
    const HttpConfig http;  // `detflow run`'s defaults: JPEG quality, preview rate, clients
    preview_->latest = std::make_shared<service::LatestFrame>(http.jpeg_quality);
    sinks.push_back(service::make_preview_sink(preview_->latest));
  }
  if (feature == "mqtt") {
    outbox_directory_ = setup_.work_directory / ("outbox-" + std::to_string(::getpid()));
    MqttConfig mqtt;
    mqtt.url = setup_.mqtt_url;
    mqtt.camera = "detflow-bench";
    mqtt.client_id = "detflow-bench-" + std::to_string(::getpid());
    mqtt.required = true;  // a broker that is not there fails the run instead of measuring an outbox
    mqtt.outbox = outbox_directory_;
    std::unique_ptr<service::MqttSink> sink = service::make_mqtt_sink(mqtt, setup_.source_uri);
    mqtt_sink_ = sink.get();
    sinks.push_back(std::move(sink));
  }
}

void FeatureRun::start(Pipeline& pipeline) {
  if (mqtt_sink_ != nullptr) {
    static_cast<service::MqttSink*>(mqtt_sink_)->set_source_probe([&pipeline] { return pipeline.source_counters(); });
  }
  if (!preview_) return;
  const HttpConfig http;
  service::HttpSettings settings;
  settings.listen = "127.0.0.1:0";
  settings.max_clients = http.max_clients;
  settings.preview_fps = http.preview_fps;
  const service::RunProbe probe = service::probe_pipeline(pipeline, preview_->latest, nullptr,
                                                          service::default_stall_timeout_s(pipeline.source_info().fps));
  preview_->server = std::make_unique<service::HttpServer>(settings, probe);
  for (const bool slow : {false, false, true}) {
    preview_->clients.push_back(std::make_unique<PreviewClient>(preview_->server->port(), slow));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (preview_->server->preview_clients() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  preview_->clients_connected_at_start = preview_->server->preview_clients();
}

json FeatureRun::finish(double elapsed_s) {
  json result = json::object();
  result["feature"] = setup_.feature;
  if (feature_uses_tracking(setup_.feature)) {
    json lines = json::array();
    for (const auto& line : setup_.lines) {
      lines.push_back({{"name", line.name}, {"points", {line.start.x, line.start.y, line.end.x, line.end.y}}});
    }
    result["lines"] = lines;
    result["detection_interval"] = interval_of(setup_.feature);
  }
  if (preview_) {
    for (auto& client : preview_->clients) client->stop();
    const std::int64_t encodings = preview_->latest->encodings();
    preview_->server->stop();
    json clients = json::array();
    for (const auto& client : preview_->clients) clients.push_back(client->report());
    result["preview"] = {{"clients", clients},
                         {"clients_connected_at_start", preview_->clients_connected_at_start},
                         {"jpeg_encodings", encodings},
                         {"encodings_per_second", elapsed_s > 0 ? static_cast<double>(encodings) / elapsed_s : 0.0},
                         {"preview_fps_per_client", HttpConfig{}.preview_fps}};
  }
  if (mqtt_sink_ != nullptr) {
    const service::MqttCounters counters = static_cast<service::MqttSink*>(mqtt_sink_)->publisher().counters();
    result["mqtt"] = {{"url", setup_.mqtt_url},
                      {"events_acknowledged", counters.events_sent},
                      {"events_pending", counters.events_pending},
                      {"events_dropped", counters.events_dropped},
                      {"connects", counters.connects},
                      {"counts_published", counters.counts_published}};
  }
  return result;
}

std::filesystem::path find_mosquitto() {
  for (const char* candidate : {"/usr/sbin/mosquitto", "/usr/bin/mosquitto"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return {};
}

LocalBroker::LocalBroker(const std::filesystem::path& executable) {
  std::string pattern = (std::filesystem::temp_directory_path() / "detflow-bench-broker-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw Error("cannot create a temporary folder for mosquitto under /tmp");
  directory_ = pattern;
  const std::filesystem::path config = directory_ / "mosquitto.conf";
  // A port picked now may be taken before mosquitto binds it: a few attempts.
  for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) {
    port_ = free_loopback_port();
    {
      std::ofstream file(config);
      file << "listener " << port_ << " 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n";
      if (::geteuid() == 0) file << "user root\n";
    }
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child < 0) throw Error("cannot start " + executable.string() + ": fork failed");
    if (child == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) std::_Exit(1);
      // `detflow` blocks SIGINT and SIGTERM for its shutdown thread; exec keeps the mask, and
      // a broker that cannot see SIGTERM would never stop.
      sigset_t none;
      ::sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      const int null = ::open("/dev/null", O_RDWR);
      if (null >= 0) {
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
      }
      ::execl(executable.c_str(), executable.c_str(), "-c", config.c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      const int probe = loopback_connect(port_, 0);
      if (probe >= 0) {
        ::close(probe);
        pid_ = child;
        break;
      }
      int status = 0;
      if (::waitpid(child, &status, WNOHANG) == child) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (pid_ < 0 && !exited) {
      ::kill(child, SIGTERM);
      ::waitpid(child, nullptr, 0);
    }
  }
  if (pid_ < 0) {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
    throw Error("mosquitto " + executable.string() + " did not listen on a loopback port within 5 s (3 attempts)");
  }
}

LocalBroker::~LocalBroker() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    // Never hang the bench on a broker that does not stop: SIGKILL after 5 s.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (::waitpid(pid_, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

}  // namespace detflow::bench
