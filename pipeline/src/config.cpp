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

// Lists of numbers (model.anchors, model.strides): each item parsed like a scalar key; the
// refusal names the offending item.
template <typename Number, typename Access>
Entry numeric_list_entry(std::string name, std::string accepted, std::string description, Access access,
                         std::function<Number(const Value&)> parse_item,
                         std::function<void(const std::vector<Number>&)> check) {
  return {{std::move(name), "list", {}, std::move(accepted), std::move(description)},
          [access, parse_item, check](Config& config, const Value& value) {
            std::vector<Number> numbers;
            for (const auto& item : parse_list(value)) {
              try {
                numbers.push_back(parse_item(scalar(item)));
              } catch (const Refusal& refusal) {
                throw Refusal{"item '" + item + "' is " + refusal.reason};
              }
            }
            if (check) check(numbers);
            access(config) = std::move(numbers);
          },
          [access](const Config& config) {
            std::vector<std::string> items;
            for (const auto number : access(config)) items.push_back(number_text(number));
            return list_value(items);
          }};
}

template <typename Access>
Entry number_list_entry(std::string name, std::string accepted, std::string description, Access access,
                        std::function<void(const std::vector<float>&)> check) {
  return numeric_list_entry<float>(
      std::move(name), std::move(accepted), std::move(description), access,
      [](const Value& item) { return static_cast<float>(parse_number(item, 1e-3, 1e5)); }, std::move(check));
}

template <typename Access>
Entry integer_list_entry(std::string name, std::string accepted, std::string description, Access access) {
  return numeric_list_entry<int>(
      std::move(name), std::move(accepted), std::move(description), access,
      [](const Value& item) { return parse_integer<int>(item, 1, 1024); },
      [](const std::vector<int>& strides) {
        if (std::adjacent_find(strides.begin(), strides.end(), std::greater_equal<>()) != strides.end()) {
          throw Refusal{"not increasing"};
        }
      });
}

void check_anchor_pairs(const std::vector<float>& anchors) {
  if (anchors.size() % 2 != 0) {
    throw Refusal{std::to_string(anchors.size()) + " numbers, not w,h pairs (an even count)"};
  }
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

// "8080", "127.0.0.1:8080", "0.0.0.0:8080", "[::1]:8080"; the full parse is the service's.
void check_listen_address(const std::string& text) {
  if (text.empty()) return;
  const auto colon = text.rfind(':');
  const std::string port = colon == std::string::npos ? text : text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    throw Refusal{"not a port (0 to 65535)"};
  }
  if (colon != std::string::npos && colon == 0) throw Refusal{"address missing before ':'"};
}

void check_mqtt_url(const std::string& text) {
  if (text.empty()) return;
  if (text.rfind("mqtt://", 0) != 0 && text.rfind("mqtts://", 0) != 0) throw Refusal{"not an mqtt:// or mqtts:// URL"};
}

// One MQTT topic level: what a camera name may hold.
void check_topic_level(const std::string& text) {
  for (const char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      throw Refusal{"not a topic level"};
  }
}

void check_topic_prefix(const std::string& text) {
  if (text.empty() || text.find_first_of("+#") != std::string::npos || text.front() == '/' || text.back() == '/' ||
      text.find("//") != std::string::npos)
    throw Refusal{"not a topic prefix"};
}

void check_fsync_policy(const std::string& text) {
  if (text != "always" && text != "interval" && text != "never") throw Refusal{"not an fsync policy"};
}

constexpr int maximum_image_side = 16384;

