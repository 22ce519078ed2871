// detflow/bench/feature_cost.h — what tracking, the MJPEG preview and MQTT cost the pipeline
// (`detflow bench --with tracking,preview,mqtt`).
//
// The harness (harness.cpp) runs the plain pipeline and the pipeline with each feature on,
// interleaved over several rounds, each run in a child process of its own with the same
// frames, workers and threads, and reports the median FPS ratio feature / plain. This file
// holds what a child attaches to its Pipeline for one feature, the same library calls
// `detflow run` makes (apps/run_command.cpp):
//
//   tracking   PipelineSettings::tracking, default TrackerSettings, analytics with the lines
//              given (two lines across the frame by default)
//   preview    service::LatestFrame + make_preview_sink + an HttpServer on 127.0.0.1 (free
//              port) with three clients reading /stream.mjpg: two read as fast as they can,
//              one reads 16 bytes every half second (the server drops it after its write
//              timeout and it connects again)
//   mqtt       tracking and lines as above, plus service::make_mqtt_sink to a broker (the
//              URL given, or a Mosquitto the bench starts: LocalBroker), QoS 1, outbox in a
//              temporary folder
//   intervalN  tracking and lines with PipelineSettings::detection_interval = N (the detector
//              on every N-th frame, the tracker predicting the rest), when this build's
//              pipeline has that field (detection_interval_available())
//
// Thread-safety: FeatureRun is used by the one thread running a bench mode; its preview
// clients run on threads of their own, joined by finish(). LocalBroker: one thread.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "detflow/pipeline/pipeline.h"
#include "detflow/pipeline/sink.h"
#include "detflow/track/analytics.h"

namespace detflow::bench {

// True when PipelineSettings has `detection_interval` (the intervalN features need it).
bool detection_interval_available();

// "tracking,preview,mqtt" -> {"tracking", "preview", "mqtt"}: known names (tracking, preview,
// mqtt, interval2, interval3), each once, in the order given. Throws detflow::Error naming an
// unknown or repeated name, or intervalN when detection_interval_available() is false.
std::vector<std::string> parse_feature_list(const std::string& text);

// Whether the feature turns tracking (and the lines) on.
bool feature_uses_tracking(const std::string& feature);

// Two vertical lines across a width x height frame at 1/3 and 2/3 of its width, top to
// bottom: "left" and "right".
std::vector<track::LineSettings> default_bench_lines(int width, int height);

// What a child needs to switch one feature on.
struct FeatureSetup {
  std::string feature;                     // one of parse_feature_list()'s names; empty: plain
  std::vector<track::LineSettings> lines;  // analytics lines for the tracking features
  std::string mqtt_url;                    // mqtt: the broker
  std::filesystem::path work_directory;    // mqtt: the outbox goes below it (removed after)
  std::string source_uri;                  // mqtt: names the camera in topics
};

// One feature attached to one Pipeline run, in the child. Call prepare() before building the
// Pipeline, start() after building it and before run(), finish() after run() returns.
class FeatureRun {
 public:
  explicit FeatureRun(FeatureSetup setup);
  ~FeatureRun();  // stops clients and servers still running
  FeatureRun(const FeatureRun&) = delete;
  FeatureRun& operator=(const FeatureRun&) = delete;

  // Settings and sinks for the feature (tracking, analytics, preview and MQTT sinks).
  // Throws detflow::Error for a bad MQTT URL.
  void prepare(PipelineSettings& settings, std::vector<std::unique_ptr<Sink>>& sinks);
  // Serves the preview and connects its clients (waits up to 3 s for all three); hands the
  // source's state to the MQTT sink. `pipeline` must outlive finish().
  void start(Pipeline& pipeline);
  // Stops the clients and the server; the feature's own numbers: preview clients' frames,
  // bytes and reconnections; MQTT events acknowledged, pending and dropped.
  nlohmann::json finish(double elapsed_s);

 private:
  struct Preview;
  FeatureSetup setup_;
  std::unique_ptr<Preview> preview_;
  Sink* mqtt_sink_ = nullptr;  // owned by the Pipeline
  std::filesystem::path outbox_directory_;
};

// A Mosquitto broker for the mqtt feature when no --mqtt URL is given: Debian's
// /usr/sbin/mosquitto on a free loopback port with a temporary configuration (anonymous, no
// persistence, no log), dying with this process (PR_SET_PDEATHSIG) and stopped (SIGTERM) by
// the destructor.
class LocalBroker {
 public:
  // Starts it and waits up to 5 s until it accepts connections. Throws detflow::Error naming
  // the executable when it cannot be started.
  explicit LocalBroker(const std::filesystem::path& executable);
  ~LocalBroker();
  LocalBroker(const LocalBroker&) = delete;
  LocalBroker& operator=(const LocalBroker&) = delete;

  std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }

 private:
  std::filesystem::path directory_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// The Mosquitto executable (/usr/sbin/mosquitto, /usr/bin/mosquitto), empty when missing.
std::filesystem::path find_mosquitto();

}  // namespace detflow::bench
