// The configuration key registry and everything it drives: YAML loading, command-line
// overrides, --print-config and help. Each key is one row built by a typed helper below;
// its default text is read back from a default Config so the table cannot drift from
// the struct initialisers.
#include "detflow/pipeline/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "detflow/error.h"
#include "detflow/post/decoder.h"

namespace detflow {

namespace {

// A key's value in transit between YAML or the command line and the typed field.
struct Value {
  bool is_null = false;
  bool is_list = false;
  std::string scalar;
  std::vector<std::string> items;
};

// Why a value was refused; the caller adds origin, key, value and what is accepted.
struct Refusal {
  std::string reason;
};

struct Entry {
  ConfigKey key;
  std::function<void(Config&, const Value&)> set;
  std::function<Value(const Config&)> get;
};

Value scalar(std::string text) {
  Value value;
  value.scalar = std::move(text);
  return value;
}

Value null_value() {
  Value value;
  value.is_null = true;
  return value;
}

std::string lowercase(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return std::string(text.substr(first, last - first + 1));
}

const std::string& only_scalar(const Value& value) {
  if (value.is_list) throw Refusal{"a list is not accepted here"};
  if (value.is_null) throw Refusal{"null is not accepted here"};
  return value.scalar;
}

// Shortest text that reads back to the same value.
template <typename Number>
std::string number_text(Number number) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, number);
  return std::string(buffer, result.ptr);
}

template <typename Integer>
Integer parse_integer(const Value& value, Integer minimum, Integer maximum) {
  const std::string text = trim(only_scalar(value));
  Integer number{};
  const auto result = std::from_chars(text.data(), text.data() + text.size(), number);
  if (result.ec == std::errc::result_out_of_range) throw Refusal{"out of range"};
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) throw Refusal{"not a whole number"};
  if (number < minimum || number > maximum) throw Refusal{"out of range"};
  return number;
}

double parse_number(const Value& value, double minimum, double maximum) {
  const std::string text = trim(only_scalar(value));
  double number = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), number);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size() || !std::isfinite(number)) {
    throw Refusal{"not a number"};
  }
  if (number < minimum || number > maximum) throw Refusal{"out of range"};
  return number;
}

bool parse_boolean(const Value& value) {
  const std::string text = lowercase(trim(only_scalar(value)));
  if (text == "true" || text == "yes" || text == "on" || text == "1") return true;
  if (text == "false" || text == "no" || text == "off" || text == "0") return false;
  throw Refusal{"not a boolean"};
}

