// Configuration: the key registry, YAML loading, command-line overrides, errors, the
// --print-config round trip, conversions and every shipped file under configs/.
#include <algorithm>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "detflow/error.h"
#include "detflow/pipeline/config.h"
#include "shared_data.h"

namespace detflow {
namespace {

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return {};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const ConfigKey& key_named(const std::string& name) {
  const auto& keys = config_keys();
  const auto found = std::find_if(keys.begin(), keys.end(), [&](const ConfigKey& key) { return key.name == name; });
  if (found == keys.end()) throw std::runtime_error("no key " + name);
  return *found;
}

TEST(ConfigRegistry, EveryKeyIsDescribedOnceInAKnownSection) {
  std::set<std::string> names;
  for (const auto& key : config_keys()) {
    EXPECT_TRUE(names.insert(key.name).second) << "duplicate " << key.name;
    const std::string section = key.name.substr(0, key.name.find('.'));
    EXPECT_NE(std::find(config_sections().begin(), config_sections().end(), section), config_sections().end())
        << key.name;
    EXPECT_FALSE(key.description.empty()) << key.name;
    EXPECT_FALSE(key.accepted.empty()) << key.name;
    EXPECT_FALSE(key.default_value.empty()) << key.name;
    EXPECT_EQ(key.description.find('\n'), std::string::npos) << key.name;
  }
  for (const char* required : {"source.uri",          "source.mode",
                               "source.width",        "source.height",
                               "source.fps",          "source.loop",
                               "model.path",          "model.family",
                               "model.input_width",   "model.input_height",
                               "model.labels",        "model.conf",
                               "model.iou",           "model.max_det",
                               "model.agnostic",      "model.classes",
                               "engine.backend",      "engine.target",
                               "engine.providers",    "engine.workers",
                               "engine.threads",      "pipeline.max_in_flight",
                               "pipeline.max_frames", "pipeline.stats_interval",
                               "sinks.video",         "sinks.json",
                               "sinks.images",        "sinks.display",
                               "sinks.stats_json"}) {
    EXPECT_TRUE(names.count(required)) << required;
  }
}

TEST(ConfigRegistry, DefaultsInTheTableAreTheStructDefaults) {
  const Config defaults;
  for (const auto& key : config_keys()) {
    std::string value = config_value(defaults, key.name);
    EXPECT_EQ(value, key.default_value) << key.name;
  }
  EXPECT_EQ(key_named("model.conf").default_value, "null");
  EXPECT_EQ(key_named("engine.workers").default_value, "0");
  EXPECT_EQ(key_named("sinks.display").default_value, "auto");
  EXPECT_EQ(key_named("source.mode").default_value, "auto");
}

TEST(ConfigRegistry, FamiliesComeFromTheDecoderRegistry) {
  const auto& accepted = key_named("model.family").accepted;
  for (const auto& family : registered_families()) EXPECT_TRUE(contains(accepted, family.name)) << accepted;
}

TEST(ConfigLoading, YamlSetsTypedValues) {
  Config config;
  merge_config_text(config, R"(
source: {uri: vtest.avi, mode: file, loop: yes}
model:
  path: m.onnx
  family: yolox
  conf: 0.3
  iou: 0.5
  max_det: 50
  agnostic: true
  classes: [person, 2]
  input_width: 320
  input_height: 256
  resize: stretch
  color: bgr
engine: {backend: opencv, target: opencl, providers: [cuda, cpu], workers: 2, threads: 1}
pipeline: {max_in_flight: 4, max_frames: 100, stats_interval: 2.5, progress: off}
sinks: {video: out.mkv, json: out.jsonl, images: frames, display: off, stats_json: s.json}
)",
                    "test");
  EXPECT_EQ(config.source.uri, "vtest.avi");
  EXPECT_EQ(config.source.mode, SourceMode::file);
  EXPECT_TRUE(config.source.loop);
  EXPECT_EQ(config.model.path, "m.onnx");
  EXPECT_EQ(config.model.family, "yolox");
  EXPECT_FLOAT_EQ(*config.model.score_threshold, 0.3f);
  EXPECT_FLOAT_EQ(*config.model.iou_threshold, 0.5f);
  EXPECT_EQ(*config.model.max_detections, 50);
  EXPECT_TRUE(*config.model.class_agnostic);
  EXPECT_EQ(config.model.classes, (std::vector<std::string>{"person", "2"}));
  EXPECT_EQ(config.model.input_width, 320);
  EXPECT_EQ(config.model.input_height, 256);
  EXPECT_EQ(*config.model.resize, ResizeMode::stretch);
  EXPECT_EQ(*config.model.color, ColorOrder::bgr);
  EXPECT_EQ(config.engine.backend, "opencv");
  EXPECT_EQ(config.engine.target, "opencl");
  EXPECT_EQ(config.engine.providers, (std::vector<std::string>{"cuda", "cpu"}));
  EXPECT_EQ(config.engine.workers, 2);
  EXPECT_EQ(config.engine.threads, 1);
  EXPECT_EQ(config.pipeline.max_in_flight, 4);
  EXPECT_EQ(config.pipeline.max_frames, 100);
  EXPECT_DOUBLE_EQ(config.pipeline.stats_interval_s, 2.5);
  EXPECT_FALSE(config.pipeline.progress);
  EXPECT_EQ(config.sinks.video, "out.mkv");
  EXPECT_EQ(config.sinks.json, "out.jsonl");
  EXPECT_EQ(config.sinks.images, "frames");
  EXPECT_EQ(config.sinks.display, DisplayMode::off);
  EXPECT_EQ(config.stats_json, "s.json");
}

TEST(ConfigLoading, EmptyTextChangesNothingAndNullResetsOptionals) {
  Config config;
  config.model.score_threshold = 0.4f;
  merge_config_text(config, "", "empty");
  EXPECT_FLOAT_EQ(*config.model.score_threshold, 0.4f);
  merge_config_text(config, "model:\n  conf: null\n", "reset");
  EXPECT_FALSE(config.model.score_threshold);
  merge_config_text(config, "model:\n", "empty section");
}

TEST(ConfigErrors, UnknownKeyListsTheKnownKeysOfItsSection) {
  Config config;
  const auto message = error_of([&] { merge_config_text(config, "model:\n  confidence: 0.3\n", "config a.yaml"); });
  EXPECT_TRUE(contains(message, "config a.yaml")) << message;
  EXPECT_TRUE(contains(message, "(line 2)")) << message;
  EXPECT_TRUE(contains(message, "unknown key 'model.confidence'")) << message;
  EXPECT_TRUE(contains(message, "known keys in model: path, family,")) << message;
  EXPECT_TRUE(contains(message, "conf")) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(ConfigErrors, UnknownSectionListsTheSections) {
  Config config;
  const auto message = error_of([&] { merge_config_text(config, "modle:\n  path: x\n", "config b.yaml"); });
  EXPECT_TRUE(contains(message, "unknown section 'modle'")) << message;
  EXPECT_TRUE(contains(message, "source, model, detection, engine, pipeline, sinks")) << message;
}

TEST(ConfigErrors, MalformedYamlNamesTheLine) {
  Config config;
  const auto message = error_of([&] { merge_config_text(config, "model:\n  path: [unclosed\n", "config c.yaml"); });
  EXPECT_TRUE(contains(message, "config c.yaml: invalid YAML at line")) << message;
  EXPECT_TRUE(contains(error_of([&] { merge_config_text(config, "- a\n- b\n", "config d.yaml"); }),
                       "expected a mapping of sections"));
  EXPECT_TRUE(contains(error_of([&] { merge_config_text(config, "model: 3\n", "config e.yaml"); }),
                       "section 'model' must be a mapping"));
}

// Values each key must refuse, by type. A mapping is refused by every key.
std::vector<std::string> invalid_yaml_values(const ConfigKey& key) {
  std::vector<std::string> values{"{a: 1}"};
  if (key.type == "integer") values.insert(values.end(), {"abc", "-1", "1.5", "99999999999999999999999"});
  if (key.type == "number") values.insert(values.end(), {"abc", "-1", "1e300", "[1, 2]"});
  if (key.type == "boolean") values.insert(values.end(), {"maybe", "2", "[true]"});
  if (key.type == "choice") values.insert(values.end(), {"bogus", "[auto]"});
  if (key.type == "list") values.insert(values.end(), {"[a, [b]]", "\"a,,b\""});
  if (key.type == "text" || key.type == "path") values.push_back("[a, b]");
  if (key.name == "model.family") values.push_back("yolov99");
  if (key.name == "engine.backend") values.push_back("tensorflow");
  if (key.name == "engine.target") values.push_back("\"open cl\"");
  if (key.name == "sinks.video") values.push_back("out.mov");
  if (key.name == "model.max_det") values.push_back("0");
  if (key.name == "model.conf" || key.name == "model.iou") values.push_back("1.5");
  if (key.name == "engine.workers") values.push_back("65");
  return values;
}

TEST(ConfigErrors, EveryKeyRefusesInvalidValuesNamingKeyValueAndWhatIsAccepted) {
  int checked = 0;
  for (const auto& key : config_keys()) {
    const std::string section = key.name.substr(0, key.name.find('.'));
    const std::string field = key.name.substr(section.size() + 1);
    for (const auto& value : invalid_yaml_values(key)) {
      Config config;
      const Config before = config;
      const std::string yaml = section + ":\n  " + field + ": " + value + "\n";
      const auto message = error_of([&] { merge_config_text(config, yaml, "config t.yaml"); });
      ASSERT_FALSE(message.empty()) << key.name << " accepted " << value;
      EXPECT_TRUE(contains(message, key.name)) << message;
      EXPECT_TRUE(contains(message, key.accepted)) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      EXPECT_EQ(config_to_yaml(config), config_to_yaml(before)) << "a refused file must change nothing";
      ++checked;
    }
  }
  EXPECT_GT(checked, 60);
}

TEST(ConfigErrors, OutOfRangeAndNotANumberAreTold) {
  Config config;
  const auto range = error_of([&] { set_config_value(config, "model.conf", "1.5", "--conf"); });
  EXPECT_EQ(range, "--conf: model.conf = '1.5': out of range; accepted: " + key_named("model.conf").accepted);
  const auto number = error_of([&] { set_config_value(config, "engine.workers", "two", "--workers"); });
  EXPECT_TRUE(contains(number, "--workers: engine.workers = 'two': not a whole number; accepted: 0 to 64")) << number;
}

TEST(ConfigOverrides, CommandLineValuesOverrideFilesAndUseTheSameChecks) {
  const auto folder = test::temporary_directory("config");
  std::ofstream(folder / "base.yaml") << "model:\n  conf: 0.3\n  classes: [person]\nengine:\n  workers: 2\n";
  std::ofstream(folder / "card.yaml") << "model:\n  family: yolox\n  conf: 0.4\n";
  Config config;
  merge_config_file(config, folder / "base.yaml");
  merge_config_file(config, folder / "card.yaml");  // later files win
  EXPECT_FLOAT_EQ(*config.model.score_threshold, 0.4f);
  EXPECT_EQ(config.engine.workers, 2);
  set_config_value(config, "model.conf", "0.6", "--conf");
  set_config_value(config, "model.classes", "person, car,2", "--classes");
  set_config_value(config, "sinks.display", "OFF", "--display");
  set_config_value(config, "engine.providers", "", "--providers");
  EXPECT_FLOAT_EQ(*config.model.score_threshold, 0.6f);
  EXPECT_EQ(config.model.classes, (std::vector<std::string>{"person", "car", "2"}));
  EXPECT_EQ(config.sinks.display, DisplayMode::off);
  EXPECT_TRUE(config.engine.providers.empty());
  set_config_value(config, "model.conf", "auto", "--conf");  // back to the family's default
  EXPECT_FALSE(config.model.score_threshold);
  EXPECT_TRUE(contains(error_of([&] { set_config_value(config, "model.bogus", "1", "--x"); }), "known keys in model:"));
  EXPECT_TRUE(contains(error_of([&] { set_config_value(config, "bogus", "1", "--x"); }), "known sections:"));
}

TEST(ConfigFiles, MissingOrDirectoryFileIsAnError) {
  Config config;
  EXPECT_TRUE(contains(error_of([&] { merge_config_file(config, "/nonexistent/x.yaml"); }), "no such file"));
  EXPECT_TRUE(
      contains(error_of([&] { merge_config_file(config, test::temporary_directory("config")); }), "is a directory"));
}

TEST(ConfigPrint, PrintedYamlLoadsBackToTheSameConfiguration) {
  Config config;
  set_config_value(config, "source.uri", "rtsp://camera.local:554/stream?x=1&y=2", "t");
  set_config_value(config, "source.fps", "29.97", "t");
  set_config_value(config, "model.path", "models/my model: v2.onnx", "t");
  set_config_value(config, "model.conf", "0.123", "t");
  set_config_value(config, "model.agnostic", "false", "t");
  set_config_value(config, "model.classes", "person,2,true,null", "t");
  set_config_value(config, "model.resize", "letterbox_top_left", "t");
  set_config_value(config, "engine.target", "opencl_fp16", "t");
  set_config_value(config, "pipeline.max_frames", "9000000000", "t");
  set_config_value(config, "pipeline.stats_interval", "0.1", "t");
  set_config_value(config, "sinks.display", "off", "t");
  set_config_value(config, "sinks.json", "yes", "t");
  const std::string printed = config_to_yaml(config);
  Config loaded;
  merge_config_text(loaded, printed, "printed");
  EXPECT_EQ(config_to_yaml(loaded), printed);
  EXPECT_EQ(loaded.source.uri, config.source.uri);
  EXPECT_DOUBLE_EQ(loaded.source.fps, 29.97);
  EXPECT_EQ(loaded.model.path, config.model.path);
  EXPECT_FLOAT_EQ(*loaded.model.score_threshold, 0.123f);
  EXPECT_EQ(loaded.model.classes, (std::vector<std::string>{"person", "2", "true", "null"}));
  EXPECT_EQ(loaded.pipeline.max_frames, 9000000000);
  EXPECT_EQ(loaded.sinks.json, "yes");
  // Every key appears with its description.
  for (const auto& key : config_keys()) EXPECT_TRUE(contains(printed, key.description)) << key.name;
}

TEST(ConfigHelp, ListsEveryKeyWithDefaultAndAccepted) {
  const std::string help = config_help();
  for (const auto& key : config_keys()) {
    EXPECT_TRUE(contains(help, key.name)) << key.name;
    EXPECT_TRUE(contains(help, key.accepted)) << key.name;
  }
}

TEST(ConfigConversion, ToThePipelineTypes) {
  Config config;
  set_config_value(config, "source.uri", "0", "t");
  set_config_value(config, "source.mode", "live", "t");
  set_config_value(config, "model.path", "m.onnx", "t");
  set_config_value(config, "model.input_width", "320", "t");
  set_config_value(config, "model.input_height", "320", "t");
  set_config_value(config, "model.iou", "0.6", "t");
  set_config_value(config, "engine.backend", "onnxruntime", "t");
  set_config_value(config, "engine.workers", "2", "t");
  set_config_value(config, "pipeline.max_in_flight", "3", "t");
  set_config_value(config, "sinks.json", "x.jsonl", "t");

  EXPECT_EQ(to_source_settings(config).mode, SourceMode::live);
  EXPECT_EQ(to_source_settings(config).uri, "0");
  EXPECT_FLOAT_EQ(*to_model_settings(config).iou_threshold, 0.6f);
  const EngineOptions engine = to_engine_options(config);
  EXPECT_EQ(engine.backend, "onnxruntime");
  EXPECT_EQ(engine.input_width, 320);
  EXPECT_EQ(engine.input_height, 320);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(engine.intra_op_threads, std::max(1, cores / 2));
  EXPECT_LE(engine.intra_op_threads * 2, std::max(2, cores));
  const PipelineSettings pipeline = to_pipeline_settings(config);
  EXPECT_EQ(pipeline.workers, 2);
  EXPECT_EQ(pipeline.max_in_flight, 3);
  EXPECT_EQ(to_sink_settings(config).json, "x.jsonl");
  set_config_value(config, "engine.threads", "3", "t");
  EXPECT_EQ(to_engine_options(config).intra_op_threads, 3);
  EXPECT_NO_THROW(validate_for_run(config));
}

TEST(ConfigConversion, AutomaticWorkersFollowTheSource) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  Config config;
  ASSERT_EQ(config.engine.workers, 0);
  const Config file = resolve_engine_layout(config, false);
  EXPECT_EQ(file.engine.workers, cores);
  EXPECT_EQ(resolved_threads(file), 1);
  const Config live = resolve_engine_layout(config, true);
  EXPECT_EQ(live.engine.workers, 1);
  EXPECT_EQ(resolved_threads(live), cores);
  config.engine.threads = 2;  // threads given: as many workers as fit (at least one)
  EXPECT_EQ(resolve_engine_layout(config, false, 8).engine.workers, 4);
  EXPECT_EQ(resolve_engine_layout(config, false, 3).engine.workers, 1);
  EXPECT_EQ(resolve_engine_layout(config, false, 1).engine.workers, 1);
  config.engine.threads = 0;
  EXPECT_EQ(resolve_engine_layout(config, false, 6).engine.workers, 6);  // the cores given, not this machine's
  config.engine.workers = 3;
  config.engine.threads = 2;
  const Config explicit_layout = resolve_engine_layout(config, false);
  EXPECT_EQ(explicit_layout.engine.workers, 3);
  EXPECT_EQ(resolved_threads(explicit_layout), 2);
}

TEST(ConfigValidation, ARunNeedsAModelASourceAndACoherentSize) {
  Config config;
  EXPECT_TRUE(contains(error_of([&] { validate_for_run(config); }), "--model"));
  config.model.path = "m.onnx";
  EXPECT_TRUE(contains(error_of([&] { validate_for_run(config); }), "--source"));
  config.source.uri = "in.mp4";
  config.model.input_width = 320;
  EXPECT_TRUE(contains(error_of([&] { validate_for_run(config); }), "set both or neither"));
  config.model.input_height = 320;
  config.engine.workers = 3;
  config.pipeline.max_in_flight = 2;
  EXPECT_TRUE(contains(error_of([&] { validate_for_run(config); }), "pipeline.max_in_flight = 2"));
}

TEST(ConfigFiles, EveryShippedFileLoads) {
  const auto configs = test::source_dir() / "configs";
  ASSERT_TRUE(std::filesystem::is_directory(configs)) << configs;
  std::set<std::string> loaded;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(configs)) {
    if (entry.path().extension() != ".yaml") continue;
    Config config;
    EXPECT_NO_THROW(config = load_config(entry.path())) << entry.path();
    loaded.insert(std::filesystem::relative(entry.path(), configs).string());
  }
  for (const char* expected : {"camera.yaml", "annotate-file.yaml", "headless-edge.yaml", "multi-camera.yaml",
                               "models/yolov5.yaml", "models/yolov8.yaml", "models/yolov10.yaml", "models/yolox.yaml",
                               "models/nanodet.yaml", "models/blazeface.yaml"}) {
    EXPECT_TRUE(loaded.count(expected)) << expected;
  }
}

