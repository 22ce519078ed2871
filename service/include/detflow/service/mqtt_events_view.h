// detflow/service/mqtt_events_view.h — `detflow events`: a subscriber that shows what a
// fleet publishes (events, counts, status of one camera or all) as JSON Lines or a table.
//
// JSON Lines, one object per message received, in arrival order:
//   {"camera": "door", "kind": "event", "topic": "detflow/door/events", "retained": false,
//    "payload": {...the event...}}
// kind is "event", "counts" (with "name": the line or zone), "status" or "detections";
// payloads that are not JSON are given as strings. Retained messages (counts, status) arrive
// first, when subscribing.
// The table redraws at most four times a second: one row per camera with its status, source
// state, events received, the last event, and each line's in/out or zone's occupancy.
//
// Thread-safety: view_mqtt_events() runs on the caller's thread until `stop` becomes true,
// max_messages were shown or timeout passed; `stop` may be set from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>

namespace detflow::service {

struct EventsViewOptions {
  std::string url;  // mqtt://HOST[:PORT] or mqtts://HOST[:PORT]
  std::string topic_prefix = "detflow";
  std::string camera;       // empty: every camera
  bool table = false;       // a live table instead of JSON Lines
  bool detections = false;  // also the per-frame detections topic
  std::string username;
  std::string password;
  std::filesystem::path ca_file;
  std::int64_t max_messages = 0;  // stop after this many; 0: no limit
  double timeout_s = 0;           // stop after this long; 0: no limit
  // Called once on the viewer's thread when the first subscriptions are in place (what a
  // caller that publishes next, such as a test, waits for).
  std::function<void()> on_subscribed;
};

// Subscribes and prints until stopped. Throws detflow::Error (one line) when the URL is bad
// or the broker cannot be reached at start; reconnects by itself later. Returns the number
// of messages shown.
std::int64_t view_mqtt_events(const EventsViewOptions& options, std::ostream& out, const std::atomic<bool>& stop);

}  // namespace detflow::service
