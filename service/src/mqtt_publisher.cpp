// The MQTT publisher: one thread owning the connection, the outbox in front of it. Paho's
// own offline buffering and automatic reconnect are off on purpose: the outbox is the only
// buffer (bounded, on disk, surviving crashes), and reconnecting here lets the status and
// counts be republished in a known order after every connect.
#include "detflow/service/mqtt_publisher.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <random>

#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include "detflow/error.h"

namespace detflow::service {

namespace {

constexpr auto status_poll_interval = std::chrono::milliseconds(500);
constexpr auto final_publish_timeout = std::chrono::milliseconds(1000);

bool valid_topic_text(const std::string& text) {
  if (text.empty()) return false;
  if (text.find_first_of("+#") != std::string::npos || text.front() == '/' || text.back() == '/') return false;
  return text.find("//") == std::string::npos;
}

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

std::string iso_time_now() {
  const auto now = std::chrono::system_clock::now();
  const auto milliseconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[96];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(milliseconds));
  return text;
}

void check_readable(const std::filesystem::path& path, const std::string& key) {
  if (path.empty()) return;
  std::ifstream file(path);
  if (!file) throw Error(key + " " + path.string() + ": cannot be read; expected a PEM file");
}

}  // namespace

std::string paho_server_uri(const std::string& url) {
  const auto accepted = "; accepted: mqtt://HOST[:PORT] or mqtts://HOST[:PORT]";
  std::string scheme;
  std::string rest;
  if (url.rfind("mqtt://", 0) == 0) {
    scheme = "tcp";
    rest = url.substr(7);
  } else if (url.rfind("mqtts://", 0) == 0) {
    scheme = "ssl";
    rest = url.substr(8);
  } else {
    throw Error("MQTT broker '" + url + "': unknown scheme" + accepted);
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos || rest.find('@') != std::string::npos) {
    throw Error("MQTT broker '" + url +
                "': expected a host and an optional port (credentials go in mqtt.username "
                "and mqtt.password_file)" +
                accepted);
  }
  std::string host = rest;
  std::string port = scheme == "ssl" ? "8883" : "1883";
  // "[v6::address]:port", "host:port" or "host".
  const auto bracket = rest.find(']');
  const auto colon = rest.rfind(':');
  if (rest.front() == '[') {
    if (bracket == std::string::npos) throw Error("MQTT broker '" + url + "': unclosed '['" + accepted);
    host = rest.substr(0, bracket + 1);
    if (bracket + 1 < rest.size()) {
      if (rest[bracket + 1] != ':') throw Error("MQTT broker '" + url + "': bad host or port" + accepted);
      port = rest.substr(bracket + 2);
    }
  } else if (colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    throw Error("MQTT broker '" + url + "': bad host or port" + accepted);
  }
  return scheme + "://" + host + ":" + port;
}

std::string topic_level(const std::string& text) {
  std::string level;
  for (const char c : text) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    if (keep) {
      level.push_back(c);
    } else if (!level.empty() && level.back() != '-') {
      level.push_back('-');
    }
  }
  while (!level.empty() && (level.back() == '-' || level.back() == '.')) level.pop_back();
  while (!level.empty() && (level.front() == '-' || level.front() == '.')) level.erase(level.begin());
  return level.empty() ? "camera" : level;
}

