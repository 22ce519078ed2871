// The MQTT sink: configuration to settings (camera name, password, outbox folder), and a
// run's results, tracking events and counts reaching a real broker.
#include "detflow/service/mqtt_sink.h"

#include <cstdlib>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "mqtt_test_support.h"
#include "shared_data.h"

namespace detflow::service {
namespace {

using namespace std::chrono_literals;

TEST(MqttSinkSettings, CameraNameIsDerivedFromTheSourceAndTopicSafe) {
  const std::string host = default_camera_name("").substr(0, default_camera_name("").rfind("-camera"));
  EXPECT_FALSE(host.empty());
  EXPECT_EQ(default_camera_name("/data/videos/vtest.avi"), host + "-vtest");
  EXPECT_EQ(default_camera_name("0"), host + "-camera0");
  EXPECT_EQ(default_camera_name("/dev/video2"), host + "-camera2");
  EXPECT_EQ(default_camera_name("rtsp://user:secret@cam.local:554/live/main?x=1"), host + "-cam.local-554-live-main");
  EXPECT_EQ(default_camera_name("gst:videotestsrc ! appsink"), host + "-gstreamer");
  for (const std::string source : {"a b#c+d/e.mp4", "rtsp://x/y", "/dev/video0"}) {
    EXPECT_EQ(topic_level(default_camera_name(source)), default_camera_name(source));
  }
}

TEST(MqttSinkSettings, ConfigurationBecomesPublisherSettings) {
  MqttConfig config;
  config.url = "mqtt://broker.lan";
  config.username = "detflow";
  config.password_env = "DETFLOW_TEST_SINK_TOKEN";
  config.fsync = "always";
  config.outbox_bytes = 1 << 20;
  ::setenv("DETFLOW_TEST_SINK_TOKEN", "s3cret", 1);
  ::setenv("XDG_STATE_HOME", "/tmp/detflow-state", 1);
  const MqttSettings settings = to_mqtt_settings(config, "/videos/lobby.mp4");
  EXPECT_EQ(settings.password, "s3cret");
  EXPECT_EQ(settings.camera, default_camera_name("/videos/lobby.mp4"));
  EXPECT_EQ(settings.outbox.directory, std::filesystem::path("/tmp/detflow-state/detflow/outbox") / settings.camera);
  EXPECT_EQ(settings.outbox.fsync, FsyncPolicy::always);
  EXPECT_EQ(settings.outbox.max_bytes, 1u << 20);

  config.camera = "lobby";
  config.outbox = "/var/lib/detflow/outbox";
  const MqttSettings named = to_mqtt_settings(config, "/videos/lobby.mp4");
  EXPECT_EQ(named.camera, "lobby");
  EXPECT_EQ(named.outbox.directory, "/var/lib/detflow/outbox");

  config.url = "tcp://broker.lan";
  EXPECT_THROW(to_mqtt_settings(config, "x.mp4"), Error);
  config.url = "mqtt://broker.lan";
  config.password_env = "DETFLOW_TEST_SINK_UNSET";
  EXPECT_THROW(to_mqtt_settings(config, "x.mp4"), Error);
  MqttConfig off;
  EXPECT_EQ(make_mqtt_sink(off, "x.mp4"), nullptr);
}

FrameResult result_with(std::int64_t index, int detections) {
  auto frame = std::make_shared<Frame>();
  frame->index = index;
  frame->pts_ms = static_cast<double>(index) * 40.0;
  frame->image = cv::Mat(48, 64, CV_8UC3, cv::Scalar::all(0));
  FrameResult result;
  result.frame = frame;
  for (int detection = 0; detection < detections; ++detection) {
    Detection box;
    box.x1 = 1.0f + static_cast<float>(detection);
    box.y1 = 2;
    box.x2 = 10;
    box.y2 = 20;
    box.score = 0.5f;
    box.label = "person";
    result.detections.push_back(box);
  }
  return result;
}

track::Event crossing(track::EventIdGenerator& ids, std::int64_t frame, track::Direction direction) {
  track::Event event;
  event.event_id = ids.next();
  event.frame = frame;
  event.type = track::EventType::line_cross;
  event.track_id = 7;
  event.label = "person";
  event.line = "entrance";
  event.direction = direction;
  return event;
}

TEST(MqttSink, PublishesDetectionsEventsCountsAndSourceStatus) {
  DETFLOW_REQUIRE_MOSQUITTO();
  test::MosquittoBroker broker;
  broker.start();
  test::Collector collector(broker.url(), "detflow/lobby/#");

  MqttConfig config;
  config.url = broker.url();
  config.camera = "lobby";
  config.outbox = test::temporary_directory("mqtt-sink-outbox");
  config.fsync = "never";
  config.detections = true;
  config.detections_rate = 5;
  auto sink = make_mqtt_sink(config, "lobby.mp4");
  ASSERT_NE(sink, nullptr);
  std::atomic<int> source_state{static_cast<int>(SourceState::up)};
  sink->set_source_probe([&] {
    SourceCounters counters;
    counters.state = static_cast<SourceState>(source_state.load());
    return counters;
  });
  SourceInfo info;
  info.kind = "rtsp";
  info.live = true;
  sink->open(info);

  // 40 frames within a fraction of a second: the rate limit lets one or two through.
  for (std::int64_t index = 0; index < 40; ++index) EXPECT_TRUE(sink->consume(result_with(index, 2)));

  track::EventIdGenerator ids("00000000000000aa");
  track::CountsSnapshot counts = track::CountsSnapshot::with_names({"entrance"}, {});
  std::vector<std::string> published;
  for (int index = 0; index < 5; ++index) {
    // As the tracking step hands them over: the frame's events and the counts after them.
    const auto event = crossing(ids, index, index % 2 ? track::Direction::out : track::Direction::in);
    published.push_back(event.event_id);
    counts.apply(event);
    FrameResult result = result_with(100 + index, 0);
    result.events.push_back(event);
    result.counts = &counts;
    EXPECT_TRUE(sink->consume(result));
    sink->publish_counts(counts);  // unchanged: not sent again
  }
  source_state = static_cast<int>(SourceState::connecting);
  ASSERT_TRUE(collector.wait_until(
      [](const auto& messages) {
        int events = 0;
        bool connecting = false;
        for (const auto& message : messages) {
          if (message.topic == "detflow/lobby/events") ++events;
          if (message.topic == "detflow/lobby/status" && message.payload.find("\"connecting\"") != std::string::npos)
            connecting = true;
        }
        return events == 5 && connecting;
      },
      10s));
  sink->finish();

  std::vector<std::string> received;
  for (const auto& message : collector.on_topic("detflow/lobby/events")) {
    received.push_back(nlohmann::json::parse(message.payload)["event_id"].get<std::string>());
  }
  EXPECT_EQ(received, published);

  // Counts are state: at most one message per change (unchanged calls send nothing, quick
  // successive changes may be coalesced), and the last one holds the final numbers.
  const auto counts_messages = collector.on_topic("detflow/lobby/counts/entrance");
  ASSERT_GE(counts_messages.size(), 1u);
  EXPECT_LE(sink->publisher().counters().counts_published, 5);
  const auto last_counts = nlohmann::json::parse(counts_messages.back().payload);
  EXPECT_EQ(last_counts["line"], "entrance");
  EXPECT_EQ(last_counts["in"], 3);
  EXPECT_EQ(last_counts["out"], 2);
  EXPECT_EQ(last_counts["camera"], "lobby");

  const auto detections = collector.on_topic("detflow/lobby/detections");
  ASSERT_GE(detections.size(), 1u);
  EXPECT_LE(detections.size(), 3u);
  const auto first = nlohmann::json::parse(detections.front().payload);
  EXPECT_EQ(first["frame"], 0);
  EXPECT_EQ(first["detections"].size(), 2u);
  EXPECT_EQ(first["detections"][0]["box"], nlohmann::json::parse("[1.0, 2.0, 10.0, 20.0]"));

  const auto status = collector.on_topic("detflow/lobby/status");
  ASSERT_GE(status.size(), 3u);  // online (up), online (connecting), offline (stopped)
  EXPECT_EQ(nlohmann::json::parse(status.front().payload)["source"], "up");
  EXPECT_EQ(nlohmann::json::parse(status.back().payload)["status"], "offline");
}

}  // namespace
}  // namespace detflow::service