// analytics.lines / analytics.zones: list items in the --line / --zone syntax, parsed by track/.
template <typename Item, typename Access>
Entry analytics_list_entry(std::string name, std::string accepted, std::string description, Access access,
                           Item (*parse_item)(const std::string&), std::function<std::string(const Item&)> format) {
  return {{std::move(name), "list", {}, std::move(accepted), std::move(description)},
          [access, parse_item](Config& config, const Value& value) {
            // "a=1,2,3,4,b=5,6,7,8" (a command line) and [a=1,2,3,4] (a YAML flow list) arrive split
            // at every comma: a piece without '=' continues the item before it.
            std::vector<std::string> texts;
            for (const auto& piece : parse_list(value)) {
              if (piece.find('=') == std::string::npos && !texts.empty()) {
                texts.back() += "," + piece;
              } else {
                texts.push_back(piece);
              }
            }
            std::vector<Item> items;
            for (const auto& text : texts) {
              try {
                items.push_back(parse_item(text));
              } catch (const Error& error) {
                throw Refusal{error.what()};
              }
            }
            access(config) = std::move(items);
          },
          [access, format](const Config& config) {
            std::vector<std::string> items;
            for (const auto& item : access(config)) items.push_back(format(item));
            return list_value(items);
          }};
}

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
  add(number_entry(
      "source.reconnect_initial", 0.01, 3600, "", "live sources: seconds before the first reopening after a loss",
      [](auto& config) -> auto& { return config.source.reconnect_initial; }));
  add(number_entry(
      "source.reconnect_max", 0.01, 3600, "", "live sources: the wait between reopenings doubles up to these seconds",
      [](auto& config) -> auto& { return config.source.reconnect_max; }));
  add(integer_entry<int>(
      "source.max_reconnects", 0, 1000000, "forever",
      "live sources: failed reopenings in a row before giving up (exit code 6)",
      [](auto& config) -> auto& { return config.source.max_reconnects; }));
  add(number_entry(
      "source.stall_timeout", 0, 3600, "max(5 s, 10 frame intervals)",
      "live sources: seconds without a frame before the source is restarted",
      [](auto& config) -> auto& { return config.source.stall_timeout; }));

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
  add(optional_choice_entry<bool>(
      "model.head", {{"decoded", true}, {"raw", false}},
      "single-output yolov5/yolox heads: decoded = boxes already in input pixels, raw = grid/anchor decode still to "
      "do; auto: yolov5 looks at the first frame's box values, yolox at the row count",
      [](auto& config) -> auto& { return config.model.decoder.boxes_decoded; }));
  add(number_list_entry(
      "model.anchors",
      "w,h pairs in input pixels, smallest stride first, e.g. [10,13, 16,30, 33,23, ...]; [] for "
      "YOLOv5's defaults",
      "yolov5 anchor sizes, split evenly among the strides (the pair count must be a multiple of the stride count)",
      [](auto& config) -> auto& { return config.model.decoder.anchors; }, check_anchor_pairs));
  add(integer_list_entry(
      "model.strides", "increasing whole numbers 1 to 1024, e.g. [8, 16, 32]; [] for the family's",
      "grid strides of the output levels, smallest first (yolov5, yolox, yolov8, nanodet); [] infers them",
      [](auto& config) -> auto& { return config.model.decoder.strides; }));

  // detection
  add(integer_entry<int>(
      "detection.interval", 1, 1000, "",
      "run the detector on every N-th frame; the tracker predicts the frames between (needs tracking; "
      "--detection-interval implies it)",
      [](auto& config) -> auto& { return config.detection.interval; }));

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
  add(choice_entry<VerifyMode>(
      "engine.verify", {{"warn", VerifyMode::warn}, {"strict", VerifyMode::strict}, {"off", VerifyMode::off}},
      "an engine other than ONNX Runtime is compared with it on the first frame: warn once when they differ, "
      "strict refuses to run, off skips the check",
      [](auto& config) -> auto& { return config.engine.verify; }));

  // pipeline
  add(integer_entry<int>(
      "pipeline.max_in_flight", 0, 1024,
      "workers when live, workers + 1 for files; at detection.interval N: (workers - 1) x N + 1, at most 4 x workers, "
      "+ 1 for files",
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
      "sinks.mot", "a file, or empty",
      "tracks as MOTChallenge text frame,id,x,y,w,h,score,class,-1,-1 (needs tracking)",
      [](auto& config) -> auto& { return config.sinks.mot; }));
  add(path_entry(
      "sinks.events", "a file, or empty", "tracking events (line crossings, zones, track start/end) as JSON Lines",
      [](auto& config) -> auto& { return config.sinks.events; }));
  add(path_entry(
      "sinks.stats_json", "a file, or empty", "run statistics as JSON after the run",
      [](auto& config) -> auto& { return config.stats_json; }));
  add(integer_entry<std::uint64_t>(
      "sinks.json_rotate_max_bytes", 0, std::uint64_t{1} << 50, "never rotate",
      "JSON Lines: start a new file before one would exceed this many bytes",
      [](auto& config) -> auto& { return config.sinks.json_rotate_bytes; }));
  add(integer_entry<int>(
      "sinks.json_rotate_keep", 1, 1000, "", "JSON Lines: rotated files kept (out.jsonl.1 is the newest)",
      [](auto& config) -> auto& { return config.sinks.json_rotate_keep; }));

  // http
  add(text_entry(
      "http.listen", "PORT (loopback), ADDR:PORT, [IPV6]:PORT, or empty (off); port 0 picks a free one",
      "serve /healthz, /readyz, /metrics, /snapshot.jpg, /stream.mjpg and a status page",
      [](auto& config) -> auto& { return config.http.listen; }, check_listen_address));
  add(path_entry(
      "http.token_file", "a file whose first line is the token, or empty (env DETFLOW_HTTP_TOKEN, else none)",
      "bearer token required for everything but /healthz and /readyz",
      [](auto& config) -> auto& { return config.http.token_file; }));
  add(integer_entry<int>(
      "http.max_clients", 1, 64, "", "preview streams (/stream.mjpg) served at once; more get 503",
      [](auto& config) -> auto& { return config.http.max_clients; }));
  add(integer_entry<int>(
      "http.jpeg_quality", 1, 100, "", "JPEG quality of /snapshot.jpg and /stream.mjpg",
      [](auto& config) -> auto& { return config.http.jpeg_quality; }));
  add(number_entry(
      "http.preview_fps", 0.1, 120, "", "frames per second each MJPEG preview stream sends at most",
      [](auto& config) -> auto& { return config.http.preview_fps; }));

  // mqtt
  add(text_entry(
      "mqtt.url", "mqtt://HOST[:PORT] (1883), mqtts://HOST[:PORT] (8883), or empty (off)",
      "publish events, counts and status to this MQTT broker, through a durable outbox",
      [](auto& config) -> auto& { return config.mqtt.url; }, check_mqtt_url));
  add(text_entry(
      "mqtt.client_id", "text, or empty (detflow-CAMERA)", "MQTT client identifier, unique on the broker",
      [](auto& config) -> auto& { return config.mqtt.client_id; }));
  add(text_entry(
      "mqtt.topic_prefix", "topic levels without + or #", "first part of every topic: PREFIX/CAMERA/...",
      [](auto& config) -> auto& { return config.mqtt.topic_prefix; }, check_topic_prefix));
  add(text_entry(
      "mqtt.camera", "letters, digits, '-', '_', '.', or empty (HOSTNAME-SOURCE)", "this camera's name in the topics",
      [](auto& config) -> auto& { return config.mqtt.camera; }, check_topic_level));
  add(text_entry(
      "mqtt.username", "text, or empty (anonymous)", "MQTT user name",
      [](auto& config) -> auto& { return config.mqtt.username; }));
  add(text_entry(
      "mqtt.password", "text, or empty", "MQTT password or token (prefer password_file or password_env)",
      [](auto& config) -> auto& { return config.mqtt.password; }));
  add(path_entry(
      "mqtt.password_file", "a file, or empty", "file whose first line is the MQTT password or token",
      [](auto& config) -> auto& { return config.mqtt.password_file; }));
  add(text_entry(
      "mqtt.password_env", "an environment variable name, or empty",
      "environment variable holding the MQTT password or token",
      [](auto& config) -> auto& { return config.mqtt.password_env; }));
  add(path_entry(
      "mqtt.ca_file", "a PEM file, or empty (the system's CAs)", "mqtts: certificate authority to trust",
      [](auto& config) -> auto& { return config.mqtt.ca_file; }));
  add(path_entry(
      "mqtt.cert_file", "a PEM file, or empty", "mqtts: client certificate (with mqtt.key_file)",
      [](auto& config) -> auto& { return config.mqtt.cert_file; }));
  add(path_entry(
      "mqtt.key_file", "a PEM file, or empty", "mqtts: client private key",
      [](auto& config) -> auto& { return config.mqtt.key_file; }));
  add(integer_entry<int>(
      "mqtt.keep_alive", 1, 3600, "", "seconds between MQTT keep-alive pings",
      [](auto& config) -> auto& { return config.mqtt.keep_alive_s; }));
  add(integer_entry<int>(
      "mqtt.qos", 0, 2, "", "QoS of event messages (1: at least once, removed from the outbox on PUBACK)",
      [](auto& config) -> auto& { return config.mqtt.qos; }));
  add(boolean_entry(
      "mqtt.required", "fail the run when the broker cannot be reached at start (else the outbox fills)",
      [](auto& config) -> auto& { return config.mqtt.required; }));
  add(boolean_entry(
      "mqtt.detections", "also publish every frame's detections (QoS 0, rate-limited)",
      [](auto& config) -> auto& { return config.mqtt.detections; }));
  add(number_entry(
      "mqtt.detections_rate", 0.1, 1000, "", "at most this many detection messages per second",
      [](auto& config) -> auto& { return config.mqtt.detections_rate; }));
  add(path_entry(
      "mqtt.outbox", "a folder, or empty ($XDG_STATE_HOME/detflow/outbox/CAMERA)",
      "where unsent events wait on disk (kept across restarts)",
      [](auto& config) -> auto& { return config.mqtt.outbox; }));
  add(integer_entry<std::int64_t>(
      "mqtt.outbox_bytes", 4096, std::int64_t{1} << 40, "", "disk bound of the outbox; when full the oldest events go",
      [](auto& config) -> auto& { return config.mqtt.outbox_bytes; }));
  add(text_entry(
      "mqtt.fsync", "always | interval | never", "when outbox writes are forced to disk (power-loss safety)",
      [](auto& config) -> auto& { return config.mqtt.fsync; }, check_fsync_policy));
  add(number_entry(
      "mqtt.fsync_interval", 0.01, 3600, "", "mqtt.fsync interval: seconds between forced writes",
      [](auto& config) -> auto& { return config.mqtt.fsync_interval_s; }));
  add(number_entry(
      "mqtt.drain", 0, 3600, "do not wait", "end of run: seconds to wait for unsent events before leaving them queued",
      [](auto& config) -> auto& { return config.mqtt.drain_s; }));

  // tracking (detflow_track; ranges as in TrackerSettings, cross-key checks when the tracker is built)
  add(boolean_entry(
      "tracking.enabled", "track objects over time: ids in the outputs, analytics, MOT and event sinks (--track)",
      [](auto& config) -> auto& { return config.tracking.enabled; }));
  add(number_entry(
      "tracking.high_score_threshold", 0.01, 1, "",
      "detections scoring at least this are matched first and start tracks",
      [](auto& config) -> auto& { return config.tracking.tracker.high_score_threshold; }));
  add(number_entry(
      "tracking.low_score_threshold", 0, 1, "ignore no detection",
      "detections between this and the high threshold only continue confirmed tracks (second stage)",
      [](auto& config) -> auto& { return config.tracking.tracker.low_score_threshold; }));
  add(number_entry(
      "tracking.new_track_score_threshold", 0.01, 1, "", "an unmatched detection starts a track from this score",
      [](auto& config) -> auto& { return config.tracking.tracker.new_track_score_threshold; }));
  add(number_entry(
      "tracking.first_match_iou", 0.01, 0.99, "", "minimal IoU (times the score) to match a high-score detection",
      [](auto& config) -> auto& { return config.tracking.tracker.first_match_iou; }));
  add(number_entry(
      "tracking.second_match_iou", 0.01, 0.99, "", "minimal IoU to match a low-score detection",
      [](auto& config) -> auto& { return config.tracking.tracker.second_match_iou; }));
  add(number_entry(
      "tracking.tentative_match_iou", 0.01, 0.99, "", "minimal IoU to continue a not yet confirmed track",
      [](auto& config) -> auto& { return config.tracking.tracker.tentative_match_iou; }));
  add(boolean_entry(
      "tracking.score_weighted_iou", "rank first-stage matches by IoU x detection score",
      [](auto& config) -> auto& { return config.tracking.tracker.score_weighted_iou; }));
  add(integer_entry<int>(
      "tracking.confirm_hits", 1, 100, "", "matched frames before a track is reported",
      [](auto& config) -> auto& { return config.tracking.tracker.confirm_hits; }));
  add(number_entry(
      "tracking.track_buffer_seconds", 0.001, 3600, "", "seconds a lost track can be found again before it ends",
      [](auto& config) -> auto& { return config.tracking.tracker.track_buffer_seconds; }));
  add(number_entry(
      "tracking.tentative_buffer_seconds", 0, 3600, "at the first miss",
      "seconds a not yet confirmed track may go unmatched before it is dropped (<= track_buffer_seconds)",
      [](auto& config) -> auto& { return config.tracking.tracker.tentative_buffer_seconds; }));
  add(number_entry(
      "tracking.predicted_output_seconds", 0, 3600, "never",
      "report a lost track's predicted box (flagged predicted) up to this many seconds (<= track_buffer_seconds)",
      [](auto& config) -> auto& { return config.tracking.tracker.predicted_output_seconds; }));
  add(boolean_entry(
      "tracking.class_agnostic", "match tracks and detections across classes",
      [](auto& config) -> auto& { return config.tracking.tracker.class_agnostic; }));
  add(number_entry(
      "tracking.position_noise", 0.0001, 1, "", "Kalman process noise of positions, relative to box size per 1/30 s",
      [](auto& config) -> auto& { return config.tracking.tracker.position_noise; }));
  add(number_entry(
      "tracking.velocity_noise", 0.0001, 1, "", "Kalman process noise of velocities, relative to box size per 1/30 s",
      [](auto& config) -> auto& { return config.tracking.tracker.velocity_noise; }));
  add(number_entry(
      "tracking.measurement_noise", 0.0001, 1, "", "Kalman measurement noise, relative to box size",
      [](auto& config) -> auto& { return config.tracking.tracker.measurement_noise; }));
  add(integer_entry<int>(
      "tracking.max_tracks", 1, 1000000, "", "live tracks at most (bounds memory); more are refused and counted",
      [](auto& config) -> auto& { return config.tracking.tracker.max_tracks; }));
  add(number_entry(
      "tracking.match_buffer", 0, 10, "",
      "buffered IoU: boxes grow by this fraction of their size per side before matching; 0 = plain IoU, "
      "or 0.5 x (N - 1) at detection.interval N",
      [](auto& config) -> auto& { return config.tracking.tracker.match_buffer; }));

  // analytics (on tracks; needs tracking.enabled)
  add(analytics_list_entry<track::LineSettings>(
      "analytics.lines", "items NAME=X1,Y1,X2,Y2 in source pixels, e.g. [door=100,200,300,400]",
      "counting lines: crossings in/out per class",
      [](auto& config) -> auto& { return config.tracking.analytics.lines; }, track::parse_line_spec,
      [](const track::LineSettings& line) {
        return line.name + "=" + number_text(line.start.x) + "," + number_text(line.start.y) + "," +
               number_text(line.end.x) + "," + number_text(line.end.y);
      }));
  add(analytics_list_entry<track::ZoneSettings>(
      "analytics.zones", "items NAME=X1,Y1,X2,Y2,X3,Y3[,...] (a simple polygon) in source pixels",
      "zones: occupancy per class, enter/exit, dwell, loitering",
      [](auto& config) -> auto& { return config.tracking.analytics.zones; }, track::parse_zone_spec,
      [](const track::ZoneSettings& zone) {
        std::string text = zone.name;
        char separator = '=';
        for (const auto& point : zone.polygon) {
          text.push_back(separator);
          text.append(number_text(point.x));
          text.push_back(',');
          text.append(number_text(point.y));
          separator = ',';
        }
        return text;
      }));
  add(choice_entry<track::Anchor>(
      "analytics.anchor",
      {{"bottom_center", track::Anchor::bottom_center},
       {"center", track::Anchor::center},
       {"top_center", track::Anchor::top_center},
       {"bottom_left", track::Anchor::bottom_left},
       {"bottom_right", track::Anchor::bottom_right}},
      "the point of a box that crosses lines and enters zones",
      [](auto& config) -> auto& { return config.tracking.analytics.anchor; }));
  add(integer_entry<int>(
      "analytics.line_min_frames", 1, 1000, "", "detections on the other side of a line before a crossing counts",
      [](auto& config) -> auto& { return config.tracking.analytics.line_min_frames; }));
  add(number_entry(
      "analytics.line_hysteresis", 0, 1, "none",
      "half-width of the band around a line that counts for neither side, as a fraction of the box's extent "
      "across the line (its width for a vertical line, its height for a horizontal one)",
      [](auto& config) -> auto& { return config.tracking.analytics.line_hysteresis; }));
  add(integer_entry<int>(
      "analytics.zone_min_frames", 1, 1000, "", "detections inside (outside) a zone before it is entered (left)",
      [](auto& config) -> auto& { return config.tracking.analytics.zone_min_frames; }));
  add(number_entry(
      "analytics.loiter_seconds", 0, 86400, "no loitering events", "seconds in a zone before a zone_loiter event",
      [](auto& config) -> auto& { return config.tracking.analytics.loiter_seconds; }));
  add(boolean_entry(
      "analytics.track_events", "emit track_start and track_end events",
      [](auto& config) -> auto& { return config.tracking.analytics.track_events; }));

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
  return text + ", sources (a list of streams)";
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

