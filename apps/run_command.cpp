// `detflow run`: configuration files, then flags, to a checked configuration; every input
// and output checked before the model loads; then one Pipeline run with statistics.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "detflow/error.h"
#include "detflow/pipeline/config.h"
#include "detflow/pipeline/detector.h"
#include "detflow/pipeline/engine_verify.h"
#include "detflow/pipeline/pipeline.h"
#include "detflow/pipeline/sinks.h"
#include "detflow/pipeline/source.h"
#include "detflow/service/http_server.h"
#include "detflow/service/mqtt_sink.h"
#include "detflow/service/preview.h"
#include "detflow/service/run_probe.h"
#include "detflow/service/systemd_notify.h"
#include "shutdown.h"

namespace detflow::app {

namespace {

// A flag that sets one configuration key. Values are kept as text and applied through the
// key registry, so a flag and the same key in YAML are validated identically.
struct KeyFlag {
  std::string flag;  // "--conf"
  std::string key;   // "model.conf"
  std::string value;
  CLI::Option* option = nullptr;
};

struct RunOptions {
  std::vector<std::string> config_files;
  std::vector<std::string> sources;  // --source, repeatable: several make streams cam0, cam1, ...
  std::deque<KeyFlag> key_flags;     // a deque: CLI11 keeps pointers to the values
  std::string output;
  std::string size;
  CLI::Option* output_option = nullptr;
  CLI::Option* size_option = nullptr;
  bool no_display = false;
  bool live = false;
  bool file = false;
  bool agnostic = false;
  bool loop = false;
  bool print_config = false;
  bool track = false;
  std::vector<std::string> lines;  // --line NAME=X1,Y1,X2,Y2 (repeatable)
  std::vector<std::string> zones;  // --zone NAME=X1,Y1,... (repeatable)
  bool verbose = false;
  bool quiet = false;
};

std::string description_of(const std::string& key) {
  for (const auto& entry : config_keys()) {
    if (entry.name == key) return entry.description + " (" + entry.name + ")";
  }
  return key;
}

void add_key_flag(CLI::App& command, RunOptions& options, const std::string& names, const std::string& key,
                  const std::string& value_name) {
  KeyFlag& flag = options.key_flags.emplace_back();
  flag.flag = names.substr(names.rfind(',') + 1);
  flag.key = key;
  flag.option = command.add_option(names, flag.value, description_of(key))->type_name(value_name);
}

// --size 640 or 640x480.
std::pair<int, int> parse_size(const std::string& text) {
  const auto separator = text.find_first_of("xX");
  const auto parse = [&text](const std::string& part) {
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos || part.size() > 5) {
      throw Error("--size " + text + ": expected N or WxH in pixels, e.g. 640 or 640x480");
    }
    return std::stoi(part);
  };
  if (separator == std::string::npos) {
    const int side = parse(text);
    return {side, side};
  }
  return {parse(text.substr(0, separator)), parse(text.substr(separator + 1))};
}

Config build_config(const RunOptions& options) {
  Config config;
  for (const auto& file : options.config_files) merge_config_file(config, file);
  // --source replaces what the files say: one is source.uri, several are streams cam0, cam1, ...
  if (options.sources.size() == 1) {
    config.sources.clear();
    set_config_value(config, "source.uri", options.sources.front(), "--source");
  } else if (options.sources.size() > 1) {
    set_config_value(config, "source.uri", "", "--source");
    config.sources.clear();
    for (const auto& uri : options.sources) {
      if (uri.empty()) throw Error("--source '': empty; expected a file, folder, camera or URL");
      config.sources.push_back({"cam" + std::to_string(config.sources.size()), uri, {}});
    }
  }
  for (const auto& flag : options.key_flags) {
    if (flag.option->count() > 0) set_config_value(config, flag.key, flag.value, flag.flag);
  }
  if (options.size_option->count() > 0) {
    const auto [width, height] = parse_size(options.size);
    set_config_value(config, "model.input_width", std::to_string(width), "--size");
    set_config_value(config, "model.input_height", std::to_string(height), "--size");
  }
  if (options.output_option->count() > 0 && !options.output.empty()) {
    // A file name with an extension is a video; anything else is a folder for images.
    const std::filesystem::path output = options.output;
    const bool folder =
        !output.has_extension() || std::filesystem::is_directory(output) || options.output.back() == '/';
    set_config_value(config, folder ? "sinks.images" : "sinks.video", options.output, "--output");
  }
  if (options.live && options.file) throw Error("--live and --file exclude each other; give one");
  if (options.live) set_config_value(config, "source.mode", "live", "--live");
  if (options.file) set_config_value(config, "source.mode", "file", "--file");
  if (options.no_display) set_config_value(config, "sinks.display", "off", "--no-display");
  if (options.agnostic) set_config_value(config, "model.agnostic", "true", "--agnostic");
  if (options.loop) set_config_value(config, "source.loop", "true", "--loop");
  if (options.quiet) set_config_value(config, "pipeline.progress", "false", "--quiet");
  // Tracking outputs, analytics and skipping detection (the tracker predicts those frames)
  // imply tracking.
  for (const auto& text : options.lines) config.tracking.analytics.lines.push_back(track::parse_line_spec(text));
  for (const auto& text : options.zones) config.tracking.analytics.zones.push_back(track::parse_zone_spec(text));
  const bool wants_tracking =
      options.track || !options.lines.empty() || !options.zones.empty() ||
      std::any_of(options.key_flags.begin(), options.key_flags.end(), [&config](const KeyFlag& flag) {
        return ((flag.key == "sinks.mot" || flag.key == "sinks.events") && flag.option->count() > 0) ||
               (flag.key == "detection.interval" && flag.option->count() > 0 && config.detection.interval > 1);
      });
  if (wants_tracking) set_config_value(config, "tracking.enabled", "true", "--track");
  return config;
}

void check_model_file(const std::filesystem::path& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) throw Error("model " + path.string() + ": no such file");
  if (std::filesystem::is_directory(status))
    throw Error("model " + path.string() + " is a directory; expected an .onnx file");
  const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (descriptor < 0) throw Error("model " + path.string() + " cannot be read: " + std::strerror(errno));
  ::close(descriptor);
}

