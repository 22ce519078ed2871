// detflow/pipeline/config.h — the run configuration: YAML files, command-line overrides,
// and the pipeline's settings made from them.
//
// One key registry (config_keys()) lists every key with its type, default, accepted values
// and a one-line description. The same table drives loading YAML, setting a key from the
// command line, validation, `detflow run --print-config` and the help text, so they can
// never disagree. Keys are "section.name"; the sections are listed by config_sections().
// A YAML file may set any subset; missing keys keep their current value (the default, or
// what an earlier file set). Relative paths are relative to the current directory, not to
// the file.
//
// Errors (detflow::Error, one line, starting with the origin: "config FILE" or the
// command-line flag): unknown section (lists the sections), unknown key (lists the known
// keys of its section), invalid value (names the key and value and says what is accepted),
// malformed YAML (with line and column).
//
// Several cameras in one process: a top-level `sources:` list of named streams (StreamConfig)
// instead of source.uri. Each entry has a name (unique; letters, digits, '-', '_', '.') and a
// uri, and may set source.* keys (flat: `mode: live`), `analytics:` and `sinks:` (video, json,
// mot, events, images) for itself, validated by the same registry. Every other key is shared.
// Top-level output paths may hold `{camera}`, replaced by each stream's name; an output path
// two streams would share is an error (to_stream_settings). A later file's `sources:` replaces
// an earlier one's. `sources:` and source.uri exclude each other.
//
// Config is a plain value; the registry is immutable and safe to read from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detflow/inference/engine.h"
#include "detflow/pipeline/detector.h"
#include "detflow/pipeline/engine_verify.h"
#include "detflow/pipeline/pipeline.h"
#include "detflow/pipeline/sinks.h"
#include "detflow/pipeline/source.h"
#include "detflow/track/analytics.h"
#include "detflow/track/tracker.h"

namespace detflow {

struct EngineConfig {
  std::string backend = "auto";        // auto | onnxruntime | opencv
  std::string target = "cpu";          // cpu | opencl | opencl_fp16 | an ONNX Runtime provider
  std::vector<std::string> providers;  // ONNX Runtime providers in preference order; empty: {target, cpu}
  int workers = 0;                     // inference workers (engine instances); 0: resolve_engine_layout
  int threads = 0;                     // intra-op threads per worker; 0: cores / workers (at least 1)
  // A non-ONNX-Runtime engine checked against ONNX Runtime on the first frame (engine_verify.h):
  // warn logs one warning when they differ, strict refuses to run, off skips the check.
  VerifyMode verify = VerifyMode::warn;
};

// How often the detector runs (detection.* keys).
struct DetectionConfig {
  int interval = 1;  // [1, 1000]: every N-th frame; > 1 needs tracking (validate_for_run)
};

struct PipelineConfig {
  int max_in_flight = 0;  // 0: workers for live sources, workers + 1 for files; at detection interval N, (workers - 1)
                          // x N + 1 (+ 1 for files), at most 4 per worker (+ 1)
  std::int64_t max_frames = 0;  // 0: no limit
  double stats_interval_s = 0;  // 0: statistics only at the end
  bool progress = true;
};

// The HTTP endpoint (detflow_service): health, metrics, preview and status page.
struct HttpConfig {
  std::string listen;                // "PORT" (loopback), "ADDR:PORT" or "[V6]:PORT"; empty: no endpoint
  std::filesystem::path token_file;  // bearer token (first line); empty: DETFLOW_HTTP_TOKEN, else none
  int max_clients = 4;               // preview streams at once; more get 503
  int jpeg_quality = 80;             // snapshot and MJPEG preview quality
  double preview_fps = 15;           // frames per second per MJPEG stream at most
};

// Events over MQTT (detflow_service: the publisher and its durable outbox).
struct MqttConfig {
  std::string url;                       // mqtt://HOST[:PORT] or mqtts://HOST[:PORT]; empty: no MQTT
  std::string client_id;                 // empty: "detflow-" + camera
  std::string topic_prefix = "detflow";  // topics: PREFIX/CAMERA/{events,counts/NAME,status,detections}
  std::string camera;                    // empty: HOSTNAME-SOURCE (see default_camera_name in service)
  std::string username;                  // empty: anonymous
  std::string password;                  // discouraged (visible in files); prefer password_file/_env
  std::filesystem::path password_file;   // first line is the password or token
  std::string password_env;              // name of an environment variable holding it
  std::filesystem::path ca_file;         // mqtts: CA certificate (PEM); empty: the system's
  std::filesystem::path cert_file;       // mqtts: client certificate (PEM)
  std::filesystem::path key_file;        // mqtts: client key (PEM)
  int keep_alive_s = 30;
  int qos = 1;                             // events
  bool required = false;                   // true: no broker at start fails the run
  bool detections = false;                 // per-frame detections on PREFIX/CAMERA/detections (QoS 0)
  double detections_rate = 5;              // at most this many detection messages per second
  std::filesystem::path outbox;            // empty: $XDG_STATE_HOME (~/.local/state)/detflow/outbox/CAMERA
  std::int64_t outbox_bytes = 64ll << 20;  // bound on unsent events on disk; the oldest go first
  std::string fsync = "interval";          // always | interval | never
  double fsync_interval_s = 1;
  double drain_s = 2;  // at the end of a run: wait this long for unsent events
};

// Objects over time (detflow_track): the tracker and the line/zone analytics on its tracks.
// Cross-key checks (e.g. low <= high score threshold, polygons) run when a Tracker/Analytics is
// built from these (TrackerSettings::validate, AnalyticsSettings::validate).
struct TrackingConfig {
  bool enabled = false;                // tracking.enabled (--track); analytics need it
  track::TrackerSettings tracker;      // tracking.* keys
  track::AnalyticsSettings analytics;  // analytics.* keys
};

// One entry of `sources:`.
struct StreamConfig {
  std::string name;  // unique within the list: labels statistics and metrics, {camera}, the MQTT camera
  std::string uri;   // as source.uri
  // The keys this stream sets for itself, in the order given: source.* (not uri), analytics.*
  // and sinks.{video,json,mot,events,images}, each with its value as YAML text (the form
  // config_value() prints). Applied over the top-level values by stream_config().
  std::vector<std::pair<std::string, std::string>> overrides;