// --- sources: several named streams -------------------------------------------------------

// The sinks keys a stream may set for itself (the outputs that belong to one stream).
const std::vector<std::string>& stream_sink_keys() {
  static const std::vector<std::string> keys{"sinks.video", "sinks.json", "sinks.mot", "sinks.events", "sinks.images"};
  return keys;
}

bool stream_may_set(const std::string& key) {
  if (key.rfind("source.", 0) == 0) return key != "source.uri";
  if (key.rfind("analytics.", 0) == 0) return true;
  const auto& sinks = stream_sink_keys();
  return std::find(sinks.begin(), sinks.end(), key) != sinks.end();
}

const char* const kStreamEntryAccepted =
    "name, uri, source keys (mode, loop, reconnect_initial, ...), analytics: {lines, zones, ...}, sinks: {video, json, "
    "mot, events, images}";

// Validates one override through the registry (on a scratch Config) and keeps it as YAML text.
void add_stream_override(StreamConfig& stream, Config& scratch, const std::string& key, const YAML::Node& node,
                         const std::string& where) {
  const Entry* entry = find_entry(key);
  if (!entry || !stream_may_set(key)) {
    throw Error(where + ": sources: unknown key '" + key + "' in a stream entry; accepted: " + kStreamEntryAccepted);
  }
  apply(scratch, *entry, value_of(node, key, where), where);
  const auto existing = std::find_if(stream.overrides.begin(), stream.overrides.end(),
                                     [&key](const auto& override_) { return override_.first == key; });
  const std::string text = yaml_text(entry->get(scratch), entry->key.type);
  if (existing != stream.overrides.end()) {
    existing->second = text;
  } else {
    stream.overrides.emplace_back(key, text);
  }
}