TEST(ConfigFiles, ModelCardsNameTheirFamily) {
  const auto cards = test::source_dir() / "configs" / "models";
  const std::vector<std::pair<std::string, std::string>> expected{{"yolov5", "yolov5"},   {"yolov8", "yolov8"},
                                                                  {"yolov10", "yolov10"}, {"yolox", "yolox"},
                                                                  {"nanodet", "nanodet"}, {"blazeface", "ssd"}};
  for (const auto& [file, family] : expected) {
    const Config config = load_config(cards / (file + ".yaml"));
    EXPECT_EQ(config.model.family, family) << file;
    EXPECT_TRUE(config.model.score_threshold) << file;
    EXPECT_GT(config.model.input_width, 0) << file;
  }
}

TEST(ConfigLoading, TrackingAndAnalyticsKeys) {
  Config config;
  merge_config_text(config, R"(
tracking:
  enabled: true
  track_buffer_seconds: 2.5
  confirm_hits: 3
analytics:
  lines:
    - door=100,200,300,400
  zones: [hall=0,0,10,0,10,10]
  anchor: center
  loiter_seconds: 12
sinks:
  mot: tracks.txt
  events: events.jsonl
)",
                    "tracking.yaml");
  EXPECT_TRUE(config.tracking.enabled);
  EXPECT_DOUBLE_EQ(config.tracking.tracker.track_buffer_seconds, 2.5);
  EXPECT_EQ(config.tracking.tracker.confirm_hits, 3);
  ASSERT_EQ(config.tracking.analytics.lines.size(), 1u);
  EXPECT_EQ(config.tracking.analytics.lines[0].name, "door");
  EXPECT_FLOAT_EQ(config.tracking.analytics.lines[0].end.y, 400.0f);
  ASSERT_EQ(config.tracking.analytics.zones.size(), 1u) << "a YAML flow list split at commas is put back together";
  EXPECT_EQ(config.tracking.analytics.zones[0].polygon.size(), 3u);
  EXPECT_EQ(config.tracking.analytics.anchor, track::Anchor::center);
  Config reloaded;
  merge_config_text(reloaded, config_to_yaml(config), "round trip");
  EXPECT_EQ(config_value(reloaded, "analytics.lines"), config_value(config, "analytics.lines"));
  EXPECT_EQ(config_value(reloaded, "analytics.zones"), config_value(config, "analytics.zones"));
  set_config_value(config, "analytics.lines", "a=1,2,3,4,b=5,6,7,8", "--set");
  EXPECT_EQ(config.tracking.analytics.lines.size(), 2u);
  EXPECT_THROW(set_config_value(config, "analytics.lines", "a=1,2,3", "--set"), Error);
  EXPECT_THROW(set_config_value(config, "tracking.confirm_hits", "0", "--set"), Error);

  Config untracked;
  untracked.model.path = "m.onnx";
  untracked.source.uri = "v.mp4";
  untracked.sinks.mot = "tracks.txt";
  EXPECT_THROW(validate_for_run(untracked), Error);
}