std::vector<std::string> parse_list(const Value& value) {
  if (value.is_null) return {};
  std::vector<std::string> items;
  if (value.is_list) {
    for (const auto& item : value.items) items.push_back(trim(item));
  } else {
    // Command lines and scalar YAML values give lists as "a,b,c".
    std::string_view rest = value.scalar;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      items.push_back(trim(rest.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    if (items.size() == 1 && items.front().empty()) items.clear();
  }
  for (const auto& item : items) {
    if (item.empty()) throw Refusal{"empty list item"};
  }
  return items;
}

Value list_value(const std::vector<std::string>& items) {
  Value value;
  value.is_list = true;
  value.items = items;
  return value;
}

template <typename Number>
std::string range_text(Number minimum, Number maximum) {
  return number_text(minimum) + " to " + number_text(maximum);
}

// Typed row builders. `access` is a generic lambda returning a reference to the field for
// both Config& and const Config&.
template <typename Access>
Entry text_entry(std::string name, std::string accepted, std::string description, Access access,
                 std::function<void(const std::string&)> check = {}) {
  return {{std::move(name), "text", {}, std::move(accepted), std::move(description)},
          [access, check](Config& config, const Value& value) {
            const std::string text = value.is_null ? std::string() : trim(only_scalar(value));
            if (check) check(text);
            access(config) = text;
          },
          [access](const Config& config) { return scalar(access(config)); }};
}

template <typename Access>
Entry path_entry(std::string name, std::string accepted, std::string description, Access access,
                 std::function<void(const std::filesystem::path&)> check = {}) {
  return {{std::move(name), "path", {}, std::move(accepted), std::move(description)},
          [access, check](Config& config, const Value& value) {
            const std::filesystem::path path = value.is_null ? std::string() : trim(only_scalar(value));
            if (check && !path.empty()) check(path);
            access(config) = path;
          },
          [access](const Config& config) { return scalar(access(config).string()); }};
}

template <typename Integer, typename Access>
Entry integer_entry(std::string name, Integer minimum, Integer maximum, std::string meaning_of_zero,
                    std::string description, Access access) {
  std::string accepted = range_text(minimum, maximum);
  if (!meaning_of_zero.empty()) accepted += " (0: " + meaning_of_zero + ")";
  return {{std::move(name), "integer", {}, std::move(accepted), std::move(description)},
          [access, minimum, maximum](Config& config, const Value& value) {
            access(config) = parse_integer<Integer>(value, minimum, maximum);
          },
          [access](const Config& config) { return scalar(number_text(access(config))); }};
}

template <typename Access>
Entry number_entry(std::string name, double minimum, double maximum, std::string meaning_of_zero,
                   std::string description, Access access) {
  std::string accepted = range_text(minimum, maximum);
  if (!meaning_of_zero.empty()) accepted += " (0: " + meaning_of_zero + ")";
  return {{std::move(name), "number", {}, std::move(accepted), std::move(description)},
          [access, minimum, maximum](Config& config, const Value& value) {
            access(config) = parse_number(value, minimum, maximum);
          },
          [access](const Config& config) { return scalar(number_text(access(config))); }};
}

template <typename Access>
Entry boolean_entry(std::string name, std::string description, Access access) {
  return {{std::move(name), "boolean", {}, "true or false", std::move(description)},
          [access](Config& config, const Value& value) { access(config) = parse_boolean(value); },
          [access](const Config& config) { return scalar(access(config) ? "true" : "false"); }};
}

// Optional fields: null (or "auto" from a command line) leaves the choice to the family.
bool means_unset(const Value& value) {
  return value.is_null ||
         (!value.is_list && (lowercase(trim(value.scalar)) == "null" || lowercase(trim(value.scalar)) == "auto"));
}

template <typename Access>
Entry optional_fraction_entry(std::string name, std::string description, Access access) {
  return {{std::move(name), "number", {}, "0 to 1, or null (the family's default)", std::move(description)},
          [access](Config& config, const Value& value) {
            if (means_unset(value)) {
              access(config).reset();
            } else {
              access(config) = static_cast<float>(parse_number(value, 0.0, 1.0));
            }
          },
          [access](const Config& config) {
            const auto& field = access(config);
            return field ? scalar(number_text(*field)) : null_value();
          }};
}

template <typename Access>
Entry optional_integer_entry(std::string name, int minimum, int maximum, std::string description, Access access) {
  return {{std::move(name),
           "integer",
           {},
           range_text(minimum, maximum) + ", or null (the family's default)",
           std::move(description)},
          [access, minimum, maximum](Config& config, const Value& value) {
            if (means_unset(value)) {
              access(config).reset();
            } else {
              access(config) = parse_integer<int>(value, minimum, maximum);
            }
          },
          [access](const Config& config) {
            const auto& field = access(config);
            return field ? scalar(number_text(*field)) : null_value();
          }};
}

template <typename Access>
Entry optional_boolean_entry(std::string name, std::string description, Access access) {
  return {{std::move(name), "boolean", {}, "true, false, or null (the family's default)", std::move(description)},
          [access](Config& config, const Value& value) {
            if (means_unset(value)) {
              access(config).reset();
            } else {
              access(config) = parse_boolean(value);
            }
          },
          [access](const Config& config) {
            const auto& field = access(config);
            return field ? scalar(*field ? "true" : "false") : null_value();
          }};
}

template <typename Enum>
using Choices = std::vector<std::pair<std::string, Enum>>;

template <typename Enum>
std::string choices_text(const Choices<Enum>& choices) {
  std::string text;
  for (const auto& [name, unused] : choices) text += (text.empty() ? "" : " | ") + name;
  return text;
}

// The value named by a scalar (case-insensitive), or a Refusal.
template <typename Enum>
Enum parse_choice(const Choices<Enum>& choices, const Value& value) {
  const std::string text = lowercase(trim(only_scalar(value)));
  for (const auto& [choice_name, choice] : choices) {
    if (text == choice_name) return choice;
  }
  throw Refusal{"not one of the choices"};
}

// The name of a value; `fallback` when the table has none.
template <typename Enum>
std::string choice_name_of(const Choices<Enum>& choices, const Enum& value, const std::string& fallback) {
  for (const auto& [choice_name, choice] : choices) {
    if (value == choice) return choice_name;
  }
  return fallback;
}

template <typename Enum, typename Access>
Entry choice_entry(std::string name, Choices<Enum> choices, std::string description, Access access) {
  const std::string accepted = choices_text(choices);
  return {{std::move(name), "choice", {}, accepted, std::move(description)},
          [access, choices](Config& config, const Value& value) { access(config) = parse_choice(choices, value); },
          [access, choices](const Config& config) {
            return scalar(choice_name_of(choices, access(config), choices.front().first));
          }};
}

// Optional enums (preprocessing overrides): "auto" leaves the family's choice.
template <typename Enum, typename Access>
Entry optional_choice_entry(std::string name, Choices<Enum> choices, std::string description, Access access) {
  const std::string accepted = "auto | " + choices_text(choices);
  return {{std::move(name), "choice", {}, accepted, std::move(description)},
          [access, choices](Config& config, const Value& value) {
            if (means_unset(value)) {
              access(config).reset();
              return;
            }
            access(config) = parse_choice(choices, value);
          },
          [access, choices](const Config& config) {
            const auto& field = access(config);
            return scalar(field ? choice_name_of(choices, *field, "auto") : std::string("auto"));
          }};
}

template <typename Access>
Entry list_entry(std::string name, std::string accepted, std::string description, Access access,
                 std::function<void(const std::vector<std::string>&)> check = {}) {
  return {{std::move(name), "list", {}, std::move(accepted), std::move(description)},
          [access, check](Config& config, const Value& value) {
            auto items = parse_list(value);
            if (check) check(items);
            access(config) = std::move(items);
          },
          [access](const Config& config) { return list_value(access(config)); }};
}

std::string family_choices() {
  std::string text = "auto";
  for (const auto& family : registered_families()) text += " | " + family.name;
  return text;
}

void check_family(const std::string& name) {
  if (name == "auto") return;
  for (const auto& family : registered_families()) {
    if (family.name == name) return;
  }
  throw Refusal{"not a registered family"};
}

void check_identifier(const std::string& text) {
  if (text.empty()) throw Refusal{"empty"};
  for (const char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') throw Refusal{"not a name"};
  }
}

void check_video_extension(const std::filesystem::path& path) {
  const std::string extension = lowercase(path.extension().string());
  if (extension != ".mp4" && extension != ".mkv" && extension != ".avi")
    throw Refusal{"not a supported video extension"};
}

void check_backend(const std::string& text) {
  if (text != "auto" && text != "onnxruntime" && text != "opencv") throw Refusal{"not a backend"};
}

constexpr int maximum_image_side = 16384;

std::vector<Entry> build_registry() {
  std::vector<Entry> entries;
  auto add = [&entries](Entry entry) { entries.push_back(std::move(entry)); };

  // source
  add(text_entry(
      "source.uri", "a path, folder, glob, camera index, /dev/videoN, rtsp:// http(s):// udp:// URL or gst:<pipeline>",
      "where frames come from", [](auto& config) -> auto& { return config.source.uri; }));
  add(choice_entry<SourceMode>(
      "source.mode", {{"auto", SourceMode::automatic}, {"live", SourceMode::live}, {"file", SourceMode::file}},
      "live drops frames to stay current, file processes every frame; auto guesses from the source",
      [](auto& config) -> auto& { return config.source.mode; }));
  add(integer_entry<int>(
      "source.width", 0, maximum_image_side, "device default", "camera: requested frame width in pixels",
      [](auto& config) -> auto& { return config.source.width; }));
  add(integer_entry<int>(
      "source.height", 0, maximum_image_side, "device default", "camera: requested frame height in pixels",
      [](auto& config) -> auto& { return config.source.height; }));
  add(number_entry(
      "source.fps", 0, 1000, "device default", "camera: requested frames per second",
      [](auto& config) -> auto& { return config.source.fps; }));
  add(boolean_entry(
      "source.loop", "files: start again at the end (demos, soak tests)",
      [](auto& config) -> auto& { return config.source.loop; }));
  add(choice_entry<std::string>(
      "source.video_reader", {{"auto", "auto"}, {"opencv", "opencv"}, {"gstreamer", "gstreamer"}},
      "video files: auto reads with FFmpeg (frames identical to cv2.VideoCapture) and falls back to GStreamer; "
      "gstreamer lets decodebin pick hardware decoders",
      [](auto& config) -> auto& { return config.source.video_reader; }));

  // model
  add(path_entry(
      "model.path", "an .onnx file", "the detector to run", [](auto& config) -> auto& { return config.model.path; }));
  add(text_entry(
      "model.family", family_choices(), "decoder family; auto detects it from the model's outputs",
      [](auto& config) -> auto& { return config.model.family; }, check_family));
  add(integer_entry<int>(
      "model.input_width", 0, maximum_image_side, "fixed in the model, else metadata, else 640",
      "input width in pixels for models with a dynamic size",
      [](auto& config) -> auto& { return config.model.input_width; }));
  add(integer_entry<int>(
      "model.input_height", 0, maximum_image_side, "fixed in the model, else metadata, else 640",
      "input height in pixels for models with a dynamic size",
      [](auto& config) -> auto& { return config.model.input_height; }));
  add(path_entry(
      "model.labels", "a text file, one class name per line, or empty",
      "class names when the model's metadata has none",
      [](auto& config) -> auto& { return config.model.labels_file; }));
  add(optional_fraction_entry(
      "model.conf", "score threshold: keep detections scoring at least this",
      [](auto& config) -> auto& { return config.model.score_threshold; }));
  add(optional_fraction_entry(
      "model.iou", "NMS IoU threshold: suppress boxes overlapping a better one by more",
      [](auto& config) -> auto& { return config.model.iou_threshold; }));
  add(optional_integer_entry(
      "model.max_det", 1, 100000, "at most this many detections per frame",
      [](auto& config) -> auto& { return config.model.max_detections; }));
  add(optional_boolean_entry(
      "model.agnostic", "NMS across classes instead of per class",
      [](auto& config) -> auto& { return config.model.class_agnostic; }));
  add(list_entry(
      "model.classes", "class names or ids, e.g. [person, 2]; empty keeps all", "keep only these classes",
      [](auto& config) -> auto& { return config.model.classes; }));
  add(optional_choice_entry<ResizeMode>(
      "model.resize",
      {{"letterbox_center", ResizeMode::letterbox_center},
       {"letterbox_top_left", ResizeMode::letterbox_top_left},
       {"stretch", ResizeMode::stretch}},
      "how frames are fitted to the input; auto: the family's way",
      [](auto& config) -> auto& { return config.model.resize; }));
  add(optional_choice_entry<ColorOrder>(
      "model.color", {{"bgr", ColorOrder::bgr}, {"rgb", ColorOrder::rgb}},
      "channel order the model expects; auto: the family's", [](auto& config) -> auto& { return config.model.color; }));

  // engine
  add(text_entry(
      "engine.backend", "auto | onnxruntime | opencv",
      "inference engine; auto: ONNX Runtime when built in and able, else OpenCV",
      [](auto& config) -> auto& { return config.engine.backend; }, check_backend));
  add(text_entry(
      "engine.target", "cpu | opencl | opencl_fp16 (OpenCV), or an ONNX Runtime provider (cuda, ...)",
      "device to run on; unavailable targets fall back to cpu with a warning",
      [](auto& config) -> auto& { return config.engine.target; }, check_identifier));
  add(list_entry(
      "engine.providers", "ONNX Runtime provider names, e.g. [cuda, cpu]; empty: [target, cpu]",
      "ONNX Runtime execution providers in preference order",
      [](auto& config) -> auto& { return config.engine.providers; },
      [](const std::vector<std::string>& items) { std::for_each(items.begin(), items.end(), check_identifier); }));
  add(integer_entry<int>(
      "engine.workers", 0, 64, "files: one per core (or cores / threads); live sources: 1",
      "inference workers, each with its own engine", [](auto& config) -> auto& { return config.engine.workers; }));
  add(integer_entry<int>(
      "engine.threads", 0, 256, "cores / workers, at least 1",
      "intra-op threads per worker (workers x threads should not exceed the cores)",
      [](auto& config) -> auto& { return config.engine.threads; }));

  // pipeline
  add(integer_entry<int>(
      "pipeline.max_in_flight", 0, 1024, "workers when live, workers + 1 for files",
      "frames between capture and output at most (bounds memory and latency)",
      [](auto& config) -> auto& { return config.pipeline.max_in_flight; }));
  add(integer_entry<std::int64_t>(
      "pipeline.max_frames", 0, std::numeric_limits<std::int64_t>::max(), "no limit", "stop after this many frames",
      [](auto& config) -> auto& { return config.pipeline.max_frames; }));
  add(number_entry(
      "pipeline.stats_interval", 0, 86400, "only at the end", "seconds between statistics reports while running",
      [](auto& config) -> auto& { return config.pipeline.stats_interval_s; }));
  add(boolean_entry(
      "pipeline.progress", "show progress on stderr while running",
      [](auto& config) -> auto& { return config.pipeline.progress; }));

  // sinks
  add(path_entry(
      "sinks.video", "a .mp4, .mkv or .avi file, or empty",
      "annotated video (H.264 in MP4/MKV, MJPG in AVI) at the source's rate",
      [](auto& config) -> auto& { return config.sinks.video; }, check_video_extension));
  add(path_entry(
      "sinks.json", "a file, or empty", "detections as JSON Lines, one line per frame",
      [](auto& config) -> auto& { return config.sinks.json; }));
  add(path_entry(
      "sinks.images", "a folder (created when missing), or empty", "annotated images under the source images' names",
      [](auto& config) -> auto& { return config.sinks.images; }));
  add(choice_entry<DisplayMode>(
      "sinks.display", {{"auto", DisplayMode::automatic}, {"on", DisplayMode::on}, {"off", DisplayMode::off}},
      "a window with the annotated frames; auto: when a display exists",
      [](auto& config) -> auto& { return config.sinks.display; }));
  add(path_entry(
      "sinks.stats_json", "a file, or empty", "run statistics as JSON after the run",
      [](auto& config) -> auto& { return config.stats_json; }));

  const Config defaults;
  for (auto& entry : entries) {
    const Value value = entry.get(defaults);
    if (value.is_null) {
      entry.key.default_value = "null";
    } else if (value.is_list) {
      entry.key.default_value = "[]";
    } else {
      entry.key.default_value = value.scalar.empty() ? "\"\"" : value.scalar;
    }
  }
  return entries;
}

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = build_registry();
  return entries;
}

const Entry* find_entry(std::string_view name) {
  for (const auto& entry : registry()) {
    if (entry.key.name == name) return &entry;
  }
  return nullptr;
}

std::string section_of(std::string_view name) { return std::string(name.substr(0, name.find('.'))); }

std::string known_keys_of(const std::string& section) {
  std::string text;
  for (const auto& entry : registry()) {
    if (section_of(entry.key.name) == section) {
      text += (text.empty() ? "" : ", ") + entry.key.name.substr(section.size() + 1);
    }
  }
  return text;
}

std::string joined_sections() {
  std::string text;
  for (const auto& section : config_sections()) text += (text.empty() ? "" : ", ") + section;
  return text;
}

std::string shown(const Value& value) {
  if (value.is_null) return "null";
  if (!value.is_list) return "'" + value.scalar + "'";
  std::string text = "[";
  for (const auto& item : value.items) text += (text.size() > 1 ? ", " : "") + item;
  return text + "]";
}

void apply(Config& config, const Entry& entry, const Value& value, std::string_view origin) {
  try {
    entry.set(config, value);
  } catch (const Refusal& refusal) {
    throw Error(std::string(origin) + ": " + entry.key.name + " = " + shown(value) + ": " + refusal.reason +
                "; accepted: " + entry.key.accepted);
  }
}

std::string at_line(const YAML::Mark& mark) {
  if (mark.line < 0) return {};
  return " (line " + std::to_string(mark.line + 1) + ")";
}

Value value_of(const YAML::Node& node, const std::string& key, std::string_view origin) {
  Value value;
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      value.is_null = true;
      return value;
    case YAML::NodeType::Scalar:
      value.scalar = node.Scalar();
      return value;
    case YAML::NodeType::Sequence:
      value.is_list = true;
      for (const auto& item : node) {
        if (!item.IsScalar()) {
          throw Error(
              std::string(origin) + at_line(item.Mark()) + ": " + key +
              ": list items must be plain values, not lists or mappings; accepted: " + find_entry(key)->key.accepted);
        }
        value.items.push_back(item.Scalar());
      }
      return value;
    case YAML::NodeType::Map:
      break;
  }
  throw Error(std::string(origin) + at_line(node.Mark()) + ": " + key +
              ": a mapping is not accepted; accepted: " + find_entry(key)->key.accepted);
}