std::string scalar_field(const YAML::Node& node, const std::string& field, const std::string& where) {
  if (!node.IsScalar()) throw Error(where + ": sources: " + field + " must be a plain value");
  return trim(node.Scalar());
}

StreamConfig parse_stream(const YAML::Node& item, std::string_view origin) {
  const std::string where = std::string(origin) + at_line(item.Mark());
  if (!item.IsMap()) throw Error(where + ": sources: each entry must be a mapping; accepted: " + kStreamEntryAccepted);
  StreamConfig stream;
  Config scratch;
  for (const auto& field : item) {
    const std::string name = field.first.as<std::string>();
    const std::string field_where = std::string(origin) + at_line(field.second.Mark());
    if (name == "name" || name == "uri") {
      (name == "name" ? stream.name : stream.uri) = scalar_field(field.second, name, field_where);
    } else if (name == "analytics" || name == "sinks") {
      if (!field.second.IsMap()) {
        throw Error(field_where + ": sources: " + name + " must be a mapping of " + name + " keys");
      }
      for (const auto& member : field.second) {
        add_stream_override(stream, scratch, name + "." + member.first.as<std::string>(), member.second,
                            std::string(origin) + at_line(member.second.Mark()));
      }
    } else {
      add_stream_override(stream, scratch, "source." + name, field.second, field_where);
    }
  }
  if (stream.name.empty()) {
    throw Error(where + ": sources: an entry without a name" + (stream.uri.empty() ? "" : " (uri " + stream.uri + ")") +
                "; each needs name: NAME (letters, digits, '-', '_', '.')");
  }
  try {
    check_topic_level(stream.name);
  } catch (const Refusal&) {
    throw Error(where + ": sources: name '" + stream.name +
                "' is not a name; accepted: letters, digits, '-', '_', '.'");
  }
  if (stream.uri.empty()) {
    throw Error(where + ": sources: stream '" + stream.name + "' has no uri; each needs uri: URI (as source.uri)");
  }
  return stream;
}

