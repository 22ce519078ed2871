// detflow/service/mqtt_publisher.h — events, counts, status and detections to an MQTT
// broker (Eclipse Paho MQTT C++), with every event going through the durable Outbox.
//
// Topics, for prefix P and camera C:
//   P/C/events             QoS mqtt.qos (1), one message per event, payload the event's JSON
//                          with its "event_id"; at least once: consumers drop duplicates by id.
//   P/C/counts/<name>      retained, QoS 1: the latest counts of one line or zone; every name
//                          is published again after each (re)connect, so a dashboard never
//                          keeps a number from before a broker restart.
//   P/C/status             retained, QoS 1: {"status": "online", ...} while connected, with
//                          the fields of the status provider (the source's state); the Last
//                          Will {"status": "offline", "reason": "connection lost"} when this
//                          process vanishes; {"status": "offline", "reason": "stopped"} on a
//                          clean stop.
//   P/C/detections         QoS 0, not retained: one frame's detections; only while connected
//                          (nothing is queued for it).
//
// Threads: publish_*() are called by the pipeline's sink thread and never wait on the
// network: events are appended to the outbox (a disk write), everything else is a slot
// that keeps only the latest value. One publisher thread (started by start()) connects,
// reconnects with exponential backoff and jitter, sends what the outbox holds in order
// (at most max_in_flight unacknowledged), and removes an event from the outbox only when
// its PUBACK arrives (the delivery token completes). Paho's callback thread only flags and
// acknowledges. Every member is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "detflow/service/outbox.h"

namespace detflow::service {

struct MqttSettings {
  std::string url;                       // mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (8883)
  std::string client_id;                 // empty: "detflow-" + camera
  std::string topic_prefix = "detflow";  // no '+', '#', empty levels
  std::string camera;                    // one topic level: letters, digits, '-', '_', '.'
  std::string username;                  // empty: anonymous
  std::string password;                  // the password or token itself (see resolve_mqtt_password)
  std::filesystem::path ca_file;         // mqtts: trusted CA (PEM); empty: the system's
  std::filesystem::path cert_file;       // mqtts: client certificate (PEM), with key_file
  std::filesystem::path key_file;
  int keep_alive_s = 30;
  int qos = 1;            // events: 0, 1 or 2
  bool required = false;  // start() throws when the first connection fails
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds reconnect_min{500};  // first retry after a loss; doubles up to max
  std::chrono::milliseconds reconnect_max{30000};
  std::size_t max_in_flight = 256;  // events sent and not yet acknowledged
  OutboxSettings outbox;
};

struct MqttCounters {
  bool connected = false;
  std::int64_t connects = 0;           // successful connections, the first included
  std::int64_t connection_losses = 0;  // a connection dropped, or a (re)connect attempt failed
  std::int64_t events_sent = 0;        // acknowledged by the broker and removed from the outbox
  std::int64_t events_dropped = 0;     // pushed out of a full outbox, oldest first
  std::int64_t events_pending = 0;     // in the outbox, not yet acknowledged
  std::int64_t counts_published = 0;
  std::int64_t detections_published = 0;
  std::int64_t detections_skipped = 0;  // disconnected when they came (QoS 0 is not queued)
  std::string last_error;               // the last connection problem, one line
  OutboxCounters outbox;
};

// Parses and checks `url`; returns the address Paho expects (tcp://HOST:PORT or
// ssl://HOST:PORT). Throws detflow::Error naming the URL and what is accepted.
std::string paho_server_uri(const std::string& url);

// A name fit for one topic level: characters other than letters, digits, '-', '_' and '.'
// become '-', runs of '-' collapse; "camera" when nothing is left.
std::string topic_level(const std::string& text);

// The password or token: the environment variable `env_name` when set, else the first line of
// `file` when set, else `literal`. Throws detflow::Error naming the variable or file when it
// is named but empty, missing or unreadable, or when more than one is set.
std::string resolve_mqtt_password(const std::string& literal, const std::filesystem::path& file,
                                  const std::string& env_name);

class MqttPublisher {
 public:
  // Checks the settings (URL, topics, QoS, TLS files exist) and opens the outbox (which may
  // hold events from a previous run: they are sent first). Throws detflow::Error. Does not
  // connect yet.
  explicit MqttPublisher(MqttSettings settings);
  ~MqttPublisher();  // stop() with no drain time when not stopped yet
  MqttPublisher(const MqttPublisher&) = delete;
  MqttPublisher& operator=(const MqttPublisher&) = delete;

  // Extra fields of the online status (e.g. {"source": "up", "reconnects": 0}); polled by the
  // publisher thread about twice a second, and the status is published again when they
  // change. Set it before start(); it must stay callable until stop() returns.
  void set_status_provider(std::function<nlohmann::json()> provider);

  // Tries the first connection (bounded by connect_timeout), then starts the publisher
  // thread. When the broker cannot be reached: with `required` throws detflow::Error (one
  // line: URL and reason); otherwise logs one warning and keeps retrying in the background
  // while the outbox fills.
  void start();

  // Queues one event (its JSON, including "event_id") on P/C/events. Durable once this
  // returns; never waits on the network. Throws detflow::Error only when the outbox cannot
  // write to its disk.
  void publish_event(const std::string& event_id, const std::string& payload);
  // The latest counts of one line or zone, retained on P/C/counts/<name>.
  void publish_counts(const std::string& name, std::string payload);
  // One frame's detections on P/C/detections (QoS 0); replaces one not yet sent.
  void publish_detections(std::string payload);

  // Sends what the outbox holds for up to `drain` while connected, publishes the offline
  // status, disconnects and joins the thread. Events still unsent stay in the outbox for the
  // next run. Idempotent.
  void stop(std::chrono::milliseconds drain = std::chrono::milliseconds(2000));

  MqttCounters counters() const;
  const MqttSettings& settings() const { return settings_; }
  std::string events_topic() const;
  std::string counts_topic(const std::string& name) const;
  std::string status_topic() const;
  std::string detections_topic() const;

 private:
  class Client;
  void run();
  bool connect_once();
  void on_connected();
  void publish_side_channels();
  void publish_outbox();
  nlohmann::json online_status() const;

  MqttSettings settings_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Client> client_;
  std::function<nlohmann::json()> status_provider_;
  std::thread thread_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
  std::chrono::steady_clock::time_point drain_deadline_;

  mutable std::mutex mutex_;                   // guards everything below
  std::map<std::string, std::string> counts_;  // latest payload per line/zone name
  std::set<std::string> counts_to_send_;
  std::string detections_;  // latest unsent detections payload; empty: none
  nlohmann::json last_status_fields_;
  MqttCounters counters_;
};

}  // namespace detflow::service
