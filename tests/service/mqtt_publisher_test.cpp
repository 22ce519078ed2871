// The MQTT publisher against a real Mosquitto broker: events arrive by id, nothing is lost
// across a broker restart or a SIGKILL of the publisher, counts are republished after a
// reconnect, a full outbox drops the oldest, the Last Will says offline, a wrong password
// or an absent broker is one clear line. Each test takes a few seconds.
#include <atomic>
#include <csignal>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "detflow/service/mqtt_events_view.h"
#include "detflow/service/mqtt_publisher.h"
#include "mqtt_test_support.h"
#include "shared_data.h"

namespace detflow::service {
namespace {

using namespace std::chrono_literals;
using test::Collector;
using test::MosquittoBroker;
using test::ReceivedMessage;

MqttSettings settings_for(const std::string& url, const std::string& camera) {
  MqttSettings settings;
  settings.url = url;
  settings.camera = camera;
  settings.outbox.directory = test::temporary_directory("mqtt-outbox");
  settings.outbox.fsync = FsyncPolicy::never;
  settings.connect_timeout = 2000ms;
  settings.reconnect_min = 100ms;
  settings.reconnect_max = 500ms;
  return settings;
}

std::string event_payload(const std::string& id, int index) {
  return nlohmann::json{{"event_id", id}, {"type", "line_cross"}, {"n", index}}.dump();
}

// Event ids received on `topic`, with how often each came.
std::map<std::string, int> ids_on(const std::vector<ReceivedMessage>& messages, const std::string& topic) {
  std::map<std::string, int> ids;
  for (const auto& message : messages) {
    if (message.topic != topic) continue;
    const auto json = nlohmann::json::parse(message.payload, nullptr, false);
    if (json.is_object() && json.contains("event_id")) ++ids[json["event_id"].get<std::string>()];
  }
  return ids;
}

std::function<bool(const std::vector<ReceivedMessage>&)> has_ids(const std::string& topic, std::size_t count) {
  return
      [topic, count](const std::vector<ReceivedMessage>& messages) { return ids_on(messages, topic).size() >= count; };
}

std::string status_of(const ReceivedMessage& message) {
  const auto json = nlohmann::json::parse(message.payload, nullptr, false);
  return json.is_object() ? json.value("status", std::string()) : std::string();
}

// A child process running the publish tool, with its stdout readable line by line.
class ToolProcess {
 public:
  explicit ToolProcess(const std::vector<std::string>& arguments) {
    int pipe_ends[2];
    EXPECT_EQ(::pipe2(pipe_ends, O_CLOEXEC), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(pipe_ends[1], STDOUT_FILENO);
      std::vector<char*> argv;
      std::string executable = DETFLOW_MQTT_PUBLISH_TOOL;
      argv.push_back(executable.data());
      std::vector<std::string> copies = arguments;
      for (auto& argument : copies) argv.push_back(argument.data());
      argv.push_back(nullptr);
      ::execv(executable.c_str(), argv.data());
      std::_Exit(127);
    }
    ::close(pipe_ends[1]);
    output_ = pipe_ends[0];
  }
  ~ToolProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    if (output_ >= 0) ::close(output_);
  }
  // The next line of output, or empty after `timeout` or at end of output.
  std::string read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      pollfd descriptor{output_, POLLIN, 0};
      if (::poll(&descriptor, 1, static_cast<int>(left.count())) <= 0) return {};
      char chunk[256];
      const ssize_t got = ::read(output_, chunk, sizeof chunk);
      if (got <= 0) return {};
      buffer_.append(chunk, static_cast<std::size_t>(got));
    }
  }
  void kill_now() { ::kill(pid_, SIGKILL); }
  // The exit status (waitpid's), after it ended.
  int wait() {
    int status = 0;
    if (pid_ > 0) ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int output_ = -1;
  std::string buffer_;
};