TEST(ConfigLoading, DetectionIntervalKey) {
  Config config;
  EXPECT_EQ(config.detection.interval, 1);
  EXPECT_EQ(config_value(config, "detection.interval"), "1");
  EXPECT_EQ(to_pipeline_settings(config).detection_interval, 1);
  merge_config_text(config, "detection: {interval: 3}\ntracking: {enabled: true}\n", "interval.yaml");
  EXPECT_EQ(config.detection.interval, 3);
  EXPECT_EQ(to_pipeline_settings(config).detection_interval, 3);
  EXPECT_TRUE(contains(config_to_yaml(config), "detection:\n"));
  EXPECT_TRUE(contains(config_to_yaml(config), "  interval: 3\n"));

  // Out of range: one line naming the key, the value and what is accepted.
  for (const char* bad : {"0", "-2", "1001", "two", "1.5"}) {
    const std::string error =
        error_of([&] { set_config_value(config, "detection.interval", bad, "--detection-interval"); });
    EXPECT_TRUE(contains(error, "--detection-interval")) << error;
    EXPECT_TRUE(contains(error, "detection.interval")) << error;
    EXPECT_TRUE(contains(error, bad)) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
  EXPECT_EQ(config.detection.interval, 3) << "a refused value changes nothing";

  // More than 1 needs tracking; 1 never does.
  Config run;
  run.model.path = "m.onnx";
  run.source.uri = "v.mp4";
  run.detection.interval = 2;
  const std::string error = error_of([&] { validate_for_run(run); });
  EXPECT_TRUE(contains(error, "detection.interval = 2 needs tracking")) << error;
  EXPECT_TRUE(contains(error, "--track")) << error;
  run.tracking.enabled = true;
  EXPECT_NO_THROW(validate_for_run(run));
  run.tracking.enabled = false;
  run.detection.interval = 1;
  EXPECT_NO_THROW(validate_for_run(run));
}

// Several cameras in one process: `sources:`.
constexpr const char* kTwoCameras = R"(
model:
  path: m.onnx
tracking:
  enabled: true
source:
  loop: true
  reconnect_initial: 0.5
sinks:
  json: out/{camera}.jsonl
  video: out/{camera}-annotated.mp4
analytics:
  lines: [all=0,0,10,10]
sources:
  - name: door
    uri: rtsp://10.0.0.7/stream1
    mode: live
    stall_timeout: 2
    analytics:
      lines: ["entrance=100,0,100,480"]
      zones: ["bench=0,0,50,0,50,50"]
    sinks:
      events: door-events.jsonl
  - name: dock.2
    uri: dock.mp4
)";

