// detflow/service/mqtt_sink.h — the MQTT publisher as one of the pipeline's sinks, and how
// the configuration's `mqtt` section becomes its settings.
//
// MqttSink owns an MqttPublisher (mqtt_publisher.h). open() makes the first connection
// attempt and starts the publisher thread; consume() never waits on the network (events go
// to the outbox on disk, detections to a one-slot buffer); finish() gives unsent events
// mqtt.drain seconds, publishes the offline status and disconnects, leaving what is unsent
// in the outbox for the next run.
//
// Events and counts: with tracking on, consume() publishes FrameResult::events in order and,
// on a frame with events, FrameResult::counts per line and zone (only those that changed;
// retained, and again after every reconnect). publish_event() / publish_counts() do the same
// for a caller that has events from elsewhere (call them from the sink thread, in order).
//
// Detections (mqtt.detections): one message per frame at most mqtt.detections_rate per
// second, the JSON Lines sink's object plus "camera":
//   {"camera": "door", "frame": 12, "pts_ms": 480.0, "width": 768, "height": 576,
//    "detections": [{"box": [x1, y1, x2, y2], "score": 0.91, "class": 0, "label": "person"}]}
//
// Thread-safety: as every Sink, called from one thread; set_source_probe() before open().
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "detflow/pipeline/config.h"
#include "detflow/pipeline/sink.h"
#include "detflow/pipeline/source.h"
#include "detflow/service/mqtt_publisher.h"
#include "detflow/track/event.h"

namespace detflow::service {

// The camera name used in topics when mqtt.camera is empty: "<hostname>-<source>", where
// <source> is a file's stem ("vtest"), "camera0" for camera 0 or /dev/video0, the URL's host
// and path for network sources, "gstreamer" for gst: pipelines; made topic-safe
// (topic_level()). Hostname first, so boards with the same camera do not collide.
std::string default_camera_name(const std::string& source_uri);

// The outbox folder when mqtt.outbox is empty: $XDG_STATE_HOME/detflow/outbox/<camera>, else
// $HOME/.local/state/detflow/outbox/<camera>, else /var/tmp/detflow/outbox/<camera>.
std::filesystem::path default_outbox_directory(const std::string& camera);

// The publisher's settings from the `mqtt` section: camera name resolved (default above),
// password resolved from the file or environment variable, outbox settings converted.
// Throws detflow::Error for a bad URL, an unreadable password file, an unset variable.
MqttSettings to_mqtt_settings(const MqttConfig& config, const std::string& source_uri);

struct MqttSinkOptions {
  bool detections = false;
  double detections_rate = 5;  // messages per second at most
  std::chrono::milliseconds drain{2000};
};

class MqttSink : public Sink {
 public:
  // Opens the outbox (may hold a previous run's events). Throws detflow::Error.
  MqttSink(MqttSettings settings, MqttSinkOptions options);
  ~MqttSink() override;

  // The source's state for the status topic: {"source": "up"|"connecting"|"down",
  // "source_reconnects": N, "source_error": "..."}. The function is called from the
  // publisher thread and must stay valid until finish() returns.
  void set_source_probe(std::function<SourceCounters()> probe);

  std::string name() const override;
  // Connects (or, when the broker is away and mqtt.required is false, warns once and keeps
  // trying). Throws detflow::Error when mqtt.required and the broker cannot be reached.
  void open(const SourceInfo& source) override;
  bool consume(const FrameResult& result) override;
  void finish() override;

  // One tracking event, to P/C/events through the outbox.
  void publish_event(const track::Event& event);
  // Every line and zone of `counts` whose numbers changed since the last call, retained.
  void publish_counts(const track::CountsSnapshot& counts);

  MqttPublisher& publisher() { return *publisher_; }

 private:
  std::unique_ptr<MqttPublisher> publisher_;
  MqttSinkOptions options_;
  std::function<SourceCounters()> source_probe_;
  std::map<std::string, std::string> last_counts_;  // name -> payload without the time stamp
  Clock::time_point next_detections_ = Clock::time_point::min();
  bool opened_ = false;
  bool finished_ = false;
};

// The sink for a run's configuration, or nullptr when mqtt.url is empty.
std::unique_ptr<MqttSink> make_mqtt_sink(const MqttConfig& config, const std::string& source_uri);

}  // namespace detflow::service