void write_statistics_json(const std::filesystem::path& path, const Statistics& statistics) {
  std::ofstream file(path);
  file << statistics.to_json().dump(2) << '\n';
  file.flush();
  if (!file) throw Error(ErrorKind::output, "cannot write statistics to " + path.string());
}

// Everything loading the model and making its engines throws is a model failure (exit
// code 3): the file parses as no detector, the family cannot be told, no engine runs it.
// Returned as a prvalue, so DetectorSetup needs no move constructor.
DetectorSetup load_detector(const Config& config) {
  try {
    return DetectorSetup(to_model_settings(config), to_engine_options(config));
  } catch (const Error& error) {
    throw Error(ErrorKind::model, error.what());
  }
}

std::string describe_outputs(const Config& config) {
  std::string text;
  const auto add = [&text](const std::string& what, const std::filesystem::path& path) {
    if (!path.empty()) text += (text.empty() ? "" : ", ") + what + " " + path.string();
  };
  add("video", config.sinks.video);
  add("images", config.sinks.images);
  add("detections", config.sinks.json);
  add("tracks", config.sinks.mot);
  add("events", config.sinks.events);
  add("statistics", config.stats_json);
  return text;
}

// The HTTP endpoint's address and token, checked before the model loads.
service::HttpSettings checked_http_settings(const Config& config) {
  service::HttpSettings http_settings;
  http_settings.listen = config.http.listen;
  http_settings.max_clients = config.http.max_clients;
  http_settings.preview_fps = config.http.preview_fps;
  if (!http_settings.listen.empty()) {
    service::parse_listen_address(http_settings.listen);
    http_settings.token = service::load_http_token(config.http.token_file);
  }
  return http_settings;
}

