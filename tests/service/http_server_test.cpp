// The HTTP endpoint against a fake run: health and readiness, Prometheus text that parses,
// snapshots that decode, capped MJPEG streams, a stuck client that never holds frames back,
// the bearer token.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "detflow/error.h"
#include "detflow/service/http_server.h"
#include "detflow/service/preview.h"
#include "detflow/service/run_probe.h"
#include "stream_reader.h"

namespace detflow::service {
namespace {

// Noise compresses badly: big JPEGs fill the socket buffers of a client that stops reading.
FrameResult make_noise_result(std::int64_t index) {
  static const cv::Mat noise = [] {
    cv::Mat image(480, 640, CV_8UC3);
    cv::randu(image, 0, 256);
    return image;
  }();
  auto frame = std::make_shared<Frame>();
  frame->index = index;
  frame->image = noise.clone();
  FrameResult result;
  result.frame = frame;
  return result;
}

FrameResult make_result(std::int64_t index, int width = 320, int height = 240) {
  auto frame = std::make_shared<Frame>();
  frame->index = index;
  frame->image = cv::Mat(height, width, CV_8UC3, cv::Scalar(40, 90, 160));
  cv::putText(frame->image, std::to_string(index), {10, height / 2}, cv::FONT_HERSHEY_SIMPLEX, 2, {255, 255, 255}, 3);
  FrameResult result;
  result.frame = frame;
  Detection detection;
  detection.x1 = 20, detection.y1 = 20, detection.x2 = 120, detection.y2 = 100, detection.score = 0.9f;
  detection.label = "person";
  result.detections.push_back(detection);
  return result;
}

// A run seen from outside: counters the test sets, histograms it records, a latest frame.
struct FakeRun {
  StatisticsRecorder recorder;
  SourceCounters source;
  std::mutex mutex;
  std::shared_ptr<LatestFrame> latest = std::make_shared<LatestFrame>(80);
  std::shared_ptr<FileOutputCounters> json = std::make_shared<FileOutputCounters>();

  RunProbe probe(double stall_timeout_s = 5) {
    RunProbe probe;
    probe.statistics = [this] { return recorder.snapshot(); };
    probe.source_counters = [this] {
      std::lock_guard lock(mutex);
      return source;
    };
    probe.source.kind = "rtsp";
    probe.source.description = "rtsp://camera/stream (fake)";
    probe.source.live = true;
    probe.recorder = &recorder;
    probe.json_output = json;
    probe.latest = latest;
    probe.stall_timeout_s = stall_timeout_s;
    return probe;
  }
};

HttpSettings loopback(int max_clients = 2, std::string token = {}) {
  HttpSettings settings;
  settings.listen = "127.0.0.1:0";
  settings.max_clients = max_clients;
  settings.token = std::move(token);
  return settings;
}

TEST(ListenAddress, PortAloneIsLoopbackAndBadTextIsRefused) {
  EXPECT_EQ(parse_listen_address("8080").host, "127.0.0.1");
  EXPECT_EQ(parse_listen_address("8080").port, 8080);
  EXPECT_EQ(parse_listen_address(":9090").host, "127.0.0.1");
  EXPECT_EQ(parse_listen_address("0.0.0.0:80").host, "0.0.0.0");
  EXPECT_EQ(parse_listen_address("[::1]:81").host, "::1");
  EXPECT_EQ(parse_listen_address("[::1]:81").port, 81);
  for (const char* bad : {"", "http", "1:2:x", "70000", "[::1]81", "host:"}) {
    EXPECT_THROW(parse_listen_address(bad), Error) << bad;
  }
  try {
    parse_listen_address("localhost:99999");
    FAIL();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("localhost:99999"), std::string::npos) << error.what();
  }
}

TEST(HttpServer, BusyPortIsASetupError) {
  FakeRun run;
  HttpServer first(loopback(), run.probe());
  HttpSettings same = loopback();
  same.listen = first.address();
  EXPECT_THROW(HttpServer(same, run.probe()), Error);
}

TEST(HttpServer, HealthAndReadinessFollowTheFrames) {
  FakeRun run;
  HttpServer server(loopback(), run.probe(0.3));
  httplib::Client client("127.0.0.1", server.port());
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("no frame yet"), std::string::npos) << ready->body;

  run.latest->publish(make_result(0));
  ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;