// Plain words and paths stay unquoted for readability; anything YAML could read as another
// type (true, null, 0.5, "~") or that holds special characters is double-quoted, so the
// printed file loads back to the same value.
bool plain_is_safe(const std::string& text) {
  if (text.empty()) return false;
  const unsigned char first = static_cast<unsigned char>(text.front());
  if (!std::isalpha(first) && first != '_' && first != '/' && first != '.') return false;
  for (const char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' && c != '/') return false;
  }
  static const char* const reserved[] = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", ".nan", ".inf"};
  const std::string lower = lowercase(text);
  return std::none_of(std::begin(reserved), std::end(reserved), [&lower](const char* word) { return lower == word; });
}

std::string yaml_scalar(const std::string& text, const std::string& type) {
  if (type == "integer" || type == "number" || type == "boolean") return text;
  if (plain_is_safe(text)) return text;
  YAML::Emitter emitter;
  emitter << YAML::DoubleQuoted << text;
  return emitter.c_str();
}

std::string yaml_text(const Value& value, const std::string& type) {
  if (value.is_null) return "null";
  if (!value.is_list) return yaml_scalar(value.scalar, type);
  std::string text = "[";
  for (const auto& item : value.items) text += (text.size() > 1 ? ", " : "") + yaml_scalar(item, "text");
  return text + "]";
}