std::string resolve_mqtt_password(const std::string& literal, const std::filesystem::path& file,
                                  const std::string& env_name) {
  const int given = (literal.empty() ? 0 : 1) + (file.empty() ? 0 : 1) + (env_name.empty() ? 0 : 1);
  if (given > 1) {
    throw Error("mqtt.password, mqtt.password_file and mqtt.password_env exclude each other; set one");
  }
  if (!env_name.empty()) {
    const char* value = std::getenv(env_name.c_str());
    if (value == nullptr || *value == '\0') {
      throw Error("mqtt.password_env " + env_name + ": the environment variable is not set or empty");
    }
    return value;
  }
  if (!file.empty()) {
    std::ifstream stream(file);
    if (!stream) throw Error("mqtt.password_file " + file.string() + ": cannot be read");
    std::string line;
    std::getline(stream, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (line.empty()) throw Error("mqtt.password_file " + file.string() + ": the first line is empty");
    return line;
  }
  return literal;
}

// The Paho client with its callbacks. Callbacks run on Paho's thread: they only flip
// flags, acknowledge outbox records and wake the publisher thread.
class MqttPublisher::Client : public mqtt::iaction_listener {
 public:
  // `buffered_messages`: Paho's queue of publishes not yet written to the socket, which it
  // bounds even while connected; it must hold the whole in-flight window.
  Client(const std::string& server_uri, const std::string& client_id, int buffered_messages, Outbox& outbox)
      : client(server_uri, client_id, mqtt::create_options(MQTTVERSION_3_1_1, buffered_messages)), outbox_(outbox) {
    client.set_connection_lost_handler([this](const std::string& cause) {
      connected = false;
      {
        std::lock_guard lock(error_mutex);
        lost_cause = cause.empty() ? "connection lost" : one_line(cause);
      }
      outbox_.wake();
    });
  }

  // Delivery of one outbox record (its sequence is the token's user context).
  void on_success(const mqtt::token& token) override {
    outbox_.acknowledge(reinterpret_cast<std::uintptr_t>(token.get_user_context()));
  }
  // Not delivered on this connection; the record stays in flight until the publisher
  // requeues (at once here, or after the reconnect that follows a loss).
  void on_failure(const mqtt::token&) override {
    requeue_needed = true;
    outbox_.wake();
  }

  mqtt::async_client client;
  std::atomic<bool> connected{false};
  std::atomic<bool> requeue_needed{false};
  std::mutex error_mutex;
  std::string lost_cause;

 private:
  Outbox& outbox_;
};

MqttPublisher::MqttPublisher(MqttSettings settings) : settings_(std::move(settings)) {
  const std::string server_uri = paho_server_uri(settings_.url);
  if (!valid_topic_text(settings_.topic_prefix)) {
    throw Error("mqtt.topic_prefix '" + settings_.topic_prefix +
                "': accepted: topic levels separated by '/', without '+', '#' or empty levels");
  }
  if (settings_.camera.empty() || topic_level(settings_.camera) != settings_.camera) {
    throw Error("camera name '" + settings_.camera + "': accepted: letters, digits, '-', '_' and '.' (e.g. '" +
                topic_level(settings_.camera) + "')");
  }
  if (settings_.qos < 0 || settings_.qos > 2) {
    throw Error("mqtt.qos " + std::to_string(settings_.qos) + ": accepted: 0, 1 or 2");
  }
  if (settings_.keep_alive_s < 1) {
    throw Error("mqtt.keep_alive " + std::to_string(settings_.keep_alive_s) + ": accepted: at least 1 second");
  }
  if (settings_.max_in_flight < 1) settings_.max_in_flight = 1;
  if (settings_.cert_file.empty() != settings_.key_file.empty()) {
    throw Error("mqtt.cert_file and mqtt.key_file go together; set both or neither");
  }
  check_readable(settings_.ca_file, "mqtt.ca_file");
  check_readable(settings_.cert_file, "mqtt.cert_file");
  check_readable(settings_.key_file, "mqtt.key_file");
  if (settings_.client_id.empty()) settings_.client_id = "detflow-" + settings_.camera;

  outbox_ = std::make_unique<Outbox>(settings_.outbox);
  try {
    client_ = std::make_unique<Client>(server_uri, settings_.client_id,
                                       static_cast<int>(std::min<std::size_t>(settings_.max_in_flight + 64, 65535)),
                                       *outbox_);
  } catch (const mqtt::exception& error) {
    throw Error("MQTT broker '" + settings_.url + "': " + one_line(error.what()));
  }
  const auto recovered = outbox_->counters();
  if (recovered.pending > 0) {
    spdlog::info("mqtt: {} events from an earlier run wait in the outbox {}; they are sent first", recovered.pending,
                 settings_.outbox.directory.string());
  }
}

MqttPublisher::~MqttPublisher() { stop(std::chrono::milliseconds(0)); }

void MqttPublisher::set_status_provider(std::function<nlohmann::json()> provider) {
  status_provider_ = std::move(provider);
}

std::string MqttPublisher::events_topic() const { return settings_.topic_prefix + "/" + settings_.camera + "/events"; }
std::string MqttPublisher::counts_topic(const std::string& name) const {
  return settings_.topic_prefix + "/" + settings_.camera + "/counts/" + topic_level(name);
}
std::string MqttPublisher::status_topic() const { return settings_.topic_prefix + "/" + settings_.camera + "/status"; }
std::string MqttPublisher::detections_topic() const {
  return settings_.topic_prefix + "/" + settings_.camera + "/detections";
}

nlohmann::json MqttPublisher::online_status() const {
  nlohmann::json status = {{"status", "online"}, {"camera", settings_.camera}, {"time", iso_time_now()}};
  std::lock_guard lock(mutex_);
  if (last_status_fields_.is_object()) {
    for (const auto& [key, value] : last_status_fields_.items()) status[key] = value;
  }
  return status;
}

bool MqttPublisher::connect_once() {
  mqtt::connect_options options;
  options.set_clean_session(true);
  options.set_keep_alive_interval(settings_.keep_alive_s);
  options.set_connect_timeout(std::max<int>(
      1, static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(settings_.connect_timeout).count())));
  // Room above the event window for the status and counts messages, which Paho counts too.
  options.set_max_inflight(static_cast<int>(std::min<std::size_t>(settings_.max_in_flight + 64, 65535)));
  options.set_automatic_reconnect(false);
  if (!settings_.username.empty()) options.set_user_name(settings_.username);
  if (!settings_.password.empty()) options.set_password(settings_.password);
  const std::string will =
      nlohmann::json{{"status", "offline"}, {"camera", settings_.camera}, {"reason", "connection lost"}}.dump();
  options.set_will(mqtt::will_options(status_topic(), will, 1, true));
  if (settings_.url.rfind("mqtts://", 0) == 0) {
    mqtt::ssl_options ssl;
    if (!settings_.ca_file.empty()) ssl.set_trust_store(settings_.ca_file.string());
    if (!settings_.cert_file.empty()) ssl.set_key_store(settings_.cert_file.string());
    if (!settings_.key_file.empty()) ssl.set_private_key(settings_.key_file.string());
    ssl.set_enable_server_cert_auth(true);
    options.set_ssl(std::move(ssl));
  }
  try {
    auto token = client_->client.connect(options);
    if (!token->wait_for(settings_.connect_timeout + std::chrono::milliseconds(500))) {
      throw mqtt::exception(-1, "no answer within " + std::to_string(settings_.connect_timeout.count()) + " ms");
    }
  } catch (const mqtt::exception& error) {
    std::lock_guard lock(mutex_);
    counters_.last_error = one_line(error.what());
    ++counters_.connection_losses;
    return false;
  }
  client_->connected = true;
  client_->requeue_needed = false;
  on_connected();
  return true;
}