  bool operator==(const StreamConfig&) const = default;
};

struct Config {
  SourceSettings source;
  std::vector<StreamConfig> sources;  // several named streams; empty: the one stream of source.uri
  ModelSettings model;                // only the keys in the registry are read or written
  DetectionConfig detection;
  EngineConfig engine;
  PipelineConfig pipeline;
  SinkSettings sinks;                // video, json, images, display
  std::filesystem::path stats_json;  // key sinks.stats_json: Statistics::to_json() after the run
  HttpConfig http;
  MqttConfig mqtt;
  TrackingConfig tracking;
};

// One row of the key registry.
struct ConfigKey {
  std::string name;           // "model.conf"
  std::string type;           // "text", "path", "integer", "number", "boolean", "choice", "list"
  std::string default_value;  // as YAML text, e.g. "0.25", "null", "auto", "[]"
  std::string accepted;       // e.g. "0 to 1, or null (the family's default)"
  std::string description;    // one line
};

// Every key, grouped by section in a fixed order.
const std::vector<ConfigKey>& config_keys();
// "source", "model", "detection", "engine", "pipeline", "sinks", "http", "mqtt", "tracking",
// "analytics".
const std::vector<std::string>& config_sections();

// Applies a YAML file over `config`.
void merge_config_file(Config& config, const std::filesystem::path& file);
// Applies YAML text over `config`; `origin` starts error messages (e.g. "config camera.yaml").
void merge_config_text(Config& config, std::string_view yaml, std::string_view origin);
// Defaults, then `file`.
Config load_config(const std::filesystem::path& file);

// Sets one key from text as typed on a command line. Lists are comma separated; "null"
// resets a key that accepts null. `origin` starts error messages (e.g. "--conf").
void set_config_value(Config& config, std::string_view key, std::string_view value, std::string_view origin);
// The key's current value as YAML text (what --print-config shows).
std::string config_value(const Config& config, std::string_view key);

// Every key and value as YAML, each preceded by a comment with its description and what it
// accepts, then the `sources:` list when there is one. Loading the result gives back an
// equal configuration.
std::string config_to_yaml(const Config& config);
// The registry as a table (key, default, accepted, description) for help texts.
std::string config_help();

// Checks that need several keys or the whole configuration before a run: a source and a
// model are set, workers x threads is sane, outputs, analytics and detection.interval > 1
// have tracking (for every stream, with its own keys), no output path is shared by two
// streams, `sources:` and source.uri are not both set. Throws detflow::Error.
void validate_for_run(const Config& config);

// Intra-op threads per worker after resolving 0: max(1, cores / workers).
int resolved_threads(const Config& config);

// Resolves engine.workers = 0 for the source actually opened. Files: one worker per core,
// each with one intra-op thread (throughput: on 2 cores 114 FPS against 60 for one worker
// with two threads, whose spinning threads compete with the other stages); with threads
// given, as many workers as fit the cores. Live sources: one worker with every core (the
// shortest inference, so the lowest latency). Explicit workers are kept. `cores` 0 means
// this machine's hardware threads.
Config resolve_engine_layout(Config config, bool live_source, int cores = 0);

// The pipeline's types.
SourceSettings to_source_settings(const Config& config);
ModelSettings to_model_settings(const Config& config);
EngineOptions to_engine_options(const Config& config);  // threads resolved; input size from model.*
PipelineSettings to_pipeline_settings(const Config& config);
SinkSettings to_sink_settings(const Config& config);

// What one stream of a run needs: its source, its outputs and its options (pipeline.h).
struct StreamSettings {
  std::string name;  // "" for the single stream of source.uri
  SourceSettings source;
  SinkSettings sinks;  // json_counters and style left as the top-level ones
  StreamOptions options;
};

// The configuration `stream` runs with: `config` without its sources, source.uri = the
// stream's uri, the stream's overrides applied, and `{camera}` in every sinks path replaced
// by its name. Throws detflow::Error for an override the registry refuses.
Config stream_config(const Config& config, const StreamConfig& stream);
// One StreamSettings per entry of `sources:` in order, or one (named "") made from the
// top-level keys when the list is empty. Throws detflow::Error naming the key, the path and
// both streams when two streams would write the same output file or folder (a top-level
// path without {camera}, or two equal per-stream paths).
std::vector<StreamSettings> to_stream_settings(const Config& config);

}  // namespace detflow