std::vector<StreamConfig> parse_sources(const YAML::Node& node, std::string_view origin) {
  const std::string where = std::string(origin) + at_line(node.Mark());
  if (node.IsNull() || (node.IsSequence() && node.size() == 0)) {
    throw Error(where + ": sources: an empty list; give at least one {name: NAME, uri: URI}, or source.uri for one");
  }
  if (!node.IsSequence()) {
    throw Error(where + ": sources must be a list of streams, each {name: NAME, uri: URI, ...}");
  }
  std::vector<StreamConfig> streams;
  for (const auto& item : node) {
    StreamConfig stream = parse_stream(item, origin);
    for (const auto& earlier : streams) {
      if (earlier.name == stream.name) {
        throw Error(std::string(origin) + at_line(item.Mark()) + ": sources: duplicate stream name '" + stream.name +
                    "'; every stream needs its own name");
      }
    }
    streams.push_back(std::move(stream));
  }
  return streams;
}

void validate_stream(const Config& config);
void validate_shared(const Config& config);

void check_sources_exclusive(const Config& config, std::string_view origin) {
  if (!config.sources.empty() && !config.source.uri.empty()) {
    throw Error(std::string(origin) + ": sources: and source.uri = '" + config.source.uri +
                "' exclude each other; put the uri in an entry of sources:, or drop sources: for one stream");
  }
}

