// `detflow run`: configuration files, then flags, to a checked configuration; every input
// and output checked before the model loads; then one Pipeline run with statistics.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
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
  std::deque<KeyFlag> key_flags;  // a deque: CLI11 keeps pointers to the values
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
  SinkSettings sink_settings = to_sink_settings(config);
  sink_settings.json_counters = std::make_shared<FileOutputCounters>();  // for /metrics
  check_sink_settings(sink_settings);
  // The HTTP endpoint's address and token, checked before the model loads.
  service::HttpSettings http_settings;
  http_settings.listen = config.http.listen;
  http_settings.max_clients = config.http.max_clients;
  http_settings.preview_fps = config.http.preview_fps;
  if (!http_settings.listen.empty()) {
    service::parse_listen_address(http_settings.listen);
    http_settings.token = service::load_http_token(config.http.token_file);
  }
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

  if (!options.quiet) {
    std::cout << summary.statistics.to_text();
    if (summary.statistics.to_text().back() != '\n') std::cout << '\n';
    if (!outputs.empty()) std::cout << "outputs: " << outputs << '\n';
    std::cout.flush();
  }
  if (!config.stats_json.empty()) write_statistics_json(config.stats_json, summary.statistics);
  if (summary.failed) {
    print_error(summary.failure);
    return exit_code_for(summary.failure_kind);
  }
  if (summary.stopped_by_request && !options.quiet) spdlog::info("stopped on request; outputs are complete");
  return exit_success;
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
  add_key_flag(*command, *options, "-s,--source", "source.uri", "URI");
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