void merge_sections(Config& merged, const YAML::Node& root, std::string_view origin);

}  // namespace

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> result;
    for (const auto& entry : registry()) result.push_back(entry.key);
    return result;
  }();
  return keys;
}

const std::vector<std::string>& config_sections() {
  static const std::vector<std::string> sections{"source", "model", "engine", "pipeline", "sinks"};
  return sections;
}

void merge_config_text(Config& config, std::string_view yaml, std::string_view origin) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& error) {
    throw Error(std::string(origin) + ": invalid YAML at line " + std::to_string(error.mark.line + 1) + ", column " +
                std::to_string(error.mark.column + 1) + ": " + error.msg);
  }
  if (root.IsNull()) return;  // an empty file changes nothing
  if (!root.IsMap()) {
    throw Error(std::string(origin) + ": expected a mapping of sections (" + joined_sections() + ") at the top");
  }
  // Validate into a copy so a failing file leaves `config` untouched.
  Config merged = config;
  try {
    merge_sections(merged, root, origin);
  } catch (const YAML::Exception& error) {
    throw Error(std::string(origin) + ": unexpected YAML structure at line " + std::to_string(error.mark.line + 1) +
                ": " + error.msg);
  }
  config = std::move(merged);
}

namespace {

void merge_sections(Config& merged, const YAML::Node& root, std::string_view origin) {
  for (const auto& section_item : root) {
    const std::string section = section_item.first.as<std::string>();
    const auto& known = config_sections();
    if (std::find(known.begin(), known.end(), section) == known.end()) {
      throw Error(std::string(origin) + at_line(section_item.first.Mark()) + ": unknown section '" + section +
                  "'; known sections: " + joined_sections());
    }
    const YAML::Node& keys = section_item.second;
    if (keys.IsNull()) continue;
    if (!keys.IsMap()) {
      throw Error(std::string(origin) + at_line(keys.Mark()) + ": section '" + section +
                  "' must be a mapping of keys (" + known_keys_of(section) + ")");
    }
    for (const auto& key_item : keys) {
      const std::string name = section + "." + key_item.first.as<std::string>();
      const Entry* entry = find_entry(name);
      if (!entry) {
        throw Error(std::string(origin) + at_line(key_item.first.Mark()) + ": unknown key '" + name +
                    "'; known keys in " + section + ": " + known_keys_of(section));
      }
      apply(merged, *entry, value_of(key_item.second, name, origin),
            std::string(origin) + at_line(key_item.second.Mark()));
    }
  }
}

}  // namespace