TEST(MqttPublisher, EventsArriveWithTheirIdsAndStatusIsRetained) {
  DETFLOW_REQUIRE_MOSQUITTO();
  MosquittoBroker broker;
  broker.start();
  Collector collector(broker.url(), "detflow/#");
  MqttPublisher publisher(settings_for(broker.url(), "door"));
  publisher.start();
  std::set<std::string> published;
  for (int index = 1; index <= 300; ++index) {
    const std::string id = "run1-" + std::to_string(index);
    publisher.publish_event(id, event_payload(id, index));
    published.insert(id);
  }
  ASSERT_TRUE(collector.wait_until(has_ids("detflow/door/events", 300), 10s));
  const auto ids = ids_on(collector.messages(), "detflow/door/events");
  std::set<std::string> received;
  for (const auto& [id, times] : ids) received.insert(id);
  EXPECT_EQ(received, published);
  // In order: the n field increases along the topic.
  int last = 0;
  for (const auto& message : collector.on_topic("detflow/door/events")) {
    const int n = nlohmann::json::parse(message.payload)["n"].get<int>();
    EXPECT_GT(n, last);
    last = n;
  }
  ASSERT_TRUE(collector.wait_until([&](const auto&) { return publisher.counters().events_pending == 0; }, 5s));
  EXPECT_EQ(publisher.counters().events_sent, 300);
  const auto status = collector.on_topic("detflow/door/status");
  ASSERT_FALSE(status.empty());
  EXPECT_EQ(status_of(status.front()), "online");

  // A newcomer gets the retained status at once; after a clean stop it says offline, stopped.
  publisher.stop();
  Collector late(broker.url(), "detflow/door/status");
  ASSERT_TRUE(late.wait_until([](const auto& messages) { return !messages.empty(); }, 5s));
  const auto retained = late.messages().front();
  EXPECT_TRUE(retained.retained);
  EXPECT_EQ(status_of(retained), "offline");
  EXPECT_EQ(nlohmann::json::parse(retained.payload)["reason"], "stopped");
}

TEST(MqttPublisher, BrokerRestartLosesNoEventAndCountsAreRepublished) {
  DETFLOW_REQUIRE_MOSQUITTO();
  MosquittoBroker broker;
  broker.start();
  Collector collector(broker.url(), "detflow/#");
  MqttPublisher publisher(settings_for(broker.url(), "lobby"));
  publisher.start();
  publisher.publish_counts("door", R"({"line": "door", "in": 1, "out": 0})");

  // The pipeline keeps producing events at a steady rate while the broker goes away for 5 s.
  std::atomic<bool> producing{true};
  std::atomic<int> produced{0};
  std::thread producer([&] {
    while (producing) {
      const int index = ++produced;
      const std::string id = "run2-" + std::to_string(index);
      publisher.publish_event(id, event_payload(id, index));
      std::this_thread::sleep_for(10ms);
    }
  });
  std::this_thread::sleep_for(1s);
  broker.stop();
  const auto stopped_at = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(5s);
  EXPECT_GT(publisher.counters().events_pending, 100);  // they wait in the outbox
  broker.start();
  std::this_thread::sleep_for(1s);
  producing = false;
  producer.join();
  const int total = produced;

  ASSERT_TRUE(collector.wait_until(has_ids("detflow/lobby/events", static_cast<std::size_t>(total)), 15s))
      << "received " << ids_on(collector.messages(), "detflow/lobby/events").size() << " of " << total;
  const auto ids = ids_on(collector.messages(), "detflow/lobby/events");
  for (int index = 1; index <= total; ++index) {
    EXPECT_EQ(ids.count("run2-" + std::to_string(index)), 1u) << "missing run2-" << index;
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(total));  // duplicates, if any, share an id
  EXPECT_GE(publisher.counters().connects, 2);

  // The counts were sent again after the reconnect (a live message, not the retained copy).
  bool republished = false;
  for (const auto& message : collector.on_topic("detflow/lobby/counts/door")) {
    if (message.at > stopped_at && !message.retained) republished = true;
  }
  EXPECT_TRUE(republished);
  publisher.stop();
}

TEST(MqttPublisher, EventsQueuedBeforeAKillArriveAfterTheRestart) {
  DETFLOW_REQUIRE_MOSQUITTO();
  MosquittoBroker broker;  // not started: the broker is down while the first run is killed
  const auto outbox = test::temporary_directory("mqtt-kill-outbox");
  {
    ToolProcess first({broker.url(), outbox.string(), "gate", "80", "kill", "run3"});
    EXPECT_EQ(first.read_line(10s), "queued");
    const int status = first.wait();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  }
  broker.start();
  Collector collector(broker.url(), "detflow/gate/#");
  ToolProcess second({broker.url(), outbox.string(), "gate", "20", "drain", "run4"});
  EXPECT_EQ(second.read_line(15s), "sent 100 pending 0 dropped 0");
  EXPECT_EQ(second.wait(), 0);
  ASSERT_TRUE(collector.wait_until(has_ids("detflow/gate/events", 100), 5s));
  const auto ids = ids_on(collector.messages(), "detflow/gate/events");
  for (int index = 1; index <= 80; ++index) EXPECT_EQ(ids.count("run3-" + std::to_string(index)), 1u);
  for (int index = 1; index <= 20; ++index) EXPECT_EQ(ids.count("run4-" + std::to_string(index)), 1u);
  // The first run's events went first.
  const auto events = collector.on_topic("detflow/gate/events");
  EXPECT_EQ(nlohmann::json::parse(events.front().payload)["event_id"], "run3-1");
}