std::string sources_yaml(const std::vector<StreamConfig>& sources) {
  std::ostringstream out;
  out << "\n# Several named streams sharing the model (README \"Several cameras in one process\"): each\n"
         "# entry's name and uri, and the source, analytics and sinks keys it sets for itself.\n"
         "sources:\n";
  for (const auto& stream : sources) {
    out << "  - name: " << yaml_scalar(stream.name, "text") << "\n";
    out << "    uri: " << yaml_scalar(stream.uri, "text") << "\n";
    for (const char* section : {"source", "analytics", "sinks"}) {
      const std::string prefix = std::string(section) + ".";
      bool first = true;
      for (const auto& [key, text] : stream.overrides) {
        if (key.rfind(prefix, 0) != 0) continue;
        const bool nested = prefix != "source.";
        if (nested && first) out << "    " << section << ":\n";
        first = false;
        out << (nested ? "      " : "    ") << key.substr(prefix.size()) << ": " << text << "\n";
      }
    }
  }
  return out.str();
}

void replace_camera(std::filesystem::path& path, const std::string& camera) {
  std::string text = path.string();
  static const std::string placeholder = "{camera}";
  for (auto at = text.find(placeholder); at != std::string::npos; at = text.find(placeholder, at + camera.size())) {
    text.replace(at, placeholder.size(), camera);
  }
  path = text;
}