Config two_cameras() {
  Config config;
  merge_config_text(config, kTwoCameras, "config two.yaml");
  return config;
}

TEST(ConfigSources, EntriesWithTheirOwnKeysOverTheSharedOnes) {
  const Config config = two_cameras();
  ASSERT_EQ(config.sources.size(), 2u);
  EXPECT_EQ(config.sources[0].name, "door");
  EXPECT_EQ(config.sources[0].uri, "rtsp://10.0.0.7/stream1");
  EXPECT_TRUE(config.source.uri.empty());
  EXPECT_NO_THROW(validate_for_run(config));

  const auto streams = to_stream_settings(config);
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_EQ(streams[0].name, "door");
  EXPECT_EQ(streams[0].source.uri, "rtsp://10.0.0.7/stream1");
  EXPECT_EQ(streams[0].source.mode, SourceMode::live);
  EXPECT_DOUBLE_EQ(streams[0].source.stall_timeout, 2);
  EXPECT_DOUBLE_EQ(streams[0].source.reconnect_initial, 0.5) << "shared keys reach every stream";
  EXPECT_TRUE(streams[0].source.loop);
  EXPECT_EQ(streams[0].sinks.json, "out/door.jsonl");
  EXPECT_EQ(streams[0].sinks.video, "out/door-annotated.mp4");
  EXPECT_EQ(streams[0].sinks.events, "door-events.jsonl");
  ASSERT_EQ(streams[0].options.analytics.lines.size(), 1u);
  EXPECT_EQ(streams[0].options.analytics.lines[0].name, "entrance");
  ASSERT_EQ(streams[0].options.analytics.zones.size(), 1u);
  EXPECT_TRUE(streams[0].options.tracking);

  EXPECT_EQ(streams[1].name, "dock.2");
  EXPECT_EQ(streams[1].source.uri, "dock.mp4");
  EXPECT_EQ(streams[1].source.mode, SourceMode::automatic);
  EXPECT_EQ(streams[1].sinks.json, "out/dock.2.jsonl");
  EXPECT_TRUE(streams[1].sinks.events.empty());
  ASSERT_EQ(streams[1].options.analytics.lines.size(), 1u);
  EXPECT_EQ(streams[1].options.analytics.lines[0].name, "all");

  // A flag given after the file still reaches the streams that do not set the key.
  Config flagged = config;
  set_config_value(flagged, "source.stall_timeout", "7", "--flag");
  EXPECT_DOUBLE_EQ(to_stream_settings(flagged)[0].source.stall_timeout, 2);
  EXPECT_DOUBLE_EQ(to_stream_settings(flagged)[1].source.stall_timeout, 7);

  // Without sources: one unnamed stream of the top-level keys, paths untouched.
  Config single;
  set_config_value(single, "source.uri", "in.mp4", "t");
  set_config_value(single, "sinks.json", "{camera}.jsonl", "t");
  const auto one = to_stream_settings(single);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].name, "");
  EXPECT_EQ(one[0].source.uri, "in.mp4");
  EXPECT_EQ(one[0].sinks.json, "{camera}.jsonl");
}