void merge_config_file(Config& config, const std::filesystem::path& file) {
  const std::string origin = "config " + file.string();
  std::error_code error;
  if (std::filesystem::is_directory(file, error)) throw Error(origin + ": is a directory; expected a YAML file");
  if (!std::filesystem::exists(file, error)) throw Error(origin + ": no such file");
  std::ifstream stream(file);
  if (!stream) throw Error(origin + ": cannot be read");
  std::stringstream text;
  text << stream.rdbuf();
  merge_config_text(config, text.str(), origin);
}

Config load_config(const std::filesystem::path& file) {
  Config config;
  merge_config_file(config, file);
  return config;
}

void set_config_value(Config& config, std::string_view key, std::string_view value, std::string_view origin) {
  const Entry* entry = find_entry(key);
  if (!entry) {
    const std::string section = section_of(key);
    const auto& known = config_sections();
    if (std::find(known.begin(), known.end(), section) == known.end()) {
      throw Error(std::string(origin) + ": unknown key '" + std::string(key) +
                  "'; known sections: " + joined_sections());
    }
    throw Error(std::string(origin) + ": unknown key '" + std::string(key) + "'; known keys in " + section + ": " +
                known_keys_of(section));
  }
  apply(config, *entry, scalar(std::string(value)), origin);
}

