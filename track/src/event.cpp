#include "detflow/track/event.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <random>

namespace detflow::track {

std::string_view to_string(EventType type) {
  switch (type) {
    case EventType::track_start:
      return "track_start";
    case EventType::track_end:
      return "track_end";
    case EventType::line_cross:
      return "line_cross";
    case EventType::zone_enter:
      return "zone_enter";
    case EventType::zone_exit:
      return "zone_exit";
    case EventType::zone_loiter:
      return "zone_loiter";
  }
  return "unknown";
}

std::string_view to_string(Direction direction) {
  switch (direction) {
    case Direction::in:
      return "in";
    case Direction::out:
      return "out";
    case Direction::none:
      break;
  }
  return {};
}

namespace {

// ISO 8601 UTC with milliseconds, e.g. 2026-11-30T08:30:12.345Z.
std::string iso8601_utc(std::int64_t unix_time_ms) {
  std::int64_t seconds = unix_time_ms / 1000;
  std::int64_t milliseconds = unix_time_ms % 1000;
  if (milliseconds < 0) {
    milliseconds += 1000;
    seconds -= 1;
  }
  const std::time_t time = static_cast<std::time_t>(seconds);
  std::tm utc{};
  ::gmtime_r(&time, &utc);
  char text[96];  // room for any int fields, though a valid time needs 24
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(milliseconds));
  return text;
}

template <typename Entry>
Entry& class_entry(std::vector<Entry>& classes, int class_id, const std::string& label) {
  auto position = std::lower_bound(classes.begin(), classes.end(), class_id,
                                   [](const Entry& entry, int id) { return entry.class_id < id; });
  if (position == classes.end() || position->class_id != class_id) {
    Entry entry;
    entry.class_id = class_id;
    entry.label = label;
    position = classes.insert(position, std::move(entry));
  }
  return *position;
}

template <typename Named>
Named& named_entry(std::vector<Named>& entries, const std::string& name) {
  for (auto& entry : entries) {
    if (entry.name == name) return entry;
  }
  Named entry;
  entry.name = name;
  entries.push_back(std::move(entry));
  return entries.back();
}

}  // namespace

nlohmann::json to_json(const Event& event) {
  nlohmann::json json = nlohmann::json::object();
  json["event_id"] = event.event_id;
  json["time"] = iso8601_utc(event.unix_time_ms);
  json["pts_ms"] = event.pts_ms;
  json["frame"] = event.frame;
  json["type"] = std::string(to_string(event.type));
  if (!event.stream.empty()) json["stream"] = event.stream;
  json["track_id"] = event.track_id;
  json["class"] = event.class_id;
  json["label"] = event.label;
  if (event.type == EventType::line_cross) json["line"] = event.line;
  if (event.type == EventType::zone_enter || event.type == EventType::zone_exit ||
      event.type == EventType::zone_loiter) {
    json["zone"] = event.zone;
  }
  if (event.direction == Direction::none) {
    json["direction"] = nullptr;
  } else {
    json["direction"] = std::string(to_string(event.direction));
  }
  json["box"] = {event.box.x1, event.box.y1, event.box.x2, event.box.y2};
  if (event.duration_seconds >= 0) json["duration_s"] = event.duration_seconds;
  return json;
}

std::string to_json_line(const Event& event) { return to_json(event).dump(); }

EventIdGenerator::EventIdGenerator() {
  std::random_device device;
  const std::uint64_t prefix = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  char text[17];
  std::snprintf(text, sizeof text, "%016" PRIx64, prefix);
  run_prefix_ = text;
}

EventIdGenerator::EventIdGenerator(std::string run_prefix) : run_prefix_(std::move(run_prefix)) {}

std::string EventIdGenerator::next() {
  ++sequence_;
  char digits[24];
  std::snprintf(digits, sizeof digits, "%010" PRIu64, sequence_);
  std::string id;
  id.reserve(run_prefix_.size() + 1 + 20);
  id += run_prefix_;
  id += '-';
  id += digits;
  return id;
}

std::int64_t LineCounts::in() const {
  std::int64_t total = 0;
  for (const auto& entry : classes) total += entry.in;
  return total;
}

std::int64_t LineCounts::out() const {
  std::int64_t total = 0;
  for (const auto& entry : classes) total += entry.out;
  return total;
}

std::int64_t ZoneCounts::occupancy() const {
  std::int64_t total = 0;
  for (const auto& entry : classes) total += entry.occupancy;
  return total;
}

std::int64_t ZoneCounts::entered() const {
  std::int64_t total = 0;
  for (const auto& entry : classes) total += entry.entered;
  return total;
}

CountsSnapshot CountsSnapshot::with_names(const std::vector<std::string>& line_names,
                                          const std::vector<std::string>& zone_names) {
  CountsSnapshot counts;
  for (const auto& name : line_names) counts.lines.push_back(LineCounts{name, {}});
  for (const auto& name : zone_names) counts.zones.push_back(ZoneCounts{name, {}});
  return counts;
}

void CountsSnapshot::apply(const Event& event) {
  frame = event.frame;
  pts_ms = event.pts_ms;
  switch (event.type) {
    case EventType::line_cross: {
      auto& entry = class_entry(named_entry(lines, event.line).classes, event.class_id, event.label);
      if (event.direction == Direction::in) ++entry.in;
      if (event.direction == Direction::out) ++entry.out;
      break;
    }
    case EventType::zone_enter: {
      auto& entry = class_entry(named_entry(zones, event.zone).classes, event.class_id, event.label);
      ++entry.occupancy;
      ++entry.entered;
      break;
    }
    case EventType::zone_exit: {
      auto& entry = class_entry(named_entry(zones, event.zone).classes, event.class_id, event.label);
      if (entry.occupancy > 0) --entry.occupancy;
      break;
    }
    case EventType::track_start:
    case EventType::track_end:
    case EventType::zone_loiter:
      break;
  }
}

nlohmann::json to_json(const CountsSnapshot& counts) {
  nlohmann::json json = nlohmann::json::object();
  json["frame"] = counts.frame;
  json["pts_ms"] = counts.pts_ms;
  auto lines = nlohmann::json::array();
  for (const auto& line : counts.lines) {
    auto classes = nlohmann::json::array();
    for (const auto& entry : line.classes) {
      classes.push_back({{"class", entry.class_id}, {"label", entry.label}, {"in", entry.in}, {"out", entry.out}});
    }
    lines.push_back({{"name", line.name}, {"in", line.in()}, {"out", line.out()}, {"classes", std::move(classes)}});
  }
  auto zones = nlohmann::json::array();
  for (const auto& zone : counts.zones) {
    auto classes = nlohmann::json::array();
    for (const auto& entry : zone.classes) {
      classes.push_back({{"class", entry.class_id},
                         {"label", entry.label},
                         {"occupancy", entry.occupancy},
                         {"entered", entry.entered}});
    }
    zones.push_back({{"name", zone.name},
                     {"occupancy", zone.occupancy()},
                     {"entered", zone.entered()},
                     {"classes", std::move(classes)}});
  }
  json["lines"] = std::move(lines);
  json["zones"] = std::move(zones);
  return json;
}

}  // namespace detflow::track
