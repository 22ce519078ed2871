// `detflow events`: subscribe to a fleet's topics and show them. Uses Paho's consumer queue
// so everything happens on the caller's thread; reconnects (and subscribes again, the
// session being clean) when the broker goes away.
#include "detflow/service/mqtt_events_view.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include <mqtt/async_client.h>
#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "detflow/service/mqtt_publisher.h"

namespace detflow::service {

namespace {

struct Parsed {
  std::string camera;
  std::string kind;  // event, counts, status, detections; empty: not ours
  std::string name;  // counts: the line or zone
};

// PREFIX/CAMERA/events | counts/NAME | status | detections.
Parsed parse_topic(const std::string& prefix, const std::string& topic) {
  Parsed parsed;
  if (topic.rfind(prefix + "/", 0) != 0) return parsed;
  const std::string rest = topic.substr(prefix.size() + 1);
  const auto slash = rest.find('/');
  if (slash == std::string::npos) return parsed;
  parsed.camera = rest.substr(0, slash);
  const std::string what = rest.substr(slash + 1);
  if (what == "events") {
    parsed.kind = "event";
  } else if (what == "status" || what == "detections") {
    parsed.kind = what;
  } else if (what.rfind("counts/", 0) == 0) {
    parsed.kind = "counts";
    parsed.name = what.substr(7);
  }
  return parsed;
}

// What the table shows of one camera.
struct CameraRow {
  std::string status = "?";
  std::string source;
  std::int64_t events = 0;
  std::string last_event;
  std::map<std::string, std::string> counts;  // name -> "in 3 / out 1" or "occupancy 2"
};

std::string describe_event(const nlohmann::json& event) {
  std::ostringstream text;
  text << event.value("type", std::string("?"));
  if (event.contains("label") && event["label"].is_string()) text << " " << event["label"].get<std::string>();
  if (event.contains("track_id")) text << " #" << event["track_id"].dump();
  if (event.contains("line") && event["line"].is_string()) text << " line " << event["line"].get<std::string>();
  if (event.contains("zone") && event["zone"].is_string()) text << " zone " << event["zone"].get<std::string>();
  if (event.contains("direction") && event["direction"].is_string())
    text << " " << event["direction"].get<std::string>();
  if (event.contains("time") && event["time"].is_string()) text << " at " << event["time"].get<std::string>();
  return text.str();
}

std::string describe_counts(const nlohmann::json& counts) {
  std::ostringstream text;
  if (counts.contains("in") || counts.contains("out")) {
    text << "in " << counts.value("in", 0) << " / out " << counts.value("out", 0);
  } else if (counts.contains("occupancy")) {
    text << "occupancy " << counts.value("occupancy", 0) << " (entered " << counts.value("entered", 0) << ")";
  } else {
    text << counts.dump();
  }
  return text.str();
}

void draw_table(std::ostream& out, const std::map<std::string, CameraRow>& rows, std::int64_t messages) {
  out << "\033[H\033[2J";  // home and clear: redraw in place
  out << "detflow events: " << rows.size() << " camera" << (rows.size() == 1 ? "" : "s") << ", " << messages
      << " messages\n\n";
  std::size_t width = 6;
  for (const auto& [camera, unused] : rows) width = std::max(width, camera.size());
  out << std::string("camera") << std::string(width - 6 + 2, ' ') << "status   source      events  last event\n";
  for (const auto& [camera, row] : rows) {
    std::ostringstream line;
    line << camera << std::string(width - camera.size() + 2, ' ');
    line << row.status << std::string(row.status.size() < 9 ? 9 - row.status.size() : 1, ' ');
    line << row.source << std::string(row.source.size() < 12 ? 12 - row.source.size() : 1, ' ');
    const std::string events = std::to_string(row.events);
    line << std::string(events.size() < 6 ? 6 - events.size() : 0, ' ') << events << "  " << row.last_event;
    out << line.str() << '\n';
    for (const auto& [name, counts] : row.counts) out << std::string(width + 2, ' ') << name << ": " << counts << '\n';
  }
  out.flush();
}

mqtt::connect_options connect_options_for(const EventsViewOptions& options) {
  mqtt::connect_options connect;
  connect.set_clean_session(true);
  connect.set_keep_alive_interval(30);
  connect.set_connect_timeout(5);
  if (!options.username.empty()) connect.set_user_name(options.username);
  if (!options.password.empty()) connect.set_password(options.password);
  if (options.url.rfind("mqtts://", 0) == 0) {
    mqtt::ssl_options ssl;
    if (!options.ca_file.empty()) ssl.set_trust_store(options.ca_file.string());
    connect.set_ssl(std::move(ssl));
  }
  return connect;
}

}  // namespace

std::int64_t view_mqtt_events(const EventsViewOptions& options, std::ostream& out, const std::atomic<bool>& stop) {
  const std::string server = paho_server_uri(options.url);
  const std::string camera = options.camera.empty() ? "+" : options.camera;
  if (!options.camera.empty() && topic_level(options.camera) != options.camera) {
    throw Error("--camera '" + options.camera + "': accepted: letters, digits, '-', '_' and '.'");
  }
  std::vector<std::string> filters{options.topic_prefix + "/" + camera + "/events",
                                   options.topic_prefix + "/" + camera + "/counts/+",
                                   options.topic_prefix + "/" + camera + "/status"};
  if (options.detections) filters.push_back(options.topic_prefix + "/" + camera + "/detections");

  std::mt19937_64 random(std::random_device{}());
  const std::string client_id = "detflow-events-" + std::to_string(random() % 1000000000);
  mqtt::async_client client(server, client_id, mqtt::create_options(MQTTVERSION_3_1_1, 0));
  const mqtt::connect_options connect = connect_options_for(options);
  const auto subscribe_all = [&] {
    for (const auto& filter : filters) client.subscribe(filter, 1)->wait_for(std::chrono::seconds(5));
  };
  client.start_consuming();
  try {
    client.connect(connect)->wait();
    subscribe_all();
  } catch (const mqtt::exception& error) {
    throw Error("MQTT broker " + options.url + ": cannot connect: " + error.what());
  }
  if (options.on_subscribed) options.on_subscribed();

  const auto started = std::chrono::steady_clock::now();
  const auto deadline = options.timeout_s > 0
                            ? started + std::chrono::milliseconds(static_cast<std::int64_t>(options.timeout_s * 1000.0))
                            : std::chrono::steady_clock::time_point::max();
  std::map<std::string, CameraRow> rows;
  std::int64_t shown = 0;
  auto next_draw = started;
  bool dirty = options.table;
  auto next_reconnect = started;

  while (!stop && std::chrono::steady_clock::now() < deadline &&
         (options.max_messages == 0 || shown < options.max_messages)) {
    mqtt::const_message_ptr message;
    client.try_consume_message_for(&message, std::chrono::milliseconds(100));
    const auto now = std::chrono::steady_clock::now();
    if (!message) {
      if (!client.is_connected() && now >= next_reconnect) {
        next_reconnect = now + std::chrono::seconds(1);
        try {
          client.connect(connect)->wait_for(std::chrono::seconds(5));
          if (client.is_connected()) subscribe_all();
        } catch (const mqtt::exception&) {
          // The broker is still away; try again in a second.
        }
      }
    } else {
      const Parsed topic = parse_topic(options.topic_prefix, message->get_topic());
      if (!topic.kind.empty()) {
        ++shown;
        nlohmann::json payload = nlohmann::json::parse(message->get_payload_str(), nullptr, false);
        if (payload.is_discarded()) payload = message->get_payload_str();
        if (options.table) {
          CameraRow& row = rows[topic.camera];
          if (topic.kind == "event") {
            ++row.events;
            if (payload.is_object()) row.last_event = describe_event(payload);
          } else if (topic.kind == "status" && payload.is_object()) {
            row.status = payload.value("status", std::string("?"));
            row.source = payload.value("source", std::string());
          } else if (topic.kind == "counts" && payload.is_object()) {
            row.counts[topic.name] = describe_counts(payload);
          }
          dirty = true;
        } else {
          nlohmann::json line = {{"camera", topic.camera},
                                 {"kind", topic.kind},
                                 {"topic", message->get_topic()},
                                 {"retained", message->is_retained()}};
          if (topic.kind == "counts") line["name"] = topic.name;
          line["payload"] = std::move(payload);
          out << line.dump() << '\n';
          out.flush();
        }
      }
    }
    if (options.table && dirty && now >= next_draw) {
      draw_table(out, rows, shown);
      dirty = false;
      next_draw = now + std::chrono::milliseconds(250);
    }
  }
  if (options.table) draw_table(out, rows, shown);
  try {
    if (client.is_connected()) client.disconnect()->wait_for(std::chrono::seconds(1));
  } catch (const mqtt::exception&) {
    // Leaving anyway.
  }
  return shown;
}

}  // namespace detflow::service