StreamOptions stream_options(const Config& config) {
  return {.max_in_flight = config.pipeline.max_in_flight,
          .max_frames = config.pipeline.max_frames,
          .tracking = config.tracking.enabled,
          .tracker = config.tracking.tracker,
          .analytics = config.tracking.analytics,
          .detection_interval = config.detection.interval};
}

// Every file or folder the streams would write, by path: two streams may not share one.
void check_outputs_not_shared(const std::vector<StreamSettings>& streams) {
  struct Writer {
    std::string stream;
    std::string key;
  };
  std::map<std::filesystem::path, Writer> writers;
  for (const auto& stream : streams) {
    const std::pair<const char*, const std::filesystem::path*> outputs[] = {{"sinks.video", &stream.sinks.video},
                                                                            {"sinks.json", &stream.sinks.json},
                                                                            {"sinks.mot", &stream.sinks.mot},
                                                                            {"sinks.events", &stream.sinks.events},
                                                                            {"sinks.images", &stream.sinks.images}};
    for (const auto& [key, path] : outputs) {
      if (path->empty()) continue;
      const auto normal = std::filesystem::absolute(*path).lexically_normal();
      const auto [found, inserted] = writers.emplace(normal, Writer{stream.name, key});
      if (!inserted && found->second.stream != stream.name) {
        throw Error(std::string(key) + " = '" + path->string() + "' would be written by both stream '" +
                    found->second.stream + "' and stream '" + stream.name +
                    "'; put {camera} in the path (e.g. out-{camera}.jsonl) or give each stream its own under sinks:");
      }
    }
  }
}

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
  static const std::vector<std::string> sections{"source", "model", "detection", "engine",   "pipeline",
                                                 "sinks",  "http",  "mqtt",      "tracking", "analytics"};
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
    check_sources_exclusive(merged, origin);
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
    if (section == "sources") {
      merged.sources = parse_sources(section_item.second, origin);
      continue;
    }
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
      // A nested group is the flat keys it prefixes: sinks: {json_rotate: {max_bytes: N}}
      // is sinks.json_rotate_max_bytes.
      if (key_item.second.IsMap() && !find_entry(name)) {
        for (const auto& member : key_item.second) {
          const std::string member_name = name + "_" + member.first.as<std::string>();
          const Entry* member_entry = find_entry(member_name);
          if (!member_entry) {
            throw Error(std::string(origin) + at_line(member.first.Mark()) + ": unknown key '" + member_name +
                        "'; known keys in " + section + ": " + known_keys_of(section));
          }
          apply(merged, *member_entry, value_of(member.second, member_name, origin),
                std::string(origin) + at_line(member.second.Mark()));
        }
        continue;
      }
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
  if (!config.sources.empty()) out << sources_yaml(config.sources);
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
  out << "Several streams (instead of source.uri): sources: [{name: NAME, uri: URI, <source keys>, analytics: {...}, "
         "sinks: {video, json, mot, events, images}}, ...]; {camera} in a sinks path becomes each stream's name "
         "(README \"Several cameras in one process\")\n";
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
  if (config.source.uri.empty() && config.sources.empty()) {
    throw Error("no source: set source.uri in the configuration or pass --source (a file, folder, camera or URL)");
  }
  check_sources_exclusive(config, "configuration");
  if (!config.sources.empty()) {
    // What each stream sets for itself is checked as its own configuration would be.
    for (const auto& stream : config.sources) {
      try {
        validate_stream(stream_config(config, stream));
      } catch (const Error& error) {
        throw Error("sources: stream '" + stream.name + "': " + error.what());
      }
    }
    to_stream_settings(config);  // throws for an output two streams would share
  } else {
    validate_stream(config);
  }
  validate_shared(config);
}