std::string config_value(const Config& config, std::string_view key) {
  const Entry* entry = find_entry(key);
  if (!entry) throw Error("unknown configuration key '" + std::string(key) + "'");
  return yaml_text(entry->get(config), entry->key.type);
}

std::string config_to_yaml(const Config& config) {
  std::ostringstream out;
  out << "# detflow configuration: every key with its value; the comment above each says what it\n"
         "# does and what it accepts. Load it with `detflow run -c FILE`.\n";
  std::string current_section;
  for (const auto& entry : registry()) {
    const std::string section = section_of(entry.key.name);
    if (section != current_section) {
      out << (current_section.empty() ? "" : "\n") << section << ":\n";
      current_section = section;
    }
    out << "  # " << entry.key.description << " [" << entry.key.accepted << "; default " << entry.key.default_value
        << "]\n";
    out << "  " << entry.key.name.substr(section.size() + 1) << ": " << yaml_text(entry.get(config), entry.key.type)
        << "\n";
  }
  return out.str();
}

std::string config_help() {
  std::size_t width = 0;
  for (const auto& key : config_keys()) width = std::max(width, key.name.size());
  std::ostringstream out;
  out << "Configuration keys (YAML section.key; defaults in brackets):\n";
  for (const auto& key : config_keys()) {
    out << "  " << key.name << std::string(width - key.name.size() + 2, ' ') << key.description << " ["
        << key.default_value << "]\n"
        << "  " << std::string(width + 2, ' ') << "accepted: " << key.accepted << "\n";
  }
  return out.str();
}