TEST(MqttPublisher, LastWillSaysOfflineWhenThePublisherIsKilled) {
  DETFLOW_REQUIRE_MOSQUITTO();
  MosquittoBroker broker;
  broker.start();
  Collector collector(broker.url(), "detflow/yard/status");
  ToolProcess tool({broker.url(), test::temporary_directory("mqtt-will").string(), "yard", "5", "hold"});
  ASSERT_EQ(tool.read_line(10s), "ready");
  ASSERT_TRUE(collector.wait_until(
      [](const auto& messages) { return !messages.empty() && status_of(messages.back()) == "online"; }, 5s));
  tool.kill_now();
  tool.wait();
  ASSERT_TRUE(collector.wait_until(
      [](const auto& messages) { return !messages.empty() && status_of(messages.back()) == "offline"; }, 5s));
  EXPECT_EQ(nlohmann::json::parse(collector.messages().back().payload)["reason"], "connection lost");
  // Retained: a dashboard that connects now still sees offline.
  Collector late(broker.url(), "detflow/yard/status");
  ASSERT_TRUE(late.wait_until([](const auto& messages) { return !messages.empty(); }, 5s));
  EXPECT_EQ(status_of(late.messages().front()), "offline");
}

TEST(MqttPublisher, FullOutboxDropsTheOldestAndCountsThem) {
  DETFLOW_REQUIRE_MOSQUITTO();
  MosquittoBroker broker;  // down at first
  MqttSettings settings = settings_for(broker.url(), "dock");
  settings.outbox.max_bytes = 16 * 1024;
  MqttPublisher publisher(settings);
  publisher.start();  // not required: warns, keeps trying
  constexpr int total = 1000;
  const auto started = std::chrono::steady_clock::now();
  for (int index = 1; index <= total; ++index) {
    const std::string id = "run5-" + std::to_string(index);
    publisher.publish_event(id, event_payload(id, index));
  }
  // Never blocked on the absent broker: a thousand disk appends take milliseconds.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  const auto counters = publisher.counters();
  EXPECT_GT(counters.events_dropped, 0);
  EXPECT_EQ(counters.events_dropped + counters.events_pending, total);
  EXPECT_LE(counters.outbox.pending_bytes, settings.outbox.max_bytes);

  broker.start();
  Collector collector(broker.url(), "detflow/dock/events");
  const auto kept = static_cast<std::size_t>(counters.events_pending);
  ASSERT_TRUE(collector.wait_until(has_ids("detflow/dock/events", kept), 10s));
  const auto ids = ids_on(collector.messages(), "detflow/dock/events");
  // The newest survived: exactly the last `kept` ids.
  for (int index = total - static_cast<int>(kept) + 1; index <= total; ++index) {
    EXPECT_EQ(ids.count("run5-" + std::to_string(index)), 1u);
  }
  EXPECT_EQ(ids.size(), kept);
  publisher.stop();
}

TEST(MqttPublisher, WrongPasswordIsOneClearLine) {
  DETFLOW_REQUIRE_MOSQUITTO();
  MosquittoBroker broker("detflow", "right-password");
  broker.start();
  MqttSettings settings = settings_for(broker.url(), "door");
  settings.username = "detflow";
  settings.password = "wrong-password";
  settings.required = true;
  {
    MqttPublisher publisher(settings);
    try {
      publisher.start();
      FAIL() << "a wrong password was accepted";
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_EQ(message.find('\n'), std::string::npos);
      EXPECT_NE(message.find(broker.url()), std::string::npos) << message;
      EXPECT_NE(message.find("mqtt.required"), std::string::npos) << message;
    }
  }
  // Not required: the run goes on and the events wait.
  settings.required = false;
  MqttPublisher lenient(settings);
  EXPECT_NO_THROW(lenient.start());
  lenient.publish_event("x-1", event_payload("x-1", 1));
  EXPECT_EQ(lenient.counters().events_pending, 1);
  EXPECT_FALSE(lenient.counters().last_error.empty());
  lenient.stop(0ms);

  // The right password connects.
  settings.password = "right-password";
  settings.required = true;
  MqttPublisher right(settings);
  EXPECT_NO_THROW(right.start());
  right.stop();
}

TEST(MqttPublisher, UnreachableBrokerWhenRequiredThrows) {
  MqttSettings settings = settings_for("mqtt://127.0.0.1:" + std::to_string(test::free_loopback_port()), "door");
  settings.required = true;
  MqttPublisher publisher(settings);
  EXPECT_THROW(publisher.start(), Error);
}