  // Frames stop: after the stall timeout readiness fails and says why and in which state.
  {
    std::lock_guard lock(run.mutex);
    run.source.state = SourceState::connecting;
    run.source.last_error = "connection refused";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(450));
  ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("no frame for"), std::string::npos) << ready->body;
  EXPECT_NE(ready->body.find("connecting: connection refused"), std::string::npos) << ready->body;
  EXPECT_EQ(client.Get("/healthz")->status, 200);
}

// The Prometheus text format, parsed: every sample belongs to a family declared with HELP
// and TYPE before it; histograms are cumulative and end with +Inf == _count.
struct Family {
  std::string type;
  bool help = false;
};
struct Exposition {
  std::map<std::string, Family> families;
  std::map<std::string, double> samples;  // "name{labels}" -> value
};

Exposition parse_prometheus(const std::string& text) {
  Exposition result;
  std::istringstream lines(text);
  const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$)");
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# HELP ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name;
      words >> name;
      result.families[name].help = true;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      EXPECT_TRUE(result.families[name].help) << "TYPE before HELP for " << name;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      result.families[name].type = type;
      continue;
    }
    std::smatch match;
    EXPECT_TRUE(std::regex_match(line, match, sample)) << "not a sample line: " << line;
    if (match.empty()) continue;
    std::string family = match[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string tail = suffix;
      if (!result.families.count(family) && family.size() > tail.size() &&
          family.compare(family.size() - tail.size(), tail.size(), tail) == 0) {
        family = family.substr(0, family.size() - tail.size());
      }
    }
    EXPECT_TRUE(result.families.count(family) && !result.families[family].type.empty())
        << "sample without a declared family: " << line;
    const std::string value = match[3];
    result.samples[std::string(match[1]) + std::string(match[2])] =
        value == "+Inf" ? INFINITY : std::strtod(value.c_str(), nullptr);
  }
  return result;
}

// Counters and only counters end in _total; base units only.
void expect_prometheus_naming(const Exposition& metrics) {
  for (const auto& [name, family] : metrics.families) {
    const bool ends_total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(family.type == "counter", ends_total) << name << " (counters and only counters end in _total)";
    EXPECT_EQ(name.find("_ms"), std::string::npos) << name << ": base units only";
    EXPECT_EQ(name.find("_kb"), std::string::npos) << name << ": base units only";
  }
}

