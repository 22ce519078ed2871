// detflow/track/event.h — what the tracker and the analytics tell the world: events, and the
// counts derived from them. This header is a stable contract: sinks (JSONL `--events`, the MQTT
// publisher) serialise these values with to_json() and receive the same events in the same order.
//
// An Event is a plain value: copyable, no references into tracker state. Its JSON form, one
// object per event (JSON Lines in files):
//
//   {"event_id": "3f9c2a7b51d04e86-0000000042",   run prefix + "-" + per-run sequence
//    "time": "2026-11-30T08:30:12.345Z",            wall clock (UTC) when the event was produced
//    "pts_ms": 12345,                               stream time of the frame, in milliseconds
//    "frame": 370,                                  the caller's frame number (see Event::frame)
//    "type": "line_cross",                          track_start | track_end | line_cross |
//                                                   zone_enter | zone_exit | zone_loiter
//    "stream": "door-cam",                          only when the event names a stream
//    "track_id": 17, "class": 0, "label": "person",
//    "line": "door",                                line_cross only; "zone": "lobby" for zone_*
//    "direction": "in",                             line_cross: "in" | "out"; zone_enter "in",
//                                                   zone_exit "out"; otherwise null
//    "box": [x1, y1, x2, y2],                       source pixels, the track's box at that frame
//    "duration_s": 4.2}                             track_end: track lifetime; zone_exit and
//                                                   zone_loiter: dwell time in the zone; else absent
//
// Event ids are unique across runs (a random 64-bit run prefix, hex) and ordered within a run
// (the zero-padded sequence sorts as text in production order).
//
// CountsSnapshot is state derived from events: apply() every event, in order, to a snapshot that
// knows the configured lines and zones, and it equals the analytics' own counts. Thread-safety:
// none of these types synchronise; an EventIdGenerator is used by one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace detflow::track {

enum class EventType { track_start, track_end, line_cross, zone_enter, zone_exit, zone_loiter };

// "track_start", "track_end", "line_cross", "zone_enter", "zone_exit", "zone_loiter".
std::string_view to_string(EventType type);

// Line crossings: "in" when the anchor moves to the left side of the line's direction
// X1,Y1 -> X2,Y2 (cross product (P2 - P1) x (anchor - P1) < 0 in image coordinates, y down),
// "out" when it moves to the right side. Zones: enter is `in`, exit is `out`.
enum class Direction { none, in, out };

// "in", "out"; none has no text (serialised as null).
std::string_view to_string(Direction direction);

// An axis-aligned box in source pixels (x1, y1 top-left; x2, y2 bottom-right).
struct Box {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
};

struct Event {
  std::string event_id;           // EventIdGenerator::next(): unique across runs, ordered per run
  std::int64_t unix_time_ms = 0;  // wall clock (milliseconds since 1970-01-01 UTC) when produced
  std::int64_t pts_ms = 0;        // stream time of the frame, milliseconds (timestamp given to the tracker)
  std::int64_t frame = 0;         // the caller's frame number: pipeline frame index (from 0);
                                  // `detflow track`: the MOTChallenge frame number (from 1)
  EventType type = EventType::track_start;
  std::string stream;          // the stream's name; empty for a single unnamed stream (omitted)
  std::uint64_t track_id = 0;  // tracker id, unique within a run, never reused
  int class_id = 0;
  std::string label;  // the class's label; empty when the model has none
  std::string line;   // line_cross: the line's name; else empty
  std::string zone;   // zone_enter, zone_exit, zone_loiter: the zone's name; else empty
  Direction direction = Direction::none;
  Box box;
  double duration_seconds = -1;  // track_end: lifetime; zone_exit/zone_loiter: dwell; < 0: absent
};

// The JSON object described at the top of this file.
nlohmann::json to_json(const Event& event);
// One line of JSON without the newline (to_json(event).dump()).
std::string to_json_line(const Event& event);

// Makes event ids: "<16 hex digits of run prefix>-<sequence, at least 10 digits>", sequence from 1.
class EventIdGenerator {
 public:
  // A random prefix (std::random_device), so ids of different runs do not collide.
  EventIdGenerator();
  // A fixed prefix (tests, or a caller that persists its own run id).
  explicit EventIdGenerator(std::string run_prefix);

  std::string next();
  const std::string& run_prefix() const { return run_prefix_; }
  std::uint64_t issued() const { return sequence_; }

 private:
  std::string run_prefix_;
  std::uint64_t sequence_ = 0;
};

// In and out crossings of one class across one line.
struct ClassLineCount {
  int class_id = 0;
  std::string label;
  std::int64_t in = 0;
  std::int64_t out = 0;
};

struct LineCounts {
  std::string name;
  std::vector<ClassLineCount> classes;  // one entry per class seen crossing, ascending class_id
  std::int64_t in() const;              // summed over classes
  std::int64_t out() const;
};

// Tracks of one class inside one zone now, and how many entered since the start.
struct ClassZoneCount {
  int class_id = 0;
  std::string label;
  std::int64_t occupancy = 0;
  std::int64_t entered = 0;
};

struct ZoneCounts {
  std::string name;
  std::vector<ClassZoneCount> classes;  // one entry per class seen entering, ascending class_id
  std::int64_t occupancy() const;       // summed over classes
  std::int64_t entered() const;
};

// Counts at one moment: per line in/out per class, per zone occupancy per class.
struct CountsSnapshot {
  std::int64_t frame = 0;  // the frame of the last applied event or update
  std::int64_t pts_ms = 0;
  std::vector<LineCounts> lines;  // configuration order
  std::vector<ZoneCounts> zones;  // configuration order

  // An empty snapshot that knows these lines and zones (so unvisited ones report zero).
  static CountsSnapshot with_names(const std::vector<std::string>& line_names,
                                   const std::vector<std::string>& zone_names);
  // line_cross adds to its line's in/out; zone_enter raises occupancy and entered, zone_exit lowers
  // occupancy; other types only move frame/pts_ms. A line or zone not yet known is appended.
  void apply(const Event& event);
};

// {"frame", "pts_ms", "lines": [{"name", "in", "out", "classes": [{"class", "label", "in", "out"}]}],
//  "zones": [{"name", "occupancy", "entered", "classes": [{"class", "label", "occupancy", "entered"}]}]}
nlohmann::json to_json(const CountsSnapshot& counts);

}  // namespace detflow::track