TEST(ConfigSources, PrintConfigRoundTripsTheList) {
  const Config config = two_cameras();
  const std::string printed = config_to_yaml(config);
  EXPECT_TRUE(contains(printed, "\nsources:\n  - name: door\n    uri: ")) << printed;
  Config loaded;
  merge_config_text(loaded, printed, "printed");
  EXPECT_EQ(loaded.sources, config.sources);
  EXPECT_EQ(config_to_yaml(loaded), printed);
  EXPECT_FALSE(contains(config_to_yaml(Config{}), "\nsources:\n")) << "no list, no section";
}

TEST(ConfigSources, ALaterFileReplacesTheList) {
  Config config = two_cameras();
  merge_config_text(config, "sources:\n  - {name: a, uri: a.mp4}\n", "second");
  ASSERT_EQ(config.sources.size(), 1u);
  EXPECT_EQ(config.sources[0].name, "a");
}

// One line, naming the origin and `expected`, and the configuration unchanged.
void expect_sources_error(const std::string& yaml, const std::string& expected) {
  Config config;
  const std::string error = error_of([&] { merge_config_text(config, yaml, "config bad.yaml"); });
  EXPECT_TRUE(contains(error, "config bad.yaml")) << error;
  EXPECT_TRUE(contains(error, expected)) << "expected '" << expected << "' in: " << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_TRUE(config.sources.empty());
}