TEST(HttpServer, MetricsParseWithPrometheusNamesTypesAndCumulativeHistograms) {
  FakeRun run;
  run.recorder.frames_read = 12;
  run.recorder.frames_processed = 9;
  run.recorder.frames_dropped = 2;
  run.recorder.detections = 31;
  for (const double milliseconds : {0.5, 3.0, 8.0, 40.0, 40.0, 2000.0}) run.recorder.inference.record(milliseconds);
  run.recorder.capture_to_output.record(60);
  run.json->lines_lost = 4;
  {
    std::lock_guard lock(run.mutex);
    run.source.reconnects = 3;
    run.source.stalls = 1;
  }
  run.latest->publish(make_result(0));
  HttpServer server(loopback(), run.probe());
  httplib::Client client("127.0.0.1", server.port());
  const auto response = client.Get("/metrics");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  EXPECT_NE(response->get_header_value("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
  const Exposition metrics = parse_prometheus(response->body);

  const std::map<std::string, std::string> expected{{"detflow_frames_total", "counter"},
                                                    {"detflow_detections_total", "counter"},
                                                    {"detflow_source_reconnects_total", "counter"},
                                                    {"detflow_source_stalls_total", "counter"},
                                                    {"detflow_source_up", "gauge"},
                                                    {"detflow_frames_in_flight", "gauge"},
                                                    {"detflow_resident_memory_bytes", "gauge"},
                                                    {"detflow_output_lines_lost_total", "counter"},
                                                    {"detflow_events_dropped_total", "counter"},
                                                    {"detflow_stage_duration_seconds", "histogram"},
                                                    {"detflow_capture_to_output_seconds", "histogram"}};
  for (const auto& [name, type] : expected) {
    ASSERT_TRUE(metrics.families.count(name)) << name << " missing in\n" << response->body;
    EXPECT_EQ(metrics.families.at(name).type, type) << name;
  }
  expect_prometheus_naming(metrics);
  EXPECT_EQ(metrics.samples.at("detflow_frames_total{outcome=\"processed\"}"), 9);
  EXPECT_EQ(metrics.samples.at("detflow_frames_total{outcome=\"dropped\"}"), 2);
  EXPECT_EQ(metrics.samples.at("detflow_frames_in_flight"), 1);
  EXPECT_EQ(metrics.samples.at("detflow_detections_total"), 31);
  EXPECT_EQ(metrics.samples.at("detflow_source_reconnects_total"), 3);
  EXPECT_EQ(metrics.samples.at("detflow_source_up"), 1);
  EXPECT_EQ(metrics.samples.at("detflow_output_lines_lost_total"), 4);
  EXPECT_GT(metrics.samples.at("detflow_resident_memory_bytes"), 1e6);

  const std::string stage = "detflow_stage_duration_seconds_bucket{stage=\"inference\",le=\"";
  EXPECT_EQ(metrics.samples.at(stage + "0.001\"}"), 1);
  EXPECT_EQ(metrics.samples.at(stage + "0.005\"}"), 2);
  EXPECT_EQ(metrics.samples.at(stage + "0.01\"}"), 3);
  EXPECT_EQ(metrics.samples.at(stage + "0.05\"}"), 5);
  EXPECT_EQ(metrics.samples.at(stage + "1\"}"), 5);
  EXPECT_EQ(metrics.samples.at(stage + "2.5\"}"), 6);
  EXPECT_EQ(metrics.samples.at(stage + "+Inf\"}"), 6);
  EXPECT_EQ(metrics.samples.at("detflow_stage_duration_seconds_count{stage=\"inference\"}"), 6);
  EXPECT_NEAR(metrics.samples.at("detflow_stage_duration_seconds_sum{stage=\"inference\"}"), 2.0915, 1e-9);
  double previous = 0;
  for (const double bound : histogram_bounds_s()) {
    std::ostringstream key;
    key << "detflow_capture_to_output_seconds_bucket{le=\"" << bound << "\"}";
    ASSERT_TRUE(metrics.samples.count(key.str())) << key.str();
    EXPECT_GE(metrics.samples.at(key.str()), previous);
    previous = metrics.samples.at(key.str());
  }
  EXPECT_EQ(metrics.samples.at("detflow_capture_to_output_seconds_bucket{le=\"+Inf\"}"), 1);
}

// Issue 13: events dropped from a full MQTT outbox are a counter, 0 when there is no MQTT.
TEST(HttpServer, EventsDroppedIsExportedAndZeroWithoutMqtt) {
  FakeRun run;
  RunProbe probe = run.probe();
  EXPECT_EQ(parse_prometheus(prometheus_text(probe, 0)).samples.at("detflow_events_dropped_total"), 0);
  probe.events_dropped = [] { return std::int64_t{7}; };
  const Exposition metrics = parse_prometheus(prometheus_text(probe, 0));
  EXPECT_EQ(metrics.families.at("detflow_events_dropped_total").type, "counter");
  EXPECT_EQ(metrics.samples.at("detflow_events_dropped_total"), 7);
}

// Several streams: per-camera families labelled camera="NAME" after the unchanged totals.
TEST(HttpServer, SeveralStreamsAddPerCameraSeries) {
  FakeRun total, door, yard;
  door.recorder.frames_processed = 5;
  door.recorder.frames_dropped = 1;
  door.recorder.inference.record(3.0);
  door.json->lines_lost = 2;
  yard.recorder.frames_processed = 7;
  yard.recorder.capture_to_output.record(40);
  {
    std::lock_guard lock(yard.mutex);
    yard.source.state = SourceState::connecting;
    yard.source.reconnects = 4;
  }
  RunProbe probe = total.probe();
  EXPECT_EQ(prometheus_text(probe, 0).find("detflow_stream_"), std::string::npos) << "one stream: no per-camera family";
  probe.json_output = nullptr;
  probe.latest = door.latest;
  for (auto* run : {&door, &yard}) {
    const RunProbe own = run->probe();
    probe.streams.push_back({run == &door ? "door" : "yard", own.statistics, own.source_counters, own.recorder,
                             own.json_output, own.latest});
  }
  const std::string text = prometheus_text(probe, 0);
  const Exposition metrics = parse_prometheus(text);
  expect_prometheus_naming(metrics);
  EXPECT_EQ(metrics.samples.at("detflow_stream_frames_total{camera=\"door\",outcome=\"processed\"}"), 5);
  EXPECT_EQ(metrics.samples.at("detflow_stream_frames_total{camera=\"door\",outcome=\"dropped\"}"), 1);
  EXPECT_EQ(metrics.samples.at("detflow_stream_frames_total{camera=\"yard\",outcome=\"processed\"}"), 7);
  EXPECT_EQ(metrics.samples.at("detflow_stream_source_up{camera=\"door\"}"), 1);
  EXPECT_EQ(metrics.samples.at("detflow_stream_source_up{camera=\"yard\"}"), 0);
  EXPECT_EQ(metrics.samples.at("detflow_stream_source_state{camera=\"yard\",state=\"connecting\"}"), 1);
  EXPECT_EQ(metrics.samples.at("detflow_stream_source_reconnects_total{camera=\"yard\"}"), 4);
  EXPECT_EQ(metrics.samples.at("detflow_stream_output_lines_lost_total{camera=\"door\"}"), 2);
  EXPECT_EQ(metrics.families.at("detflow_stream_frames_per_second").type, "gauge");
  EXPECT_EQ(metrics.families.at("detflow_stream_stage_duration_seconds").type, "histogram");
  EXPECT_EQ(metrics.samples.at("detflow_stream_stage_duration_seconds_count{camera=\"door\",stage=\"inference\"}"), 1);
  EXPECT_EQ(metrics.samples.at("detflow_stream_capture_to_output_seconds_count{camera=\"yard\"}"), 1);
  // The totals stay: the JSON Lines losses summed over the streams.
  EXPECT_EQ(metrics.samples.at("detflow_output_lines_lost_total"), 2);
  EXPECT_TRUE(metrics.samples.count("detflow_frames_total{outcome=\"processed\"}"));

  const auto status = status_json(probe, 0);
  ASSERT_EQ(status["streams"].size(), 2u) << status.dump();
  EXPECT_EQ(status["streams"][1]["camera"], "yard");
  EXPECT_EQ(status["streams"][1]["state"], "connecting");
  EXPECT_EQ(status["streams"][1]["processed"], 7);

  // Readiness: a frame of any stream counts.
  EXPECT_FALSE(judge_health(probe).ready);
  yard.latest->publish(make_result(0));
  EXPECT_TRUE(judge_health(probe).ready) << judge_health(probe).reason;
}

// The combined source state: up only when every stream is.
TEST(HttpServer, CombinedSourceCountersSumAndJudgeTheState) {
  SourceCounters up, down, connecting;
  up.reconnects = 1;
  down.state = SourceState::down;
  down.reconnects = 2;
  down.last_error = "gone";
  connecting.state = SourceState::connecting;
  EXPECT_EQ(combine_source_counters({up, up}).state, SourceState::up);
  EXPECT_EQ(combine_source_counters({up, down}).state, SourceState::down);
  EXPECT_EQ(combine_source_counters({down, connecting}).state, SourceState::connecting);
  EXPECT_EQ(combine_source_counters({up, down}).reconnects, 3);
  EXPECT_EQ(combine_source_counters({up, down}).last_error, "gone");
}

TEST(LatencyRecorder, CountAtMostIsCumulativeAtTheBucketResolution) {
  LatencyRecorder recorder;
  for (int sample = 1; sample <= 100; ++sample) recorder.record(sample);  // 1..100 ms
  EXPECT_EQ(recorder.count_at_most(0.5), 0);
  // A bound inside a bucket (about 2 % wide) counts that whole bucket or none of it.
  EXPECT_NEAR(recorder.count_at_most(10), 10, 1);
  EXPECT_NEAR(recorder.count_at_most(49.5), 49, 1);
  EXPECT_EQ(recorder.count_at_most(100), 100);
  EXPECT_EQ(recorder.count_at_most(INFINITY), 100);
  EXPECT_EQ(recorder.count(), 100);
  EXPECT_DOUBLE_EQ(recorder.sum_ms(), 5050);
}

TEST(HttpServer, SnapshotDecodesAndStatusJsonDescribesTheRun) {
  FakeRun run;
  HttpServer server(loopback(), run.probe());
  httplib::Client client("127.0.0.1", server.port());
  EXPECT_EQ(client.Get("/snapshot.jpg")->status, 503);  // before the first frame
  run.latest->publish(make_result(7, 320, 240));
  const auto snapshot = client.Get("/snapshot.jpg");
  ASSERT_TRUE(snapshot);
  ASSERT_EQ(snapshot->status, 200);
  EXPECT_EQ(snapshot->get_header_value("Content-Type"), "image/jpeg");
  EXPECT_EQ(snapshot->get_header_value("X-Frame-Index"), "7");
  const std::vector<unsigned char> bytes(snapshot->body.begin(), snapshot->body.end());
  const cv::Mat image = cv::imdecode(bytes, cv::IMREAD_COLOR);
  ASSERT_FALSE(image.empty());
  EXPECT_EQ(image.cols, 320);
  EXPECT_EQ(image.rows, 240);
  // Annotated: the box outline is drawn where the detection is, over the flat background.
  const cv::Vec3b background = image.at<cv::Vec3b>(200, 300);
  const cv::Vec3b outline = image.at<cv::Vec3b>(60, 20);
  EXPECT_GT(cv::norm(cv::Vec3d(background) - cv::Vec3d(outline)), 40.0);
  // A second request for the same frame reuses the encoding.
  client.Get("/snapshot.jpg");
  EXPECT_EQ(run.latest->encodings(), 1);

  const auto status = client.Get("/status.json");
  ASSERT_TRUE(status);
  const auto json = nlohmann::json::parse(status->body);
  EXPECT_EQ(json["source"]["state"], "up");
  EXPECT_EQ(json["source"]["kind"], "rtsp");
  EXPECT_EQ(json["ready"], true);
  EXPECT_TRUE(json["latency_ms"]["stages"].contains("inference"));

  const auto page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("status.json"), std::string::npos);
  EXPECT_EQ(page->body.find("http://"), std::string::npos) << "the page must not load external assets";
  EXPECT_EQ(page->body.find("https://"), std::string::npos) << "the page must not load external assets";
}

TEST(HttpServer, TokenGuardsEverythingButTheProbes) {
  FakeRun run;
  HttpServer server(loopback(2, "s3cret"), run.probe());
  httplib::Client client("127.0.0.1", server.port());
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 503);
  EXPECT_EQ(client.Get("/metrics")->status, 401);
  EXPECT_EQ(client.Get("/")->status, 401);
  EXPECT_EQ(client.Get("/metrics?token=wrong")->status, 401);
  EXPECT_EQ(client.Get("/metrics?token=s3cret")->status, 200);
  client.set_bearer_token_auth("s3cret");
  EXPECT_EQ(client.Get("/metrics")->status, 200);
}