void MqttPublisher::on_connected() {
  // Deliveries of the previous connection may never be confirmed: send them again (same
  // event ids). Then the state a dashboard needs: online status and every count.
  outbox_->requeue_in_flight();
  {
    std::lock_guard lock(mutex_);
    ++counters_.connects;
    counters_.connected = true;
    for (const auto& [name, unused] : counts_) counts_to_send_.insert(name);
  }
  if (status_provider_) {
    std::lock_guard lock(mutex_);
    last_status_fields_ = status_provider_();
  }
  try {
    client_->client.publish(status_topic(), online_status().dump(), 1, true);
  } catch (const mqtt::exception&) {
    client_->connected = false;
  }
}

void MqttPublisher::start() {
  if (started_.exchange(true)) return;
  if (!connect_once()) {
    const std::string reason = counters().last_error;
    if (settings_.required) {
      throw Error("MQTT broker " + settings_.url + ": cannot connect: " + reason +
                  " (mqtt.required is true; set it false to run with the outbox filling)");
    }
    spdlog::warn("mqtt: cannot connect to {}: {}; events wait in the outbox {} and are sent when it is reachable",
                 settings_.url, reason, settings_.outbox.directory.string());
  } else {
    spdlog::info("mqtt: connected to {} as {}, topics {}/{}/...", settings_.url, settings_.client_id,
                 settings_.topic_prefix, settings_.camera);
  }
  thread_ = std::thread([this] { run(); });
}

