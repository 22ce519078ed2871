// `detflow run --mqtt` and `detflow events` end to end: the real command on vtest.avi with
// tracking and a counting line, a real Mosquitto broker, and a subscriber comparing what
// arrived with the --events file of the same run. Skips without ../shared or mosquitto.
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_process.h"
#include "mqtt_test_support.h"
#include "shared_data.h"

namespace detflow::test {
namespace {

using namespace std::chrono_literals;

std::set<std::string> ids_in_file(const std::filesystem::path& path) {
  std::set<std::string> ids;
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    if (!line.empty()) ids.insert(nlohmann::json::parse(line)["event_id"].get<std::string>());
  }
  return ids;
}

std::set<std::string> ids_received(const std::vector<ReceivedMessage>& messages, const std::string& topic) {
  std::set<std::string> ids;
  for (const auto& message : messages) {
    if (message.topic == topic) ids.insert(nlohmann::json::parse(message.payload)["event_id"].get<std::string>());
  }
  return ids;
}

std::set<std::string> ids_received(const Collector& collector, const std::string& topic) {
  return ids_received(collector.on_topic(topic), topic);
}

std::vector<std::string> run_arguments(const std::filesystem::path& model, const std::filesystem::path& video,
                                       const std::string& url, const std::filesystem::path& work) {
  return {"run",
          "--model",
          model.string(),
          "--source",
          video.string(),
          "--no-display",
          "--quiet",
          "--max-frames",
          "250",
          "--line",
          "door=384,0,384,576",
          "--events",
          (work / "events.jsonl").string(),
          "--mqtt",
          url,
          "--name",
          "vtest",
          "-c",
          (work / "mqtt.yaml").string()};
}

void write_mqtt_yaml(const std::filesystem::path& work) {
  std::ofstream yaml(work / "mqtt.yaml");
  yaml << "mqtt:\n  outbox: " << (work / "outbox").string() << "\n  fsync: never\n  drain: 10\n";
}

TEST(MqttCommandLine, EventsReceivedEqualTheEventsFileOfTheSameRun) {
  DETFLOW_REQUIRE_MOSQUITTO();
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  MosquittoBroker broker;
  broker.start();
  Collector collector(broker.url(), "detflow/vtest/#");
  const auto work = temporary_directory("mqtt-cli");
  write_mqtt_yaml(work);

  const ProcessResult result = run_detflow(run_arguments(model, video, broker.url(), work), 120s);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto written = ids_in_file(work / "events.jsonl");
  ASSERT_FALSE(written.empty()) << "the run produced no events to compare";
  ASSERT_TRUE(collector.wait_until(
      [&](const auto& messages) { return ids_received(messages, "detflow/vtest/events").size() >= written.size(); },
      10s));
  EXPECT_EQ(ids_received(collector, "detflow/vtest/events"), written);
  EXPECT_FALSE(collector.on_topic("detflow/vtest/counts/door").empty());
  const auto status = collector.on_topic("detflow/vtest/status");
  ASSERT_FALSE(status.empty());
  EXPECT_EQ(nlohmann::json::parse(status.back().payload)["status"], "offline");
}

TEST(MqttCommandLine, EventsOfARunWithoutBrokerArriveWithTheNextRun) {
  DETFLOW_REQUIRE_MOSQUITTO();
  DETFLOW_SHARED_FILE(model, "models/yolox_nano.onnx");
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  MosquittoBroker broker;  // down during the first run
  const auto work = temporary_directory("mqtt-cli-offline");
  write_mqtt_yaml(work);

  const ProcessResult first = run_detflow(run_arguments(model, video, broker.url(), work), 120s);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.err.find("cannot connect"), std::string::npos) << first.err;  // one clear warning
  const auto first_ids = ids_in_file(work / "events.jsonl");
  ASSERT_FALSE(first_ids.empty());

  broker.start();
  Collector collector(broker.url(), "detflow/vtest/events");
  std::filesystem::rename(work / "events.jsonl", work / "first-events.jsonl");
  const ProcessResult second = run_detflow(run_arguments(model, video, broker.url(), work), 120s);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const auto second_ids = ids_in_file(work / "events.jsonl");
  std::set<std::string> expected = first_ids;
  expected.insert(second_ids.begin(), second_ids.end());
  ASSERT_TRUE(collector.wait_until(
      [&](const auto& messages) { return ids_received(messages, "detflow/vtest/events").size() >= expected.size(); },
      10s));
  EXPECT_EQ(ids_received(collector, "detflow/vtest/events"), expected);
}

TEST(MqttCommandLine, EventsCommandPrintsJsonLines) {
  DETFLOW_REQUIRE_MOSQUITTO();
  MosquittoBroker broker;
  broker.start();
  // A retained status and counts, as a run leaves them.
  ASSERT_EQ(std::system(("mosquitto_pub -p " + std::to_string(broker.port()) +
                         " -r -t detflow/door/status -m '{\"status\":\"online\",\"camera\":\"door\"}' && "
                         "mosquitto_pub -p " +
                         std::to_string(broker.port()) +
                         " -r -t detflow/door/counts/entrance -m '{\"line\":\"entrance\",\"in\":4,\"out\":1}'")
                            .c_str()),
            0);
  const ProcessResult result = run_detflow({"events", broker.url(), "--count", "2", "--timeout", "10"}, 30s);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::istringstream lines(result.out);
  std::string line;
  std::set<std::string> kinds;
  while (std::getline(lines, line)) {
    const auto json = nlohmann::json::parse(line);
    EXPECT_EQ(json["camera"], "door");
    EXPECT_TRUE(json["retained"].get<bool>());
    kinds.insert(json["kind"].get<std::string>());
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"status", "counts"}));

  const ProcessResult bad = run_detflow({"events", "http://127.0.0.1:1"}, 30s);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("mqtt://"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace detflow::test