int resolved_threads(const Config& config) {
  if (config.engine.threads > 0) return config.engine.threads;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, config.engine.workers));
}

Config resolve_engine_layout(Config config, bool live_source, int cores) {
  if (config.engine.workers != 0) return config;
  if (cores <= 0) cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (live_source) {
    config.engine.workers = 1;
  } else if (config.engine.threads > 0) {
    config.engine.workers = std::max(1, cores / config.engine.threads);  // as many as fit the cores
  } else {
    config.engine.workers = cores;
    config.engine.threads = 1;
  }
  return config;
}

void validate_for_run(const Config& config) {
  if (config.model.path.empty()) {
    throw Error("no model: set model.path in the configuration or pass --model FILE.onnx");
  }
  if (config.source.uri.empty()) {
    throw Error("no source: set source.uri in the configuration or pass --source (a file, folder, camera or URL)");
  }
  if ((config.model.input_width == 0) != (config.model.input_height == 0)) {
    throw Error("model.input_width = " + std::to_string(config.model.input_width) +
                " and model.input_height = " + std::to_string(config.model.input_height) +
                ": set both or neither (0 = automatic); e.g. --size 640 or --size 640x480");
  }
  if (config.pipeline.max_in_flight != 0 && config.engine.workers != 0 &&
      config.pipeline.max_in_flight < config.engine.workers) {
    throw Error("pipeline.max_in_flight = " + std::to_string(config.pipeline.max_in_flight) + " is below " +
                "engine.workers = " + std::to_string(config.engine.workers) +
                "; accepted: 0 (automatic) or at least the number of workers");
  }
}

SourceSettings to_source_settings(const Config& config) { return config.source; }

ModelSettings to_model_settings(const Config& config) { return config.model; }

EngineOptions to_engine_options(const Config& config) {
  EngineOptions options;
  options.backend = config.engine.backend;
  options.target = config.engine.target;
  options.providers = config.engine.providers;
  options.intra_op_threads = resolved_threads(config);
  options.input_width = config.model.input_width;
  options.input_height = config.model.input_height;
  return options;
}

PipelineSettings to_pipeline_settings(const Config& config) {
  PipelineSettings settings;
  settings.workers = std::max(1, config.engine.workers);  // 0 left unresolved: one worker
  settings.max_in_flight = config.pipeline.max_in_flight;
  settings.max_frames = config.pipeline.max_frames;
  settings.stats_interval_s = config.pipeline.stats_interval_s;
  settings.progress = config.pipeline.progress;
  return settings;
}

SinkSettings to_sink_settings(const Config& config) { return config.sinks; }

}  // namespace detflow