void MqttPublisher::publish_event(const std::string& event_id, const std::string& payload) {
  outbox_->append(OutboxMessage{event_id, events_topic(), payload, settings_.qos, false});
}

void MqttPublisher::publish_counts(const std::string& name, std::string payload) {
  {
    std::lock_guard lock(mutex_);
    counts_[name] = std::move(payload);
    counts_to_send_.insert(name);
  }
  outbox_->wake();
}

void MqttPublisher::publish_detections(std::string payload) {
  {
    std::lock_guard lock(mutex_);
    if (!client_->connected) {
      ++counters_.detections_skipped;
      return;
    }
    if (!detections_.empty()) ++counters_.detections_skipped;  // replaced before it went out
    detections_ = std::move(payload);
  }
  outbox_->wake();
}

void MqttPublisher::publish_side_channels() {
  std::vector<std::pair<std::string, std::string>> counts;
  std::string detections;
  {
    std::lock_guard lock(mutex_);
    for (const auto& name : counts_to_send_) counts.emplace_back(name, counts_[name]);
    counts_to_send_.clear();
    detections.swap(detections_);
  }
  try {
    for (const auto& [name, payload] : counts) {
      client_->client.publish(counts_topic(name), payload, 1, true);
      std::lock_guard lock(mutex_);
      ++counters_.counts_published;
    }
    if (!detections.empty()) {
      client_->client.publish(detections_topic(), detections, 0, false);
      std::lock_guard lock(mutex_);
      ++counters_.detections_published;
    }
  } catch (const mqtt::exception& error) {
    // The connection went away mid-way: the counts go again after the reconnect.
    client_->connected = false;
    std::lock_guard lock(mutex_);
    counters_.last_error = one_line(error.what());
  }
}

void MqttPublisher::publish_outbox() {
  const auto in_flight = static_cast<std::size_t>(outbox_->counters().in_flight);
  if (in_flight >= settings_.max_in_flight) return;
  for (auto& record : outbox_->take(settings_.max_in_flight - in_flight)) {
    if (!client_->connected) break;  // the rest are requeued on reconnect
    try {
      const auto& message = record.message;
      void* context = reinterpret_cast<void*>(static_cast<std::uintptr_t>(record.sequence));
      client_->client.publish(message.topic, message.payload.data(), message.payload.size(), message.qos,
                              message.retained, context, *client_);
      // QoS 0 has no acknowledgement: handed to the socket is as delivered as it gets.
      if (message.qos == 0) outbox_->acknowledge(record.sequence);
    } catch (const mqtt::exception& error) {
      // Disconnected: the reconnect requeues. Still connected (Paho refused to queue more):
      // send the unsent part again on the next round.
      if (client_->client.is_connected()) {
        client_->requeue_needed = true;
      } else {
        client_->connected = false;
      }
      std::lock_guard lock(mutex_);
      counters_.last_error = one_line(error.what());
      break;
    }
  }
}