// Runs `pipeline` (already registered with the watcher) while the HTTP endpoint and the
// systemd notifier watch it through `probe`.
RunSummary serve_and_run(Pipeline& pipeline, const service::RunProbe& probe, const service::HttpSettings& http_settings,
                         service::SystemdNotifier& systemd, ShutdownWatcher& watcher) {
  std::optional<service::HttpServer> http_server;
  if (!http_settings.listen.empty()) {
    http_server.emplace(http_settings, probe);
    spdlog::info("http: serving http://{}/ (/healthz /readyz /metrics /snapshot.jpg /stream.mjpg)",
                 http_server->address());
  }
  service::ServiceNotifier notifier(probe, systemd);
  RunSummary summary;
  try {
    summary = pipeline.run();
  } catch (const Error& error) {
    watcher.forget();
    // run() throws only when a sink cannot open: an output failure (exit code 4).
    if (error.kind() != ErrorKind::configuration) throw;
    throw Error(ErrorKind::output, error.what());
  } catch (...) {
    watcher.forget();
    throw;
  }
  watcher.forget();
  notifier.stop(summary.failed ? "failed: " + summary.failure : "finished");
  if (http_server) http_server->stop();
  return summary;
}

// Prints the statistics and the outputs (unless quiet), writes --stats-json, and returns the
// exit code: the failure's (one error line) or success.
int finish_run(const RunOptions& options, const Config& config, const Statistics& statistics,
               const std::string& outputs, bool failed, const std::string& failure, RunFailureKind failure_kind,
               bool stopped_by_request) {
  if (!options.quiet) {
    const std::string text = statistics.to_text();
    std::cout << text;
    if (text.empty() || text.back() != '\n') std::cout << '\n';
    if (!outputs.empty()) std::cout << "outputs: " << outputs << '\n';
    std::cout.flush();
  }
  if (!config.stats_json.empty()) write_statistics_json(config.stats_json, statistics);
  if (failed) {
    print_error(failure);
    return exit_code_for(failure_kind);
  }
  if (stopped_by_request && !options.quiet) spdlog::info("stopped on request; outputs are complete");
  return exit_success;
}

// --- several streams ---------------------------------------------------------------------

// A live stream that could not be opened at start (camera or server not there yet): read()
// opens it again until it comes, waiting source.reconnect_initial seconds, doubling up to
// source.reconnect_max; after source.max_reconnects failed attempts in a row (0: never) read()
// throws Error(ErrorKind::source_lost). Once open, the source (supervised, as every live
// source) does the rest. The other streams run meanwhile.
// Thread-safety: read() from one thread; stop() and counters() from any.
class PendingSource final : public Source {
 public:
  PendingSource(SourceSettings settings, const std::string& first_error) : settings_(std::move(settings)) {
    info_.kind = "pending";
    info_.description = settings_.uri + " (not reachable at start; retrying)";
    info_.live = true;
    waiting_.state = SourceState::connecting;
    waiting_.last_error = first_error;
  }

  const SourceInfo& info() const override { return info_; }

  bool read(Frame& frame) override {
    if (!inner_ && !open_in_time()) return false;  // only this thread sets inner_
    return inner_->read(frame);
  }

  void stop() override {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    if (inner_) inner_->stop();
    wake_.notify_all();
  }

  SourceCounters counters() const override {
    std::lock_guard lock(mutex_);
    return inner_ ? inner_->counters() : waiting_;
  }

 private:
  bool open_in_time() {
    double wait_s = settings_.reconnect_initial;
    for (int failures = 1;; ++failures) {
      {
        std::unique_lock lock(mutex_);
        if (wake_.wait_for(lock, std::chrono::duration<double>(wait_s), [this] { return stopped_; })) return false;
      }
      try {
        std::unique_ptr<Source> opened = open_source(settings_);
        std::lock_guard lock(mutex_);
        if (stopped_) return false;
        inner_ = std::move(opened);
        spdlog::info("source {}: up after {} failed opening(s)", settings_.uri, failures);
        return true;
      } catch (const Error& error) {
        std::lock_guard lock(mutex_);
        waiting_.last_error = error.what();
        if (settings_.max_reconnects > 0 && failures >= settings_.max_reconnects) {
          throw Error(ErrorKind::source_lost, "source " + settings_.uri + " given up after " +
                                                  std::to_string(failures) + " failed openings: " + error.what());
        }
        spdlog::debug("source {}: still not reachable: {}", settings_.uri, error.what());
      }
      wait_s = std::min(wait_s * 2, settings_.reconnect_max);
    }
  }