TEST(ConfigSources, ErrorsNameTheOffendingValue) {
  expect_sources_error("sources: []\n", "sources: an empty list");
  expect_sources_error("sources:\n", "sources: an empty list");
  expect_sources_error("sources: cam.mp4\n", "must be a list");
  expect_sources_error("sources:\n  - a.mp4\n", "each entry must be a mapping");
  expect_sources_error("sources:\n  - {uri: a.mp4}\n", "an entry without a name (uri a.mp4)");
  expect_sources_error("sources:\n  - {name: a}\n", "stream 'a' has no uri");
  expect_sources_error("sources:\n  - {name: a, uri: a.mp4}\n  - {name: a, uri: b.mp4}\n", "duplicate stream name 'a'");
  expect_sources_error("sources:\n  - {name: a b, uri: a.mp4}\n", "name 'a b' is not a name");
  expect_sources_error("sources:\n  - {name: a, uri: a.mp4, mode: sideways}\n", "source.mode = 'sideways'");
  expect_sources_error("sources:\n  - {name: a, uri: a.mp4, conf: 0.5}\n", "unknown key 'source.conf'");
  expect_sources_error("sources:\n  - {name: a, uri: a.mp4, sinks: {display: off}}\n", "unknown key 'sinks.display'");
  expect_sources_error("sources:\n  - {name: a, uri: a.mp4, analytics: {lines: [x]}}\n", "analytics.lines");
  expect_sources_error("source:\n  uri: x.mp4\nsources:\n  - {name: a, uri: a.mp4}\n",
                       "sources: and source.uri = 'x.mp4' exclude each other");
  expect_sources_error("sources:\n  - {name: a, uri: a.mp4}\n  - {name: b, uri: [b.mp4]}\n", "line 3");
}

