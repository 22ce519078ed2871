// detflow_mqtt_bench — events per second through the durable outbox and a real broker,
// against a bare Paho QoS 1 publisher with the same in-flight window measured in the same run.
//
//   detflow_mqtt_bench mqtt://127.0.0.1:1883 [EVENTS=20000] [PAYLOAD_BYTES=300] [FSYNC=interval]
//
// Prints the writer's cost per event (what the pipeline's sink thread pays: a disk append),
// events per second from the first publish to the last PUBACK for both, and their ratio.
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <string>
#include <thread>

#include <unistd.h>

#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include "detflow/service/mqtt_publisher.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t window = 256;

std::string payload_of(int index, std::size_t bytes) {
  std::string id = "bench-" + std::to_string(index);
  std::string payload = "{\"event_id\":\"" + id + "\",\"type\":\"line_cross\",\"pad\":\"";
  if (payload.size() + 2 < bytes) payload += std::string(bytes - payload.size() - 2, 'x');
  return payload + "\"}";
}

double bare_paho(const std::string& server, int events, std::size_t bytes) {
  mqtt::async_client client(server, "detflow-bench-bare", mqtt::create_options(MQTTVERSION_3_1_1, window + 16));
  mqtt::connect_options options;
  options.set_clean_session(true);
  options.set_max_inflight(static_cast<int>(window + 16));
  client.connect(options)->wait();
  std::deque<mqtt::delivery_token_ptr> in_flight;
  const auto started = Clock::now();
  for (int index = 1; index <= events; ++index) {
    if (in_flight.size() >= window) {
      in_flight.front()->wait();
      in_flight.pop_front();
    }
    const std::string payload = payload_of(index, bytes);
    in_flight.push_back(client.publish("bench/bare/events", payload.data(), payload.size(), 1, false));
  }
  for (auto& token : in_flight) token->wait();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  client.disconnect()->wait();
  return events / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: detflow_mqtt_bench mqtt://HOST:PORT [EVENTS] [PAYLOAD_BYTES] [always|interval|never]\n");
    return 2;
  }
  const std::string url = argv[1];
  const int events = argc > 2 ? std::stoi(argv[2]) : 20000;
  const std::size_t bytes = argc > 3 ? static_cast<std::size_t>(std::stoul(argv[3])) : 300;
  const std::string fsync = argc > 4 ? argv[4] : "interval";
  spdlog::set_level(spdlog::level::warn);

  const double bare = bare_paho(detflow::service::paho_server_uri(url), events, bytes);

  const auto outbox = std::filesystem::temp_directory_path() / ("detflow-mqtt-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(outbox);
  detflow::service::MqttSettings settings;
  settings.url = url;
  settings.camera = "bench";
  settings.max_in_flight = window;
  settings.outbox.directory = outbox;
  settings.outbox.fsync = detflow::service::parse_fsync_policy(fsync);
  double detflow_rate = 0;
  double append_us = 0;
  {
    detflow::service::MqttPublisher publisher(settings);
    publisher.start();
    const auto started = Clock::now();
    double appending_s = 0;
    for (int index = 1; index <= events; ++index) {
      const std::string payload = payload_of(index, bytes);
      const auto before = Clock::now();
      publisher.publish_event("bench-" + std::to_string(index), payload);
      appending_s += std::chrono::duration<double>(Clock::now() - before).count();
    }
    while (publisher.counters().events_sent < events) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    detflow_rate = events / std::chrono::duration<double>(Clock::now() - started).count();
    append_us = appending_s / events * 1e6;
    publisher.stop();
  }
  std::filesystem::remove_all(outbox);

  std::printf("events: %d of %zu bytes, QoS 1, %zu in flight, outbox fsync %s\n", events, bytes, window, fsync.c_str());
  std::printf("  bare Paho publisher (no outbox)   %10.0f events/s\n", bare);
  std::printf("  detflow outbox + publisher        %10.0f events/s\n", detflow_rate);
  std::printf("  ratio detflow / bare              %10.2f\n", detflow_rate / bare);
  std::printf("  writer cost per event (append)    %10.1f us\n", append_us);
  return 0;
}
