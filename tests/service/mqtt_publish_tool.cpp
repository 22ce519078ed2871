// mqtt_publish_tool — a process the MQTT tests can kill: the publisher with its outbox,
// publishing numbered events.
//
//   mqtt_publish_tool URL OUTBOX CAMERA COUNT MODE [ID_PREFIX]
//     MODE kill   queue COUNT events (start() is not required to connect), print "queued",
//                 then SIGKILL itself: nothing is flushed or closed.
//     MODE hold   connect, queue COUNT events, print "ready" once they are acknowledged (or
//                 after 10 s), then wait to be killed (Last Will tests).
//     MODE drain  connect, queue COUNT events, stop() with 10 s to drain, print the counters
//                 as "sent N pending N dropped N", exit 0.
// Event ids are ID_PREFIX-<n> (n from 1; ID_PREFIX defaults to "e"); payloads are
// {"event_id": ..., "type": "line_cross", "n": n}.
#include <csignal>
#include <iostream>
#include <string>
#include <thread>

#include <unistd.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "detflow/service/mqtt_publisher.h"

int main(int argc, char** argv) {
  if (argc < 6) {
    std::cerr << "usage: mqtt_publish_tool URL OUTBOX CAMERA COUNT kill|hold|drain [ID_PREFIX]\n";
    return 2;
  }
  using namespace detflow::service;
  spdlog::set_default_logger(spdlog::stderr_logger_mt("mqtt_publish_tool"));  // stdout is for the test
  MqttSettings settings;
  settings.url = argv[1];
  settings.outbox.directory = argv[2];
  settings.outbox.fsync = FsyncPolicy::never;
  settings.camera = argv[3];
  settings.connect_timeout = std::chrono::milliseconds(2000);
  settings.reconnect_min = std::chrono::milliseconds(100);
  settings.reconnect_max = std::chrono::milliseconds(500);
  const int count = std::stoi(argv[4]);
  const std::string mode = argv[5];
  const std::string prefix = argc > 6 ? argv[6] : "e";
  try {
    MqttPublisher publisher(settings);
    publisher.start();
    for (int index = 1; index <= count; ++index) {
      const std::string id = prefix + "-" + std::to_string(index);
      publisher.publish_event(id, nlohmann::json{{"event_id", id}, {"type", "line_cross"}, {"n", index}}.dump());
    }
    if (mode == "kill") {
      std::cout << "queued" << std::endl;
      ::kill(::getpid(), SIGKILL);
    }
    if (mode == "hold") {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (publisher.counters().events_pending > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      std::cout << "ready" << std::endl;
      while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    publisher.stop(std::chrono::seconds(10));
    const auto counters = publisher.counters();
    std::cout << "sent " << counters.events_sent << " pending " << counters.events_pending << " dropped "
              << counters.events_dropped << std::endl;
    return 0;
  } catch (const detflow::Error& error) {
    std::cerr << "mqtt_publish_tool: " << error.what() << std::endl;
    return 2;
  }
}