namespace {

// The checks of validate_for_run() on the keys a stream may set for itself.
void validate_stream(const Config& config) {
  if (!config.tracking.enabled && config.detection.interval > 1) {
    throw Error("detection.interval = " + std::to_string(config.detection.interval) +
                " needs tracking (it predicts the frames the detector skips): set tracking.enabled: true, pass "
                "--track, or set detection.interval: 1");
  }
  if (!config.tracking.enabled) {
    const char* needs_tracking = !config.sinks.mot.empty()                  ? "sinks.mot"
                                 : !config.sinks.events.empty()             ? "sinks.events"
                                 : !config.tracking.analytics.lines.empty() ? "analytics.lines"
                                 : !config.tracking.analytics.zones.empty() ? "analytics.zones"
                                                                            : nullptr;
    if (needs_tracking) {
      throw Error(std::string(needs_tracking) + " needs tracking: set tracking.enabled: true or pass --track");
    }
  } else {
    config.tracking.tracker.validate();  // cross-key ranges
    // Geometry and ranges now; class names once the model's labels are known (Pipeline).
    track::AnalyticsSettings geometry = config.tracking.analytics;
    for (auto& line : geometry.lines) line.classes.clear();
    for (auto& zone : geometry.zones) zone.classes.clear();
    geometry.validate({});
  }
  if (config.source.reconnect_max < config.source.reconnect_initial) {
    throw Error("source.reconnect_max = " + number_text(config.source.reconnect_max) +
                " is below source.reconnect_initial = " + number_text(config.source.reconnect_initial) +
                "; accepted: at least reconnect_initial");
  }
}

// The checks of validate_for_run() on the keys every stream shares.
void validate_shared(const Config& config) {
  if ((config.model.input_width == 0) != (config.model.input_height == 0)) {
    throw Error("model.input_width = " + std::to_string(config.model.input_width) +
                " and model.input_height = " + std::to_string(config.model.input_height) +
                ": set both or neither (0 = automatic); e.g. --size 640 or --size 640x480");
  }
  // Without model.strides the decoder checks the split against the strides it infers.
  const DecoderConfig& decoder = config.model.decoder;
  if (!decoder.anchors.empty() && !decoder.strides.empty() &&
      (decoder.anchors.size() / 2) % decoder.strides.size() != 0) {
    throw Error("model.anchors has " + std::to_string(decoder.anchors.size() / 2) +
                " w,h pairs, which do not divide among the " + std::to_string(decoder.strides.size()) +
                " model.strides; accepted: a multiple of " + std::to_string(decoder.strides.size()) + " pairs");
  }
  if (config.pipeline.max_in_flight != 0 && config.engine.workers != 0 &&
      config.pipeline.max_in_flight < config.engine.workers) {
    throw Error("pipeline.max_in_flight = " + std::to_string(config.pipeline.max_in_flight) + " is below " +
                "engine.workers = " + std::to_string(config.engine.workers) +
                "; accepted: 0 (automatic) or at least the number of workers");
  }
}

}  // namespace

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
  settings.tracking = config.tracking.enabled;
  settings.tracker = config.tracking.tracker;
  settings.analytics = config.tracking.analytics;
  settings.detection_interval = config.detection.interval;
  return settings;
}

SinkSettings to_sink_settings(const Config& config) { return config.sinks; }

Config stream_config(const Config& config, const StreamConfig& stream) {
  Config result = config;
  result.sources.clear();
  result.source.uri = stream.uri;
  const std::string origin = "sources: stream '" + stream.name + "'";
  for (const auto& [key, text] : stream.overrides) {
    const Entry* entry = find_entry(key);
    if (!entry || !stream_may_set(key)) {
      throw Error(origin + ": unknown key '" + key + "'; accepted: " + kStreamEntryAccepted);
    }
    YAML::Node node;
    try {
      node = YAML::Load(text);
    } catch (const YAML::Exception& error) {
      throw Error(origin + ": " + key + " = '" + text + "': invalid YAML: " + error.msg);
    }
    apply(result, *entry, value_of(node, key, origin), origin);
  }
  for (auto* path :
       {&result.sinks.video, &result.sinks.json, &result.sinks.mot, &result.sinks.events, &result.sinks.images}) {
    replace_camera(*path, stream.name);
  }
  result.sinks.window_title = "detflow - " + stream.name;
  return result;
}

std::vector<StreamSettings> to_stream_settings(const Config& config) {
  std::vector<StreamSettings> streams;
  if (config.sources.empty()) {
    streams.push_back({"", to_source_settings(config), to_sink_settings(config), stream_options(config)});
    return streams;
  }
  for (const auto& stream : config.sources) {
    const Config own = stream_config(config, stream);
    streams.push_back({stream.name, to_source_settings(own), to_sink_settings(own), stream_options(own)});
  }
  check_outputs_not_shared(streams);
  return streams;
}

}  // namespace detflow