TEST(MqttPublisher, SettingsAreCheckedUpFront) {
  const auto outbox = test::temporary_directory("mqtt-settings");
  auto make = [&](const std::string& url, const std::string& camera) {
    MqttSettings settings;
    settings.url = url;
    settings.camera = camera;
    settings.outbox.directory = outbox;
    return MqttPublisher(settings);
  };
  EXPECT_THROW(make("http://broker:1883", "door"), Error);
  EXPECT_THROW(make("mqtt://", "door"), Error);
  EXPECT_THROW(make("mqtt://broker:99999", "door"), Error);
  EXPECT_THROW(make("mqtt://broker:1883", "front/door"), Error);
  EXPECT_THROW(make("mqtt://broker:1883", "a+b"), Error);
  EXPECT_EQ(paho_server_uri("mqtt://broker"), "tcp://broker:1883");
  EXPECT_EQ(paho_server_uri("mqtts://broker"), "ssl://broker:8883");
  EXPECT_EQ(paho_server_uri("mqtt://10.0.0.2:1884"), "tcp://10.0.0.2:1884");
  EXPECT_EQ(paho_server_uri("mqtt://[::1]:1884"), "tcp://[::1]:1884");
  EXPECT_EQ(topic_level("Front Door/#1"), "Front-Door-1");
  EXPECT_EQ(topic_level("///"), "camera");
}

TEST(MqttPublisher, PasswordComesFromAnEnvironmentVariableOrAFile) {
  ::setenv("DETFLOW_TEST_MQTT_TOKEN", "token-from-env", 1);
  EXPECT_EQ(resolve_mqtt_password({}, {}, "DETFLOW_TEST_MQTT_TOKEN"), "token-from-env");
  const auto file = test::temporary_directory("mqtt-password") / "token";
  {
    std::ofstream stream(file);
    stream << "token-from-file  \nsecond line\n";
  }
  EXPECT_EQ(resolve_mqtt_password({}, file, {}), "token-from-file");
  EXPECT_EQ(resolve_mqtt_password("literal", {}, {}), "literal");
  EXPECT_THROW(resolve_mqtt_password({}, {}, "DETFLOW_TEST_MQTT_UNSET_VARIABLE"), Error);
  EXPECT_THROW(resolve_mqtt_password({}, file.string() + ".missing", {}), Error);
  EXPECT_THROW(resolve_mqtt_password("literal", file, {}), Error);
}

TEST(MqttEventsView, PrintsEventsCountsAndStatusAsJsonLines) {
  DETFLOW_REQUIRE_MOSQUITTO();
  MosquittoBroker broker;
  broker.start();
  MqttPublisher publisher(settings_for(broker.url(), "door"));
  publisher.start();
  publisher.publish_counts("entrance", R"({"line": "entrance", "in": 2, "out": 1})");
  std::this_thread::sleep_for(300ms);  // retained before the viewer subscribes

  std::ostringstream out;
  std::atomic<bool> stop{false};
  std::promise<void> subscribed;
  std::thread viewer([&] {
    EventsViewOptions options;
    options.url = broker.url();
    options.camera = "door";
    options.max_messages = 5;  // status + counts (retained) + 3 events
    options.timeout_s = 10;
    options.on_subscribed = [&] { subscribed.set_value(); };
    view_mqtt_events(options, out, stop);
  });
  ASSERT_EQ(subscribed.get_future().wait_for(10s), std::future_status::ready);
  for (int index = 1; index <= 3; ++index) {
    const std::string id = "view-" + std::to_string(index);
    publisher.publish_event(id, event_payload(id, index));
  }
  viewer.join();
  publisher.stop();

  std::istringstream lines(out.str());
  std::map<std::string, int> kinds;
  std::string line;
  while (std::getline(lines, line)) {
    const auto json = nlohmann::json::parse(line);
    EXPECT_EQ(json["camera"], "door");
    ++kinds[json["kind"].get<std::string>()];
    if (json["kind"] == "counts") {
      EXPECT_EQ(json["name"], "entrance");
      EXPECT_EQ(json["payload"]["in"], 2);
    }
    if (json["kind"] == "event") {
      EXPECT_TRUE(json["payload"].contains("event_id"));
    }
  }
  EXPECT_EQ(kinds["event"], 3);
  EXPECT_EQ(kinds["counts"], 1);
  EXPECT_EQ(kinds["status"], 1);
}

}  // namespace
}  // namespace detflow::service