TEST(ConfigSources, AnOutputTwoStreamsWouldShareIsAnError) {
  Config config;
  set_config_value(config, "model.path", "m.onnx", "t");
  merge_config_text(config, "sources:\n  - {name: a, uri: a.mp4}\n  - {name: b, uri: b.mp4}\n", "t");
  EXPECT_NO_THROW(validate_for_run(config));
  set_config_value(config, "sinks.json", "out.jsonl", "--json");
  std::string error = error_of([&] { validate_for_run(config); });
  EXPECT_TRUE(contains(error, "sinks.json = 'out.jsonl'")) << error;
  EXPECT_TRUE(contains(error, "stream 'a' and stream 'b'")) << error;
  EXPECT_TRUE(contains(error, "{camera}")) << error;
  EXPECT_THROW(to_stream_settings(config), Error);
  set_config_value(config, "sinks.json", "out-{camera}.jsonl", "--json");
  EXPECT_NO_THROW(validate_for_run(config));

  // Two per-stream paths that are the same file (also spelled differently).
  merge_config_text(config,
                    "sources:\n  - {name: a, uri: a.mp4, sinks: {video: v/x.mp4}}\n"
                    "  - {name: b, uri: b.mp4, sinks: {video: v/../v/x.mp4}}\n",
                    "t");
  error = error_of([&] { validate_for_run(config); });
  EXPECT_TRUE(contains(error, "sinks.video = 'v/../v/x.mp4'")) << error;
  EXPECT_TRUE(contains(error, "stream 'a' and stream 'b'")) << error;

  // A stream's own keys are checked as a single stream's would be, naming the stream.
  merge_config_text(config, "sources:\n  - {name: a, uri: a.mp4, sinks: {events: e.jsonl}}\n", "t");
  error = error_of([&] { validate_for_run(config); });
  EXPECT_TRUE(contains(error, "stream 'a'")) << error;
  EXPECT_TRUE(contains(error, "sinks.events needs tracking")) << error;

  // source.uri set after the list (a flag) excludes it too.
  merge_config_text(config, "sources:\n  - {name: a, uri: a.mp4}\n", "t");
  set_config_value(config, "source.uri", "x.mp4", "--source");
  EXPECT_TRUE(contains(error_of([&] { validate_for_run(config); }), "exclude each other"));
}

}  // namespace
}  // namespace detflow