void MqttPublisher::run() {
  std::mt19937_64 random(std::random_device{}());
  auto backoff = settings_.reconnect_min;
  auto next_attempt = std::chrono::steady_clock::now();
  auto next_status_poll = std::chrono::steady_clock::now() + status_poll_interval;
  bool was_connected = client_->connected;

  while (true) {
    const auto now = std::chrono::steady_clock::now();
    const bool connected = client_->connected;
    if (stop_requested_) {
      const bool drained = outbox_->counters().pending == 0;
      if (!connected || drained || now >= drain_deadline_) break;
    }
    if (!connected) {
      if (was_connected) {
        // Just lost: note why, retry soon (the broker may only have restarted).
        was_connected = false;
        std::string cause;
        {
          std::lock_guard lock(client_->error_mutex);
          cause.swap(client_->lost_cause);
        }
        {
          std::lock_guard lock(mutex_);
          counters_.connected = false;
          ++counters_.connection_losses;
          if (cause.empty()) cause = counters_.last_error;  // a publish failed
          counters_.last_error = cause;
        }
        spdlog::warn("mqtt: lost the connection to {} ({}); reconnecting, events wait in the outbox", settings_.url,
                     cause);
        backoff = settings_.reconnect_min;
        next_attempt = now + backoff;
      }
      if (!stop_requested_ && now >= next_attempt) {
        if (connect_once()) {
          was_connected = true;
          backoff = settings_.reconnect_min;
          spdlog::info("mqtt: reconnected to {}", settings_.url);
          continue;
        }
        // Exponential backoff with jitter, so a fleet does not reconnect in lockstep after
        // a broker restart: the wait is uniform in [backoff / 2, backoff].
        std::uniform_int_distribution<std::int64_t> jitter(backoff.count() / 2, backoff.count());
        next_attempt = std::chrono::steady_clock::now() + std::chrono::milliseconds(jitter(random));
        backoff = std::min(settings_.reconnect_max, backoff * 2);
      }
      outbox_->sync_if_due();
      const auto wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt - now),
                                   std::chrono::milliseconds(10), std::chrono::milliseconds(200));
      outbox_->wait_for_records(wait, 0);  // only a wake() or the timeout ends this wait
      continue;
    }
    was_connected = true;
    if (client_->requeue_needed.exchange(false)) outbox_->requeue_in_flight();
    if (status_provider_ && now >= next_status_poll) {
      next_status_poll = now + status_poll_interval;
      nlohmann::json fields = status_provider_();
      bool changed = false;
      {
        std::lock_guard lock(mutex_);
        changed = fields != last_status_fields_;
        if (changed) last_status_fields_ = fields;
      }
      if (changed) {
        try {
          client_->client.publish(status_topic(), online_status().dump(), 1, true);
        } catch (const mqtt::exception&) {
          client_->connected = false;
          continue;
        }
      }
    }
    publish_side_channels();
    publish_outbox();
    outbox_->sync_if_due();
    outbox_->wait_for_records(std::chrono::milliseconds(100), settings_.max_in_flight);
  }
}

void MqttPublisher::stop(std::chrono::milliseconds drain) {
  if (stopped_.exchange(true)) return;
  drain_deadline_ = std::chrono::steady_clock::now() + drain;
  stop_requested_ = true;
  outbox_->wake();
  if (thread_.joinable()) thread_.join();
  if (client_->connected) {
    try {
      const std::string offline =
          nlohmann::json{{"status", "offline"}, {"camera", settings_.camera}, {"reason", "stopped"}}.dump();
      client_->client.publish(status_topic(), offline, 1, true)->wait_for(final_publish_timeout);
      client_->client.disconnect()->wait_for(final_publish_timeout);
    } catch (const mqtt::exception& error) {
      spdlog::debug("mqtt: disconnect: {}", error.what());
    }
    client_->connected = false;
  }
  outbox_->sync();
  const auto left = outbox_->counters();
  if (left.pending > 0) {
    spdlog::warn("mqtt: {} events not yet acknowledged stay in the outbox {} for the next run", left.pending,
                 settings_.outbox.directory.string());
  }
}

MqttCounters MqttPublisher::counters() const {
  MqttCounters counters;
  {
    std::lock_guard lock(mutex_);
    counters = counters_;
  }
  counters.connected = client_ && client_->connected;
  counters.outbox = outbox_->counters();
  counters.events_sent = counters.outbox.acknowledged;
  counters.events_dropped = counters.outbox.dropped;
  counters.events_pending = counters.outbox.pending;
  return counters;
}

}  // namespace detflow::service
