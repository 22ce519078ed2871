#include "detflow/post/labels.h"

#include <cctype>
#include <charconv>
#include <fstream>
#include <map>

#include "detflow/error.h"

namespace detflow {

namespace {

constexpr std::string_view class_prefix = "class_";

std::string numbered_name(int class_id) { return std::string(class_prefix) + std::to_string(class_id); }

// A cursor over a Python literal; every parse_* returns false on malformed input.
class LiteralReader {
 public:
  explicit LiteralReader(std::string_view text) : text_(text) {}

  void skip_space() {
    while (position_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[position_]))) ++position_;
  }
  bool at_end() {
    skip_space();
    return position_ >= text_.size();
  }
  bool consume(char expected) {
    skip_space();
    if (position_ < text_.size() && text_[position_] == expected) {
      ++position_;
      return true;
    }
    return false;
  }
  char peek() {
    skip_space();
    return position_ < text_.size() ? text_[position_] : '\0';
  }

  bool parse_integer(int& value) {
    skip_space();
    const char* begin = text_.data() + position_;
    const char* end = text_.data() + text_.size();
    const auto [stop, error] = std::from_chars(begin, end, value);
    if (error != std::errc() || stop == begin) return false;
    position_ += static_cast<std::size_t>(stop - begin);
    return true;
  }

  // A single- or double-quoted string with Python's common escapes.
  bool parse_string(std::string& value) {
    skip_space();
    if (position_ >= text_.size() || (text_[position_] != '\'' && text_[position_] != '"')) return false;
    const char quote = text_[position_++];
    value.clear();
    while (position_ < text_.size()) {
      const char character = text_[position_++];
      if (character == quote) return true;
      if (character != '\\') {
        value.push_back(character);
        continue;
      }
      if (position_ >= text_.size()) return false;
      const char escaped = text_[position_++];
      switch (escaped) {
        case 'n':
          value.push_back('\n');
          break;
        case 't':
          value.push_back('\t');
          break;
        case 'x': {
          if (position_ + 2 > text_.size()) return false;
          int code = 0;
          const auto [stop, error] = std::from_chars(text_.data() + position_, text_.data() + position_ + 2, code, 16);
          if (error != std::errc() || stop != text_.data() + position_ + 2) return false;
          value.push_back(static_cast<char>(code));
          position_ += 2;
          break;
        }
        default:  // \\, \', \" and anything else stand for themselves
          value.push_back(escaped);
          break;
      }
    }
    return false;  // unterminated
  }

 private:
  std::string_view text_;
  std::size_t position_ = 0;
};

std::vector<std::string> names_from_map(const std::map<int, std::string>& by_id) {
  if (by_id.empty()) return {};
  std::vector<std::string> names(static_cast<std::size_t>(by_id.rbegin()->first + 1));
  for (std::size_t id = 0; id < names.size(); ++id) names[id] = numbered_name(static_cast<int>(id));
  for (const auto& [id, name] : by_id) names[static_cast<std::size_t>(id)] = name;
  return names;
}

}  // namespace

Labels::Labels(std::vector<std::string> names, std::string source)
    : names_(std::move(names)), source_(std::move(source)) {}

std::string Labels::name(int class_id) const {
  if (class_id >= 0 && static_cast<std::size_t>(class_id) < names_.size()) {
    return names_[static_cast<std::size_t>(class_id)];
  }
  return numbered_name(class_id);
}

int Labels::find(std::string_view name) const {
  for (std::size_t id = 0; id < names_.size(); ++id) {
    if (names_[id] == name) return static_cast<int>(id);
  }
  if (name.starts_with(class_prefix)) {
    const std::string_view digits = name.substr(class_prefix.size());
    int id = -1;
    const auto [stop, error] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    if (error == std::errc() && stop == digits.data() + digits.size() && id >= 0) return id;
  }
  return -1;
}