  const SourceSettings settings_;
  SourceInfo info_;
  mutable std::mutex mutex_;  // guards stopped_, waiting_ and the assignment of inner_
  std::condition_variable wake_;
  bool stopped_ = false;
  SourceCounters waiting_;
  std::unique_ptr<Source> inner_;
};

bool has_video_extension(std::string path) {
  path = path.substr(0, path.find_first_of("?#"));
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* video : {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".flv", ".mpg", ".mpeg", ".wmv"}) {
    if (extension == video) return true;
  }
  return false;
}

// Live network streams and gst: pipelines keep being retried when they cannot be opened at
// start; files (and http(s) URLs of video files), images and cameras fail the run.
bool retried_when_unreachable(const SourceSettings& settings) {
  if (settings.mode == SourceMode::file) return false;
  const std::string& uri = settings.uri;
  const auto starts = [&uri](const char* prefix) { return uri.rfind(prefix, 0) == 0; };
  if (starts("gst:") || starts("rtsp://") || starts("rtsps://") || starts("udp://")) return true;
  return (starts("http://") || starts("https://")) && !has_video_extension(uri);
}

std::unique_ptr<Source> open_stream_source(const StreamSettings& stream) {
  try {
    return open_source(stream.source);
  } catch (const Error& error) {
    if (error.kind() != ErrorKind::source || !retried_when_unreachable(stream.source)) {
      throw Error(error.kind(), "camera " + stream.name + ": " + error.what());
    }
    spdlog::warn("camera {}: {}; retrying while the other streams run", stream.name, error.what());
    return std::make_unique<PendingSource>(stream.source, error.what());
  }
}

// Each stream publishes as its own camera, with its own client id and outbox.
MqttConfig stream_mqtt_config(MqttConfig mqtt, const std::string& camera) {
  mqtt.camera = camera;
  if (!mqtt.client_id.empty()) mqtt.client_id += "-" + camera;
  if (!mqtt.outbox.empty()) mqtt.outbox /= camera;
  return mqtt;
}

