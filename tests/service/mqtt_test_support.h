// mqtt_test_support.h — a real Mosquitto broker for tests, and a subscriber that collects.
//
// MosquittoBroker runs Debian's /usr/sbin/mosquitto on a free loopback port with a config
// file written into a temporary folder (persistence on, anonymous allowed unless a user and
// password are given), so it can be stopped and started again on the same port with its
// sessions and retained messages. Tests skip when mosquitto is not installed:
//   DETFLOW_REQUIRE_MOSQUITTO();
//
// Collector subscribes with a persistent session (clean session off, QoS 1) and reconnects
// by itself, so messages published while it was away from a restarted broker are still
// delivered to it. Thread-safety: Collector's accessors may be called while Paho's thread
// adds messages.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <sys/types.h>

#include <gtest/gtest.h>

#include "loopback.h"  // free_loopback_port

namespace detflow::test {

// The mosquitto executable, or empty when it is not installed.
std::filesystem::path mosquitto_executable();

#define DETFLOW_REQUIRE_MOSQUITTO()                                                                     \
  if (::detflow::test::mosquitto_executable().empty())                                                  \
  GTEST_SKIP() << "mosquitto is not installed (apt-get install mosquitto mosquitto-clients); the MQTT " \
                  "tests need a real broker"

class MosquittoBroker {
 public:
  // Writes the configuration; does not start. With `user` set, only that user and password
  // are accepted (mosquitto_passwd writes the password file).
  explicit MosquittoBroker(std::string user = {}, std::string password = {});
  ~MosquittoBroker();  // stops it

  // Starts and waits (up to 5 s) until the port accepts connections; fails the test otherwise.
  void start();
  // SIGTERM (the broker saves its persistence file) and wait.
  void stop();
  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }

 private:
  std::filesystem::path directory_;
  std::filesystem::path config_;
  int port_ = 0;
  pid_t pid_ = -1;
};

struct ReceivedMessage {
  std::string topic;
  std::string payload;
  bool retained = false;
  std::chrono::steady_clock::time_point at;
};

class Collector {
 public:
  // Connects to `url` (waits up to 5 s) and subscribes to `filter` with QoS 1.
  Collector(const std::string& url, const std::string& filter);
  ~Collector();

  std::vector<ReceivedMessage> messages() const;
  std::vector<ReceivedMessage> on_topic(const std::string& topic) const;
  // Waits until `done(messages())` is true or `timeout` passes; returns the last verdict.
  bool wait_until(const std::function<bool(const std::vector<ReceivedMessage>&)>& done,
                  std::chrono::milliseconds timeout) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace detflow::test
