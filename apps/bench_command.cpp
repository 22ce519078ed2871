// `detflow bench`: detflow's pipeline against the hand-written loop a user would write
// (ONNX Runtime and OpenCV DNN), the engines alone and the CPU-bound limit, in one run on
// the same decoded frames (see bench/include/detflow/bench/harness.h). Prints a table on
// stdout; --json writes the whole report.
//
// Model keys go through the configuration registry (config.h), so --conf, --family,
// --engine, --workers, ... are validated exactly as `detflow run` validates them.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "detflow/bench/bench_report.h"
#include "detflow/bench/feature_cost.h"
#include "detflow/bench/harness.h"
#include "detflow/bench/soak.h"
#include "detflow/error.h"
#include "detflow/pipeline/config.h"
#include "detflow/pipeline/sinks.h"
#include "detflow/service/mqtt_publisher.h"
#include "detflow/track/analytics.h"

namespace detflow::app {

namespace {

// --json FILE: the whole report, indented; nothing when no file was asked for.
void write_report(const nlohmann::json& report, const std::string& path) {
  if (path.empty()) return;
  std::ofstream file(path);
  file << report.dump(2) << '\n';
  file.close();
  if (!file) throw Error("cannot write the bench report to " + path);
}

// A flag that sets one configuration key (validated through the key registry).
struct KeyFlag {
  std::string flag;
  std::string key;
  std::string value;
  CLI::Option* option = nullptr;
};

struct BenchFlags {
  std::deque<KeyFlag> key_flags;  // a deque: CLI11 keeps pointers to the values
  std::int64_t frames = 0;
  std::int64_t memory_budget_mb = 2048;
  std::int64_t engine_frames = 200;
  bool output_video = false;
  std::string output_directory;
  std::string json;
  int loop_threads = 0;
  int cores = 0;
  bool sweep = false;
  std::string write_config;
  double live_seconds = 0;
  double live_fps = 30;
  std::string live_source;
  bool no_opencv_loop = false;
  bool no_engine_only = false;
  bool quiet = false;
  double soak_seconds = 0;
  std::string with;                // --with tracking,preview,mqtt
  int feature_rounds = 3;          // --repeat
  std::vector<std::string> lines;  // --line NAME=X1,Y1,X2,Y2
  std::string mqtt_url;            // --mqtt
  int streams = 0;                 // --streams
};

void add_key_flag(CLI::App& command, BenchFlags& flags, const std::string& names, const std::string& key,
                  const std::string& value_name, const std::string& description) {
  KeyFlag& flag = flags.key_flags.emplace_back();
  flag.flag = names.substr(names.rfind(',') + 1);
  flag.key = key;
  flag.option = command.add_option(names, flag.value, description + " (" + key + ")")->type_name(value_name);
}

// --soak SECONDS: only the soak (soak.h), on --source or GStreamer's live test pattern.
int run_soak_command(const BenchFlags& flags, const Config& config, bool workers_given) {
  if (!flags.json.empty()) check_output_file(flags.json, "bench JSON output");
  bench::SoakOptions options;
  options.model = to_model_settings(config);
  options.backend = config.engine.backend;
  options.target = config.engine.target;
  if (!config.source.uri.empty()) options.source = config.source.uri;
  options.seconds = flags.soak_seconds;
  options.workers = workers_given ? std::max(1, config.engine.workers) : 1;
  options.threads = config.engine.threads;
  if (!flags.quiet) spdlog::info("bench: soak for {} s on {}", flags.soak_seconds, options.source);
  nlohmann::json report;
  report["model"] = {{"path", options.model.path.string()}};
  report["soak"] = bench::run_soak(options);
  std::cout << bench::format_soak_table(report["soak"]) << std::flush;
  write_report(report, flags.json);
  return exit_success;
}

int run_bench_command(const BenchFlags& flags) {
  if (flags.quiet) spdlog::set_level(spdlog::level::warn);
  Config config;
  for (const auto& flag : flags.key_flags) {
    if (flag.option->count() > 0) set_config_value(config, flag.key, flag.value, flag.flag);
  }
  if (config.model.path.empty()) throw Error("no model: pass --model FILE.onnx");
  if (flags.soak_seconds != 0) {
    if (!std::filesystem::is_regular_file(config.model.path)) {
      throw Error("model " + config.model.path.string() + ": no such file");
    }
    bool workers_given = false;
    for (const auto& flag : flags.key_flags) workers_given |= flag.key == "engine.workers" && flag.option->count() > 0;
    return run_soak_command(flags, config, workers_given);
  }
  if (config.source.uri.empty()) throw Error("no source: pass --source VIDEO (a file, folder of images or gst:...)");
  if (!std::filesystem::is_regular_file(config.model.path)) {
    throw Error("model " + config.model.path.string() + ": no such file");
  }
  if (flags.frames < 0)
    throw Error("--frames " + std::to_string(flags.frames) + " is invalid (expected 0 for all, or more)");
  if (flags.memory_budget_mb < 1) {
    throw Error("--memory-budget " + std::to_string(flags.memory_budget_mb) + " is invalid (expected MiB, 1 or more)");
  }
  if (flags.live_seconds < 0)
    throw Error("--live-latency " + std::to_string(flags.live_seconds) + " is invalid (expected seconds >= 0)");
  if (!(flags.live_fps > 0)) throw Error("--live-fps " + std::to_string(flags.live_fps) + " is invalid (expected > 0)");
  if (flags.cores < 0)
    throw Error("--cores " + std::to_string(flags.cores) + " is invalid (expected 0 for all, or more)");
  if (flags.feature_rounds < 1)
    throw Error("--repeat " + std::to_string(flags.feature_rounds) + " is invalid (expected 1 or more)");
  if (flags.streams < 0 || flags.streams == 1) {
    throw Error("--streams " + std::to_string(flags.streams) + " is invalid (expected 2 or more)");
  }
  if (flags.with.empty() && (!flags.lines.empty() || !flags.mqtt_url.empty())) {
    throw Error("--line and --mqtt set up the features of --with; pass --with tracking,preview,mqtt too");
  }
  if (!flags.json.empty()) check_output_file(flags.json, "bench JSON output");
  if (!flags.write_config.empty()) check_output_file(flags.write_config, "bench configuration output");
  const auto given = [&flags](const std::string& key) {
    for (const auto& flag : flags.key_flags) {
      if (flag.key == key) return flag.option->count() > 0;
    }
    return false;
  };

  bench::BenchOptions options;
  options.model = to_model_settings(config);
  options.backend = config.engine.backend;
  options.target = config.engine.target;
  options.source.uri = config.source.uri;
  options.source.mode = SourceMode::file;
  options.frames = flags.frames;
  options.memory_budget_bytes = flags.memory_budget_mb << 20;
  options.workers = given("engine.workers") ? config.engine.workers : 0;
  options.threads = config.engine.threads;
  options.max_in_flight = config.pipeline.max_in_flight;
  options.loop_threads = flags.loop_threads;
  options.cores = flags.cores;
  options.output_video = flags.output_video;
  options.output_directory = flags.output_directory;
  options.opencv_loop = !flags.no_opencv_loop;
  options.engine_only = !flags.no_engine_only;
  options.engine_frames = flags.engine_frames;
  options.sweep = flags.sweep;
  options.write_config = flags.write_config;
  options.live_seconds = flags.live_seconds;
  options.live_fps = flags.live_fps;
  options.live_source = flags.live_source;
  if (!flags.with.empty()) options.features = bench::parse_feature_list(flags.with);
  options.feature_rounds = flags.feature_rounds;
  options.streams = flags.streams;
  for (const auto& text : flags.lines) options.lines.push_back(track::parse_line_spec(text));
  if (!flags.mqtt_url.empty()) {
    service::paho_server_uri(flags.mqtt_url);  // a bad URL fails now, not after the other modes
    options.mqtt_url = flags.mqtt_url;
  }
  if (!flags.quiet) options.on_step = [](const std::string& step) { spdlog::info("bench: {}", step); };

  const nlohmann::json report = bench::run_bench(options);
  std::cout << bench::format_report_table(report) << std::flush;
  write_report(report, flags.json);
  return exit_success;
}

}  // namespace

CommandAction add_bench_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "bench", "Measure detflow against a hand-written loop, the engines alone and the CPU-bound limit, in one run");
  auto flags = std::make_shared<BenchFlags>();
  add_key_flag(*command, *flags, "-m,--model", "model.path", "FILE", "the detector");
  add_key_flag(*command, *flags, "-s,--source", "source.uri", "URI", "video, images or gst:... decoded into memory");
  add_key_flag(*command, *flags, "--family", "model.family", "NAME", "decoder family, or auto");
  add_key_flag(*command, *flags, "--engine", "engine.backend", "BACKEND", "engine of the loop and the pipeline");
  add_key_flag(*command, *flags, "--workers", "engine.workers", "N",
               "pipeline inference workers (default: as detflow run, or the sweep's best)");
  add_key_flag(*command, *flags, "--threads", "engine.threads", "N",
               "intra-op threads per worker (0: cores / workers)");
  add_key_flag(*command, *flags, "--max-in-flight", "pipeline.max_in_flight", "N",
               "pipeline frames in flight (0: as detflow run, workers + 1)");
  add_key_flag(*command, *flags, "--target", "engine.target", "TARGET", "engine target of the pipeline");
  add_key_flag(*command, *flags, "--conf", "model.conf", "SCORE", "score threshold");
  add_key_flag(*command, *flags, "--iou", "model.iou", "IOU", "NMS IoU threshold");
  command->add_option("--frames", flags->frames, "frames to decode into memory (0: all, up to --memory-budget)")
      ->type_name("N");
  command->add_option("--memory-budget", flags->memory_budget_mb, "memory for the decoded frames, MiB (default 2048)")
      ->type_name("MIB");
  command->add_flag(
      "--output-video", flags->output_video,
      "loop and pipeline annotate to MP4 and write JSON Lines (in a temporary folder unless --output-dir)");
  command->add_option("--output-dir", flags->output_directory, "keep the annotated videos and JSON Lines here")
      ->type_name("DIR");
  command->add_option("--json", flags->json, "write the whole report as JSON")->type_name("FILE");
  command->add_option("--loop-threads", flags->loop_threads, "the hand-written loop's intra-op threads (0: cores)")
      ->type_name("N");
  command->add_option("--cores", flags->cores, "cores the limit and the sweep assume (0: all of this machine)")
      ->type_name("N");
  command->add_flag("--sweep", flags->sweep, "run the pipeline over every workers x threads that fits the cores");
  command
      ->add_option("--write-config", flags->write_config,
                   "save the best (or given) workers x threads as a YAML config for detflow run -c")
      ->type_name("FILE");
  command
      ->add_option("--live-latency", flags->live_seconds,
                   "also run a live source this many seconds: latency distribution, drops, memory")
      ->type_name("SECONDS");
  command->add_option("--live-fps", flags->live_fps, "rate of the live source (default 30)")->type_name("FPS");
  command
      ->add_option("--live-source", flags->live_source,
                   "live source URI (e.g. gst:videotestsrc is-live=true ! ...); default: the frames replayed live")
      ->type_name("URI");
  command
      ->add_option("--engine-frames", flags->engine_frames,
                   "frames for the engine-alone and single-thread cost modes (default 200)")
      ->type_name("N");
  command->add_flag("--no-opencv-loop", flags->no_opencv_loop, "skip the hand-written loop on OpenCV DNN");
  command->add_flag("--no-engine-only", flags->no_engine_only, "skip the engines-alone mode");
  command
      ->add_option("--soak", flags->soak_seconds,
                   "only a soak: run the pipeline this long on a live source (--source, default GStreamer's "
                   "videotestsrc at 30 FPS, 640x480) and report the resident-memory slope in MiB/hour")
      ->type_name("SECONDS");
  command
      ->add_option("--with", flags->with,
                   "after the pipeline, measure what features cost it: the plain pipeline and the pipeline with "
                   "each of tracking (tracker + 2 counting lines), preview (MJPEG server, 3 clients, 1 slow), mqtt "
                   "(tracking + MQTT sink to a local broker), interval2, interval3 (detector every N-th frame), "
                   "interleaved over --repeat rounds; reports FPS and ratios.<feature>_over_plain (goal >= 0.97)")
      ->type_name("LIST");
  command
      ->add_option("--streams", flags->streams,
                   "after the pipeline, the same frames as N streams of one pipeline (one model, shared workers, "
                   "the same outputs per stream) next to the single-stream pipeline, interleaved over --repeat "
                   "rounds: aggregate and per-stream FPS, p99 latency, memory per extra stream; "
                   "ratios.multi_over_single (goal >= 0.9)")
      ->type_name("N");
  command
      ->add_option("--repeat", flags->feature_rounds,
                   "rounds of --with and --streams, each running every variant once; medians (default 3)")
      ->type_name("N");
  command
      ->add_option("--line", flags->lines,
                   "counting line for --with tracking/mqtt in source pixels, repeatable (default: two vertical lines "
                   "at 1/3 and 2/3 of the width)")
      ->type_name("NAME=X1,Y1,X2,Y2");
  command
      ->add_option("--mqtt", flags->mqtt_url,
                   "broker for --with mqtt (default: start /usr/sbin/mosquitto on a free loopback port)")
      ->type_name("URL");
  command->add_flag("-q,--quiet", flags->quiet, "no progress lines on stderr");
  return [flags] { return run_bench_command(*flags); };
}

}  // namespace detflow::app