int run_streams(const RunOptions& options, const Config& config, ShutdownWatcher& watcher) {
  std::vector<StreamSettings> streams = to_stream_settings(config);
  for (auto& stream : streams) {
    stream.sinks.json_counters = std::make_shared<FileOutputCounters>();  // for /metrics
    check_sink_settings(stream.sinks);
  }
  const service::HttpSettings http_settings = checked_http_settings(config);
  service::SystemdNotifier systemd = service::SystemdNotifier::from_environment();
  std::vector<std::unique_ptr<service::MqttSink>> mqtt_sinks;
  for (const auto& stream : streams) {
    mqtt_sinks.push_back(service::make_mqtt_sink(stream_mqtt_config(config.mqtt, stream.name), stream.source.uri));
  }
  if (!config.stats_json.empty()) check_output_file(config.stats_json, "statistics output");
  std::vector<std::unique_ptr<Source>> sources;
  bool all_live = true;
  for (const auto& stream : streams) {
    sources.push_back(open_stream_source(stream));
    all_live = all_live && sources.back()->info().live;
  }
  const Config config_for_source = resolve_engine_layout(config, all_live);
  DetectorSetup detector = load_detector(config_for_source);
  if (!options.quiet) {
    for (std::size_t i = 0; i < streams.size(); ++i) {
      spdlog::info("camera {}: {}", streams[i].name, sources[i]->info().description);
    }
    for (const auto& line : detector.describe()) spdlog::info("{}", line);
    spdlog::info("workers: {} x {} threads, shared by {} streams", config_for_source.engine.workers,
                 resolved_threads(config_for_source), streams.size());
  }
  // One model, so one check: on the first stream that is open.
  for (auto& source : sources) {
    if (source->info().kind == "pending") continue;
    source = verify_on_first_frame(detector, std::move(source), config_for_source.engine.verify);
    break;
  }

  std::vector<StreamSetup> setups;
  std::vector<Sink*> file_sinks;
  std::vector<service::MqttSink*> mqtt;
  std::vector<std::shared_ptr<service::LatestFrame>> latest;
  std::string outputs;
  for (std::size_t i = 0; i < streams.size(); ++i) {
    StreamSetup setup;
    setup.name = streams[i].name;
    setup.source = std::move(sources[i]);
    setup.options = streams[i].options;
    setup.sinks = make_sinks(streams[i].sinks);
    mqtt.push_back(mqtt_sinks[i].get());
    if (mqtt_sinks[i]) setup.sinks.push_back(std::move(mqtt_sinks[i]));
    for (const auto& sink : setup.sinks) file_sinks.push_back(sink.get());
    if (!http_settings.listen.empty() || systemd.active()) {
      latest.push_back(std::make_shared<service::LatestFrame>(config.http.jpeg_quality, streams[i].sinks.style));
      setup.sinks.push_back(service::make_preview_sink(latest.back()));
    }
    Config stream_outputs = config;
    stream_outputs.sinks = streams[i].sinks;
    stream_outputs.stats_json.clear();
    const std::string described = describe_outputs(stream_outputs);
    if (!described.empty()) outputs += (outputs.empty() ? "" : "; ") + ("camera " + streams[i].name + ": " + described);
    setups.push_back(std::move(setup));
  }
  if (!config.stats_json.empty())
    outputs += (outputs.empty() ? "" : "; ") + ("statistics " + config.stats_json.string());

  Pipeline pipeline(detector, std::move(setups), to_pipeline_settings(config_for_source));
  watcher.watch(&pipeline, file_sinks);
  double stall_timeout_s = config.source.stall_timeout;
  for (std::size_t i = 0; i < streams.size(); ++i) {
    if (mqtt[i]) mqtt[i]->set_source_probe([&pipeline, i] { return pipeline.source_counters(i); });
    const double own = streams[i].source.stall_timeout > 0
                           ? streams[i].source.stall_timeout
                           : service::default_stall_timeout_s(pipeline.source_info(i).fps);
    stall_timeout_s = std::max(stall_timeout_s, own);
  }
  std::vector<std::shared_ptr<const FileOutputCounters>> json_counters;
  for (const auto& stream : streams) json_counters.push_back(stream.sinks.json_counters);
  const service::RunProbe probe = service::probe_pipeline(pipeline, latest, json_counters, stall_timeout_s);
  const RunSummary summary = serve_and_run(pipeline, probe, http_settings, systemd, watcher);

  // The total, then one section per camera; the first failure decides the exit code.
  Statistics statistics = summary.statistics;
  if (statistics.streams.empty()) {
    for (const auto& stream : summary.streams) {
      statistics.streams.push_back(stream.statistics);
      statistics.streams.back().camera = stream.name;
    }
  }
  bool failed = summary.failed;
  std::string failure = summary.failure;
  RunFailureKind failure_kind = summary.failure_kind;
  for (const auto& stream : summary.streams) {
    if (!stream.failed) continue;
    if (!failed || failure == stream.failure) {
      failed = true;
      failure = "camera " + stream.name + ": " + stream.failure;
      failure_kind = stream.failure_kind;
    }
    break;
  }
  return finish_run(options, config, statistics, outputs, failed, failure, failure_kind, summary.stopped_by_request);
}