std::vector<std::string> parse_names_metadata(std::string_view text) {
  LiteralReader reader(text);
  // Refuses absurd ids instead of allocating a name for every id below them. The largest
  // public vocabularies have ~22k classes (ImageNet-21k); 2^20 ids took 1.4 s under the fuzz
  // build's sanitizers (fuzz/corpus/labels/large_id.txt).
  constexpr int max_class_id = (1 << 16) - 1;
  if (reader.consume('{')) {
    std::map<int, std::string> by_id;
    if (reader.consume('}')) return {};
    while (true) {
      int id = 0;
      std::string name;
      if (!reader.parse_integer(id) || id < 0 || id > max_class_id || !reader.consume(':') ||
          !reader.parse_string(name)) {
        return {};
      }
      by_id[id] = std::move(name);
      if (reader.consume(',')) {
        if (reader.consume('}')) break;  // trailing comma
        continue;
      }
      if (!reader.consume('}')) return {};
      break;
    }
    if (!reader.at_end()) return {};
    return names_from_map(by_id);
  }
  if (reader.consume('[')) {  // a list of names, as some exporters write it
    std::vector<std::string> names;
    if (reader.consume(']')) return {};
    while (true) {
      std::string name;
      if (!reader.parse_string(name)) return {};
      names.push_back(std::move(name));
      if (reader.consume(',')) {
        if (reader.peek() == ']') {
          reader.consume(']');
          break;
        }
        continue;
      }
      if (!reader.consume(']')) return {};
      break;
    }
    if (!reader.at_end()) return {};
    return names;
  }
  return {};
}

Labels resolve_labels(const ModelInfo& model, const std::filesystem::path& labels_file, int num_classes) {
  if (!labels_file.empty()) {
    std::ifstream file(labels_file);
    if (!file) {
      throw Error("labels file '" + labels_file.string() +
                  "' cannot be read: expected a text file with one class name per line");
    }
    std::vector<std::string> names;
    std::string line;
    while (std::getline(file, line)) {
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
      names.push_back(line);
    }
    while (!names.empty() && names.back().empty()) names.pop_back();
    if (names.empty()) {
      throw Error("labels file '" + labels_file.string() + "' has no names: expected one class name per line");
    }
    return Labels(std::move(names), "labels file " + labels_file.filename().string());
  }
  if (const auto metadata = model.metadata_value("names")) {
    std::vector<std::string> names = parse_names_metadata(*metadata);
    if (!names.empty()) return Labels(std::move(names), "metadata names");
  }
  if (num_classes == static_cast<int>(coco80_names().size())) return Labels(coco80_names(), "COCO-80");
  std::vector<std::string> names;
  for (int id = 0; id < num_classes; ++id) names.push_back(numbered_name(id));
  return Labels(std::move(names), "class_N");
}

const std::vector<std::string>& coco80_names() {
  static const std::vector<std::string> names{
      "person",         "bicycle",    "car",           "motorcycle",    "airplane",     "bus",           "train",
      "truck",          "boat",       "traffic light", "fire hydrant",  "stop sign",    "parking meter", "bench",
      "bird",           "cat",        "dog",           "horse",         "sheep",        "cow",           "elephant",
      "bear",           "zebra",      "giraffe",       "backpack",      "umbrella",     "handbag",       "tie",
      "suitcase",       "frisbee",    "skis",          "snowboard",     "sports ball",  "kite",          "baseball bat",
      "baseball glove", "skateboard", "surfboard",     "tennis racket", "bottle",       "wine glass",    "cup",
      "fork",           "knife",      "spoon",         "bowl",          "banana",       "apple",         "sandwich",
      "orange",         "broccoli",   "carrot",        "hot dog",       "pizza",        "donut",         "cake",
      "chair",          "couch",      "potted plant",  "bed",           "dining table", "toilet",        "tv",
      "laptop",         "mouse",      "remote",        "keyboard",      "cell phone",   "microwave",     "oven",
      "toaster",        "sink",       "refrigerator",  "book",          "clock",        "vase",          "scissors",
      "teddy bear",     "hair drier", "toothbrush"};
  return names;
}

}  // namespace detflow
