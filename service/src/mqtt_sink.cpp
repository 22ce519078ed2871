// The MQTT sink: FrameResults, tracking events and counts to the publisher. Serialisation
// happens only for what is actually published (detections are rate-limited before they are
// turned into JSON), so a run with MQTT costs the pipeline almost nothing per frame.
#include "detflow/service/mqtt_sink.h"

#include <cstdlib>
#include <map>

#include <unistd.h>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "detflow/error.h"

namespace detflow::service {

namespace {

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "detflow";
  std::string text = name;
  return text.substr(0, text.find('.'));  // the short name
}

std::string source_part(const std::string& uri) {
  if (uri.empty()) return "camera";
  if (uri.rfind("gst:", 0) == 0) return "gstreamer";
  if (uri.find_first_not_of("0123456789") == std::string::npos) return "camera" + uri;
  if (uri.rfind("/dev/video", 0) == 0) return "camera" + uri.substr(10);
  const auto scheme_end = uri.find("://");
  if (scheme_end != std::string::npos) {
    std::string rest = uri.substr(scheme_end + 3);
    const auto at = rest.find('@');  // never put credentials in a topic
    if (at != std::string::npos) rest = rest.substr(at + 1);
    const auto query = rest.find_first_of("?#");
    if (query != std::string::npos) rest = rest.substr(0, query);
    return rest;
  }
  const std::filesystem::path path(uri);
  const std::string stem = path.stem().string();
  return stem.empty() ? path.parent_path().filename().string() : stem;
}

}  // namespace

std::string default_camera_name(const std::string& source_uri) {
  return topic_level(host_name() + "-" + topic_level(source_part(source_uri)));
}

std::filesystem::path default_outbox_directory(const std::string& camera) {
  const char* state = std::getenv("XDG_STATE_HOME");
  if (state != nullptr && *state == '/') return std::filesystem::path(state) / "detflow" / "outbox" / camera;
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home == '/') {
    return std::filesystem::path(home) / ".local" / "state" / "detflow" / "outbox" / camera;
  }
  return std::filesystem::path("/var/tmp/detflow/outbox") / camera;
}

MqttSettings to_mqtt_settings(const MqttConfig& config, const std::string& source_uri) {
  MqttSettings settings;
  settings.url = config.url;
  paho_server_uri(settings.url);  // a bad URL fails here, before the model loads
  settings.camera = config.camera.empty() ? default_camera_name(source_uri) : config.camera;
  settings.client_id = config.client_id;
  settings.topic_prefix = config.topic_prefix;
  settings.username = config.username;
  settings.password = resolve_mqtt_password(config.password, config.password_file, config.password_env);
  settings.ca_file = config.ca_file;
  settings.cert_file = config.cert_file;
  settings.key_file = config.key_file;
  settings.keep_alive_s = config.keep_alive_s;
  settings.qos = config.qos;
  settings.required = config.required;
  settings.outbox.directory = config.outbox.empty() ? default_outbox_directory(settings.camera) : config.outbox;
  settings.outbox.max_bytes = static_cast<std::uint64_t>(config.outbox_bytes);
  settings.outbox.fsync = parse_fsync_policy(config.fsync);
  settings.outbox.fsync_interval =
      std::chrono::milliseconds(static_cast<std::int64_t>(config.fsync_interval_s * 1000.0 + 0.5));
  return settings;
}

MqttSink::MqttSink(MqttSettings settings, MqttSinkOptions options)
    : publisher_(std::make_unique<MqttPublisher>(std::move(settings))), options_(options) {}

MqttSink::~MqttSink() { finish(); }

void MqttSink::set_source_probe(std::function<SourceCounters()> probe) { source_probe_ = std::move(probe); }

std::string MqttSink::name() const {
  return "mqtt " + publisher_->settings().url + " (" + publisher_->settings().topic_prefix + "/" +
         publisher_->settings().camera + ")";
}

void MqttSink::open(const SourceInfo& source) {
  const std::string kind = source.kind;
  const bool live = source.live;
  auto probe = source_probe_;
  publisher_->set_status_provider([probe, kind, live] {
    nlohmann::json fields = {{"source_kind", kind}, {"live", live}};
    if (probe) {
      const SourceCounters counters = probe();
      fields["source"] = to_string(counters.state);
      fields["source_reconnects"] = counters.reconnects;
      if (!counters.last_error.empty()) fields["source_error"] = counters.last_error;
    }
    return fields;
  });
  publisher_->start();
  opened_ = true;
}

bool MqttSink::consume(const FrameResult& result) {
  // Tracking (when on): this frame's events in order, then the counts they changed.
  for (const auto& event : result.events) publish_event(event);
  if (result.counts != nullptr && !result.events.empty()) publish_counts(*result.counts);
  if (!options_.detections || !result.frame) return true;
  const auto now = Clock::now();
  if (now < next_detections_) return true;
  next_detections_ =
      now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / options_.detections_rate));
  const Frame& frame = *result.frame;
  nlohmann::json detections = nlohmann::json::array();
  for (const auto& detection : result.detections) {
    detections.push_back({{"box", {detection.x1, detection.y1, detection.x2, detection.y2}},
                          {"score", detection.score},
                          {"class", detection.class_id},
                          {"label", detection.label}});
  }
  nlohmann::json message = {{"camera", publisher_->settings().camera},
                            {"frame", frame.index},
                            {"pts_ms", frame.pts_ms >= 0 ? nlohmann::json(frame.pts_ms) : nlohmann::json()},
                            {"width", frame.image.cols},
                            {"height", frame.image.rows},
                            {"detections", std::move(detections)}};
  publisher_->publish_detections(message.dump());
  return true;
}

void MqttSink::publish_event(const track::Event& event) {
  publisher_->publish_event(event.event_id, track::to_json_line(event));
}

void MqttSink::publish_counts(const track::CountsSnapshot& counts) {
  const nlohmann::json all = track::to_json(counts);
  const auto publish_each = [&](const char* list, const char* kind) {
    if (!all.contains(list)) return;
    for (const auto& item : all[list]) {
      nlohmann::json message = item;
      const std::string name = item.value("name", std::string());
      message.erase("name");
      message[kind] = name;
      message["camera"] = publisher_->settings().camera;
      const std::string numbers = message.dump();
      auto& last = last_counts_[std::string(kind) + "/" + name];
      if (numbers == last) continue;
      last = numbers;
      message["frame"] = counts.frame;
      message["pts_ms"] = counts.pts_ms;
      publisher_->publish_counts(name, message.dump());
    }
  };
  publish_each("lines", "line");
  publish_each("zones", "zone");
}

void MqttSink::finish() {
  if (finished_) return;
  finished_ = true;
  publisher_->stop(opened_ ? options_.drain : std::chrono::milliseconds(0));
  const MqttCounters counters = publisher_->counters();
  if (opened_) {
    spdlog::info("mqtt: {} events sent, {} waiting in the outbox, {} dropped (outbox full)", counters.events_sent,
                 counters.events_pending, counters.events_dropped);
  }
}

std::unique_ptr<MqttSink> make_mqtt_sink(const MqttConfig& config, const std::string& source_uri) {
  if (config.url.empty()) return nullptr;
  MqttSinkOptions options;
  options.detections = config.detections;
  options.detections_rate = config.detections_rate;
  options.drain = std::chrono::milliseconds(static_cast<std::int64_t>(config.drain_s * 1000.0 + 0.5));
  return std::make_unique<MqttSink>(to_mqtt_settings(config, source_uri), options);
}

}  // namespace detflow::service