int run(const RunOptions& options, ShutdownWatcher& watcher) {
  if (options.verbose && options.quiet) throw Error("--verbose and --quiet exclude each other; give one");
  if (options.verbose) spdlog::set_level(spdlog::level::debug);
  if (options.quiet) spdlog::set_level(spdlog::level::warn);

  const Config config = build_config(options);
  if (options.print_config) {
    std::cout << config_to_yaml(config);
    return exit_success;
  }

  // Everything a user can get wrong is checked here, cheapest first, before the model loads.
  validate_for_run(config);
  check_model_file(config.model.path);
  if (!config.sources.empty()) return run_streams(options, config, watcher);
  SinkSettings sink_settings = to_sink_settings(config);
  sink_settings.json_counters = std::make_shared<FileOutputCounters>();  // for /metrics
  check_sink_settings(sink_settings);
  const service::HttpSettings http_settings = checked_http_settings(config);
  service::SystemdNotifier systemd = service::SystemdNotifier::from_environment();
  // MQTT: URL, camera name, password and outbox checked (and the outbox opened, with what a
  // previous run left in it) before the model loads. Connecting waits for the sink's open().
  std::unique_ptr<service::MqttSink> mqtt_sink = service::make_mqtt_sink(config.mqtt, config.source.uri);
  if (!config.stats_json.empty()) check_output_file(config.stats_json, "statistics output");
  std::unique_ptr<Source> source = open_source(to_source_settings(config));
  const Config config_for_source = resolve_engine_layout(config, source->info().live);
  DetectorSetup detector = load_detector(config_for_source);
  if (!options.quiet) {
    spdlog::info("source: {}", source->info().description);
    for (const auto& line : detector.describe()) spdlog::info("{}", line);
    spdlog::info("workers: {} x {} threads", config_for_source.engine.workers, resolved_threads(config_for_source));
  }
  // An engine other than ONNX Runtime is compared with it on the first frame (engine.verify);
  // before the sinks open, so a strict refusal leaves no empty outputs behind.
  source = verify_on_first_frame(detector, std::move(source), config_for_source.engine.verify);
  std::vector<std::unique_ptr<Sink>> sinks = make_sinks(sink_settings);
  service::MqttSink* mqtt = mqtt_sink.get();
  if (mqtt_sink) sinks.push_back(std::move(mqtt_sink));
  std::vector<Sink*> file_sinks;
  for (const auto& sink : sinks) file_sinks.push_back(sink.get());
  if (sinks.empty() && !options.quiet) {
    spdlog::warn("no outputs configured (--output, --json or a display): detections are only counted");
  }
  // The newest frame for HTTP clients, and the time of the last output for readiness and the
  // systemd watchdog. Publishing is a pointer swap; encoding happens on the HTTP threads.
  std::shared_ptr<service::LatestFrame> latest;
  if (!http_settings.listen.empty() || systemd.active()) {
    latest = std::make_shared<service::LatestFrame>(config.http.jpeg_quality, config.sinks.style);
    sinks.push_back(service::make_preview_sink(latest));
  }

  const std::string outputs = describe_outputs(config);
  Pipeline pipeline(detector, std::move(source), std::move(sinks), to_pipeline_settings(config_for_source));
  watcher.watch(&pipeline, file_sinks);
  if (mqtt) mqtt->set_source_probe([&pipeline] { return pipeline.source_counters(); });
  const double stall_timeout_s = config.source.stall_timeout > 0
                                     ? config.source.stall_timeout
                                     : service::default_stall_timeout_s(pipeline.source_info().fps);
  const service::RunProbe probe =
      service::probe_pipeline(pipeline, latest, sink_settings.json_counters, stall_timeout_s);
  const RunSummary summary = serve_and_run(pipeline, probe, http_settings, systemd, watcher);
  return finish_run(options, config, summary.statistics, outputs, summary.failed, summary.failure, summary.failure_kind,
                    summary.stopped_by_request);
}

}  // namespace

