#include "detflow/track/mot.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <istream>
#include <map>
#include <ostream>
#include <sstream>

#include "detflow/error.h"

namespace detflow::track {

namespace {

constexpr std::size_t max_quoted_characters = 80;
constexpr float max_coordinate = 1e7f;

std::string quoted(std::string_view text) {
  std::string shown(text.substr(0, max_quoted_characters));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) == 0x7f) c = '?';
  }
  if (text.size() > max_quoted_characters) shown += "...";
  return "'" + shown + "'";
}

[[noreturn]] void fail(const std::string& source, std::size_t line_number, std::string_view line,
                       const std::string& what) {
  throw Error(source + ":" + std::to_string(line_number) + ": " + what + " in " + quoted(line) +
              "; expected 'frame,id,x,y,w,h[,score[,class,...]]' with frame >= 1");
}

bool is_separator(char c) { return c == ',' || c == ' ' || c == '\t' || c == '\r'; }

// Splits on commas and blanks (runs of blanks count once; "1,,2" has an empty field).
void split_fields(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  std::size_t position = 0;
  while (position < line.size() && (line[position] == ' ' || line[position] == '\t' || line[position] == '\r')) {
    ++position;
  }
  while (position < line.size()) {
    std::size_t end = position;
    while (end < line.size() && !is_separator(line[end])) ++end;
    fields.push_back(line.substr(position, end - position));
    // Skip blanks, then at most one comma, then blanks.
    while (end < line.size() && (line[end] == ' ' || line[end] == '\t' || line[end] == '\r')) ++end;
    if (end < line.size() && line[end] == ',') {
      ++end;
      while (end < line.size() && (line[end] == ' ' || line[end] == '\t' || line[end] == '\r')) ++end;
      if (end == line.size()) fields.emplace_back();  // trailing comma: an empty last field
    }
    position = end;
  }
}

bool parse_number(std::string_view field, double& value) {
  if (field.empty()) return false;
  if (field.front() == '+') field.remove_prefix(1);
  const char* end = field.data() + field.size();
  const auto result = std::from_chars(field.data(), end, value);
  return result.ec == std::errc() && result.ptr == end && std::isfinite(value);
}

bool parse_integer(std::string_view field, std::int64_t& value) {
  double number = 0;
  if (!parse_number(field, number)) return false;
  if (number != std::floor(number) || std::fabs(number) > 9e15) return false;
  value = static_cast<std::int64_t>(number);
  return true;
}

void parse_line(std::string_view line, std::size_t line_number, const std::string& source,
                std::vector<std::string_view>& fields, std::vector<MotRow>& rows) {
  std::size_t first = 0;
  while (first < line.size() && (line[first] == ' ' || line[first] == '\t' || line[first] == '\r')) ++first;
  if (first == line.size() || line[first] == '#') return;
  split_fields(line, fields);
  if (fields.size() < 6) fail(source, line_number, line, std::to_string(fields.size()) + " fields (need at least 6)");
  static const char* const names[] = {"frame", "id", "x", "y", "w", "h", "score", "class"};
  double values[8] = {0, 0, 0, 0, 0, 0, 1, 0};
  const std::size_t used = std::min<std::size_t>(fields.size(), 8);
  for (std::size_t index = 0; index < used; ++index) {
    if (!parse_number(fields[index], values[index])) {
      fail(source, line_number, line,
           std::string("field ") + names[index] + " " + quoted(fields[index]) + " is not a finite number");
    }
  }
  MotRow row;
  if (!parse_integer(fields[0], row.frame) || row.frame < 1 || row.frame > max_mot_frame) {
    fail(source, line_number, line,
         "frame " + quoted(fields[0]) + " is not an integer in 1.." + std::to_string(max_mot_frame));
  }
  if (!parse_integer(fields[1], row.id))
    fail(source, line_number, line, "id " + quoted(fields[1]) + " is not an integer");
  for (std::size_t index = 2; index < 6; ++index) {
    if (std::fabs(values[index]) > max_coordinate) {
      fail(source, line_number, line, std::string(names[index]) + " " + quoted(fields[index]) + " is out of range");
    }
  }
  if (values[4] < 0 || values[5] < 0) fail(source, line_number, line, "negative box size");
  row.x = static_cast<float>(values[2]);
  row.y = static_cast<float>(values[3]);
  row.width = static_cast<float>(values[4]);
  row.height = static_cast<float>(values[5]);
  row.score = static_cast<float>(values[6]);
  if (fields.size() > 7) {
    std::int64_t class_value = 0;
    if (!parse_integer(fields[7], class_value) || class_value > 1'000'000) {
      fail(source, line_number, line, "class " + quoted(fields[7]) + " is not an integer up to 1000000");
    }
    row.class_id = class_value < 0 ? 0 : static_cast<int>(class_value);
  }
  rows.push_back(row);
}

}  // namespace

std::vector<MotRow> parse_mot(std::string_view text, const std::string& source_name) {
  std::vector<MotRow> rows;
  std::vector<std::string_view> fields;
  std::size_t line_number = 0;
  std::size_t position = 0;
  while (position < text.size()) {
    std::size_t end = text.find('\n', position);
    if (end == std::string_view::npos) end = text.size();
    ++line_number;
    parse_line(text.substr(position, end - position), line_number, source_name, fields, rows);
    position = end + 1;
  }
  return rows;
}

std::vector<MotRow> parse_mot(std::istream& input, const std::string& source_name) {
  std::vector<MotRow> rows;
  std::vector<std::string_view> fields;
  std::string line;
  std::size_t line_number = 0;
  while (std::getline(input, line)) {
    ++line_number;
    parse_line(line, line_number, source_name, fields, rows);
  }
  if (input.bad()) throw Error(source_name + ": read failed after line " + std::to_string(line_number));
  return rows;
}

std::vector<MotRow> read_mot_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw Error("cannot open MOTChallenge file '" + path + "'");
  return parse_mot(file, path);
}

std::vector<MotFrame> group_by_frame(const std::vector<MotRow>& rows) {
  std::vector<const MotRow*> ordered;
  ordered.reserve(rows.size());
  for (const auto& row : rows) ordered.push_back(&row);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const MotRow* a, const MotRow* b) { return a->frame < b->frame; });
  std::vector<MotFrame> frames;
  for (const MotRow* row : ordered) {
    if (frames.empty() || frames.back().frame != row->frame) {
      frames.emplace_back();
      frames.back().frame = row->frame;
    }
    Detection detection;
    detection.x1 = row->x;
    detection.y1 = row->y;
    detection.x2 = row->x + row->width;
    detection.y2 = row->y + row->height;
    detection.score = row->score;
    detection.class_id = row->class_id;
    frames.back().detections.push_back(std::move(detection));
  }
  return frames;
}

void write_mot_rows(std::ostream& output, std::int64_t frame, const std::vector<Track>& tracks) {
  char line[192];
  for (const auto& track : tracks) {
    const int length =
        std::snprintf(line, sizeof line, "%lld,%llu,%.2f,%.2f,%.2f,%.2f,%.4f,%d,-1,-1\n", static_cast<long long>(frame),
                      static_cast<unsigned long long>(track.id), track.box.x1, track.box.y1,
                      track.box.x2 - track.box.x1, track.box.y2 - track.box.y1, track.score, track.class_id);
    if (length > 0) output.write(line, std::min<int>(length, static_cast<int>(sizeof line) - 1));
  }
}

}  // namespace detflow::track