TEST(HttpServer, StuckStreamClientSkipsToTheNewestFrameAndNeverHoldsThePublisher) {
  FakeRun run;
  HttpServer server(loopback(), run.probe());
  run.latest->publish(make_noise_result(0));
  StreamReader reader(server.port());
  ASSERT_TRUE(reader.connected());
  const std::string head = reader.head();
  ASSERT_NE(head.find("200"), std::string::npos) << head;
  ASSERT_NE(head.find("multipart/x-mixed-replace"), std::string::npos) << head;
  EXPECT_EQ(reader.next_part(), 0);

  // The client stops reading; the graph keeps publishing 300 frames without waiting.
  constexpr int kFrames = 300;
  for (int index = 1; index <= kFrames; ++index) run.latest->publish(make_noise_result(index));
  // When the client reads again it reaches the newest frame, having skipped most of them
  // (what the kernel buffered while it paused comes first).
  int parts = 0;
  std::int64_t last = 0;
  while (last != kFrames && parts < kFrames) {
    last = reader.next_part();
    ASSERT_GE(last, 0) << "stream ended";
    ++parts;
  }
  EXPECT_EQ(last, kFrames);
  EXPECT_LT(parts, kFrames / 3) << "the stream replayed stale frames instead of the newest";
  EXPECT_LE(run.latest->encodings(), parts + 1);
}