CommandAction add_run_command(CLI::App& app, ShutdownWatcher& watcher) {
  auto* command = app.add_subcommand("run", "Detect objects in a video, camera, stream or images");
  auto options = std::make_shared<RunOptions>();
  command
      ->add_option("-c,--config", options->config_files,
                   "YAML configuration; repeat to layer files (later ones win); flags override them all")
      ->type_name("FILE");
  add_key_flag(*command, *options, "-m,--model", "model.path", "FILE");
  command
      ->add_option("-s,--source", options->sources,
                   description_of("source.uri") +
                       "; repeat for several streams in one process, named cam0, cam1, ... (replaces sources:)")
      ->type_name("URI");
  options->output_option =
      command
          ->add_option("-o,--output", options->output,
                       "annotated output: a .mp4/.mkv/.avi file (video), or a folder (one image per frame)")
          ->type_name("PATH");
  add_key_flag(*command, *options, "--json", "sinks.json", "FILE");
  add_key_flag(*command, *options, "--stats-json", "sinks.stats_json", "FILE");
  add_key_flag(*command, *options, "--mot", "sinks.mot", "FILE");
  add_key_flag(*command, *options, "--events", "sinks.events", "FILE");
  add_key_flag(*command, *options, "--family", "model.family", "NAME");
  options->size_option =
      command->add_option("--size", options->size, "model input size for dynamic models: N or WxH, e.g. 640x480")
          ->type_name("SIZE");
  add_key_flag(*command, *options, "--conf", "model.conf", "SCORE");
  add_key_flag(*command, *options, "--iou", "model.iou", "IOU");
  add_key_flag(*command, *options, "--max-det", "model.max_det", "N");
  add_key_flag(*command, *options, "--classes", "model.classes", "LIST");
  add_key_flag(*command, *options, "--labels", "model.labels", "FILE");
  add_key_flag(*command, *options, "--engine", "engine.backend", "BACKEND");
  add_key_flag(*command, *options, "--target", "engine.target", "TARGET");
  add_key_flag(*command, *options, "--providers", "engine.providers", "LIST");
  add_key_flag(*command, *options, "--workers", "engine.workers", "N");
  add_key_flag(*command, *options, "--threads", "engine.threads", "N");
  add_key_flag(*command, *options, "--detection-interval", "detection.interval", "N");
  add_key_flag(*command, *options, "--max-in-flight", "pipeline.max_in_flight", "N");
  add_key_flag(*command, *options, "--max-frames", "pipeline.max_frames", "N");
  add_key_flag(*command, *options, "--stats-interval", "pipeline.stats_interval", "SECONDS");
  add_key_flag(*command, *options, "--display", "sinks.display", "auto|on|off");
  add_key_flag(*command, *options, "--http", "http.listen", "[ADDR:]PORT");
  add_key_flag(*command, *options, "--mqtt", "mqtt.url", "mqtt://HOST:PORT");
  add_key_flag(*command, *options, "--name", "mqtt.camera", "NAME");
  command->add_flag("--track", options->track, "track objects: ids in the outputs, analytics (tracking.enabled)");
  command->add_option("--line", options->lines, "a counting line in source pixels, repeatable (analytics.lines)")
      ->type_name("NAME=X1,Y1,X2,Y2");
  command->add_option("--zone", options->zones, "a zone polygon in source pixels, repeatable (analytics.zones)")
      ->type_name("NAME=X1,Y1,X2,Y2,X3,Y3,...");
  command->add_flag("--no-display", options->no_display, "never open a window (same as --display off)");
  command->add_flag("--agnostic", options->agnostic, "class-agnostic NMS (model.agnostic: true)");
  command->add_flag("--loop", options->loop, "files: start again at the end (source.loop: true)");
  command->add_flag("--live", options->live, "treat the source as live: drop frames to stay current");
  command->add_flag("--file", options->file, "treat the source as a file: process every frame");
  command->add_flag("--print-config", options->print_config,
                    "print the merged configuration as YAML with descriptions, then exit");
  command->add_flag("-v,--verbose", options->verbose, "more detail on stderr");
  command->add_flag("-q,--quiet", options->quiet, "only warnings and errors; no progress or statistics");
  command->footer(config_help());
  return [options, &watcher] { return run(*options, watcher); };
}

}  // namespace detflow::app