TEST(HttpServer, StreamsBeyondMaxClientsGet503AndFreedSlotsAreReused) {
  FakeRun run;
  HttpServer server(loopback(1), run.probe());
  run.latest->publish(make_result(0));
  {
    StreamReader first(server.port());
    ASSERT_NE(first.head().find("200"), std::string::npos);
    EXPECT_EQ(first.next_part(), 0);
    EXPECT_EQ(server.preview_clients(), 1);
    httplib::Client client("127.0.0.1", server.port());
    const auto refused = client.Get("/stream.mjpg");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 503);
    EXPECT_EQ(client.Get("/metrics")->status, 200);  // short requests still served
  }
  // The closed stream's slot frees once the server notices (next frame or poll).
  for (int attempt = 0; attempt < 40 && server.preview_clients() > 0; ++attempt) {
    run.latest->publish(make_result(attempt + 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(server.preview_clients(), 0);
  StreamReader again(server.port());
  EXPECT_NE(again.head().find("200"), std::string::npos);
}

TEST(HttpServer, StreamsEndWhenTheRunEnds) {
  FakeRun run;
  HttpServer server(loopback(), run.probe());
  run.latest->publish(make_result(0));
  StreamReader reader(server.port());
  reader.head();
  EXPECT_EQ(reader.next_part(), 0);
  run.latest->close();
  EXPECT_EQ(reader.next_part(), -1);
  server.stop();
}

}  // namespace
}  // namespace detflow::service
