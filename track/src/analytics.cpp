#include "detflow/track/analytics.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <set>
#include <sstream>

#include "detflow/error.h"

namespace detflow::track {

namespace {

double cross(Point origin, Point a, Point b) {
  return static_cast<double>(a.x - origin.x) * (b.y - origin.y) -
         static_cast<double>(a.y - origin.y) * (b.x - origin.x);
}

bool on_segment(Point a, Point b, Point p) {
  return std::min(a.x, b.x) <= p.x && p.x <= std::max(a.x, b.x) && std::min(a.y, b.y) <= p.y &&
         p.y <= std::max(a.y, b.y);
}

// Whether segments ab and cd share a point (touching and collinear overlap included).
bool segments_intersect(Point a, Point b, Point c, Point d) {
  const double d1 = cross(c, d, a), d2 = cross(c, d, b), d3 = cross(a, b, c), d4 = cross(a, b, d);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) return true;
  if (d1 == 0 && on_segment(c, d, a)) return true;
  if (d2 == 0 && on_segment(c, d, b)) return true;
  if (d3 == 0 && on_segment(a, b, c)) return true;
  if (d4 == 0 && on_segment(a, b, d)) return true;
  return false;
}

// Even-odd rule; points on the border count as inside or outside consistently per edge.
bool inside_polygon(const std::vector<Point>& polygon, Point p) {
  bool inside = false;
  for (std::size_t i = 0, j = polygon.size() - 1; i < polygon.size(); j = i++) {
    const Point a = polygon[i], b = polygon[j];
    if ((a.y > p.y) != (b.y > p.y)) {
      const double x = a.x + static_cast<double>(p.y - a.y) * (b.x - a.x) / (b.y - a.y);
      if (p.x < x) inside = !inside;
    }
  }
  return inside;
}

std::vector<float> parse_coordinates(const std::string& flag, const std::string& text, std::string& name) {
  const auto equals = text.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw Error(flag + " '" + text + "' has no name; expected NAME=X1,Y1,...");
  }
  name = text.substr(0, equals);
  if (name.find(',') != std::string::npos) {
    throw Error(flag + " name '" + name + "' contains a comma; expected NAME=X1,Y1,...");
  }
  std::vector<float> values;
  std::string_view rest(text);
  rest.remove_prefix(equals + 1);
  while (true) {
    const auto comma = rest.find(',');
    std::string_view field = rest.substr(0, comma);
    while (!field.empty() && field.front() == ' ') field.remove_prefix(1);
    while (!field.empty() && field.back() == ' ') field.remove_suffix(1);
    if (!field.empty() && field.front() == '+') field.remove_prefix(1);
    float value = 0;
    const auto result = std::from_chars(field.data(), field.data() + field.size(), value);
    if (field.empty() || result.ec != std::errc() || result.ptr != field.data() + field.size() ||
        !std::isfinite(value)) {
      throw Error(flag + " '" + text + "': '" + std::string(field) + "' is not a number; expected NAME=X1,Y1,...");
    }
    values.push_back(value);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return values;
}

void check_name(const std::string& kind, const std::string& name, std::set<std::string>& seen) {
  if (name.empty()) throw Error("analytics: a " + kind + " has an empty name");
  if (!seen.insert(name).second) throw Error("analytics: " + kind + " name '" + name + "' is used twice");
}

std::vector<int> resolve_classes(const std::string& owner, const std::vector<std::string>& classes,
                                 const std::vector<std::string>& labels) {
  std::vector<int> ids;
  for (const auto& name : classes) {
    const auto found = std::find(labels.begin(), labels.end(), name);
    if (found == labels.end()) {
      std::string known;
      for (std::size_t index = 0; index < labels.size() && index < 12; ++index) {
        known += (index ? ", " : "") + labels[index];
      }
      if (labels.size() > 12) known += ", ...";
      throw Error("analytics: " + owner + " counts unknown class '" + name + "'; the model's classes are: " +
                  (known.empty() ? std::string("none (the model has no labels)") : known));
    }
    ids.push_back(static_cast<int>(found - labels.begin()));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

bool counts_class(const std::vector<int>& filter, int class_id) {
  return filter.empty() || std::binary_search(filter.begin(), filter.end(), class_id);
}

std::int64_t system_time_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string_view to_string(Anchor anchor) {
  switch (anchor) {
    case Anchor::bottom_center:
      return "bottom_center";
    case Anchor::center:
      return "center";
    case Anchor::top_center:
      return "top_center";
    case Anchor::bottom_left:
      return "bottom_left";
    case Anchor::bottom_right:
      return "bottom_right";
  }
  return "bottom_center";
}

Anchor parse_anchor(std::string_view text) {
  for (Anchor anchor :
       {Anchor::bottom_center, Anchor::center, Anchor::top_center, Anchor::bottom_left, Anchor::bottom_right}) {
    if (to_string(anchor) == text) return anchor;
  }
  throw Error("analytics.anchor '" + std::string(text) +
              "' is unknown; accepted: bottom_center, center, top_center, bottom_left, bottom_right");
}

Point anchor_point(const Box& box, Anchor anchor) {
  const float center_x = (box.x1 + box.x2) * 0.5f;
  switch (anchor) {
    case Anchor::bottom_center:
      return {center_x, box.y2};
    case Anchor::center:
      return {center_x, (box.y1 + box.y2) * 0.5f};
    case Anchor::top_center:
      return {center_x, box.y1};
    case Anchor::bottom_left:
      return {box.x1, box.y2};
    case Anchor::bottom_right:
      return {box.x2, box.y2};
  }
  return {center_x, box.y2};
}

LineSettings parse_line_spec(const std::string& text) {
  LineSettings line;
  const auto values = parse_coordinates("--line", text, line.name);
  if (values.size() != 4) {
    throw Error("--line '" + text + "' has " + std::to_string(values.size()) + " numbers; expected NAME=X1,Y1,X2,Y2");
  }
  line.start = {values[0], values[1]};
  line.end = {values[2], values[3]};
  return line;
}

ZoneSettings parse_zone_spec(const std::string& text) {
  ZoneSettings zone;
  const auto values = parse_coordinates("--zone", text, zone.name);
  if (values.size() % 2 != 0 || values.size() < 6) {
    throw Error("--zone '" + text + "' has " + std::to_string(values.size()) +
                " numbers; expected NAME=X1,Y1,X2,Y2,X3,Y3[,...] (at least 3 points)");
  }
  for (std::size_t index = 0; index < values.size(); index += 2)
    zone.polygon.push_back({values[index], values[index + 1]});
  return zone;
}

void AnalyticsSettings::validate(const std::vector<std::string>& labels) const {
  std::set<std::string> line_names, zone_names;
  for (const auto& line : lines) {
    check_name("line", line.name, line_names);
    if (line.start.x == line.end.x && line.start.y == line.end.y) {
      throw Error("analytics: line '" + line.name + "' has zero length (both ends at " + std::to_string(line.start.x) +
                  "," + std::to_string(line.start.y) + ")");
    }
    resolve_classes("line '" + line.name + "'", line.classes, labels);
  }
  for (const auto& zone : zones) {
    check_name("zone", zone.name, zone_names);
    const std::size_t count = zone.polygon.size();
    if (count < 3) {
      throw Error("analytics: zone '" + zone.name + "' has " + std::to_string(count) +
                  " points; a polygon needs at least 3");
    }
    for (std::size_t i = 0; i < count; ++i) {
      const Point a = zone.polygon[i], b = zone.polygon[(i + 1) % count];
      if (a.x == b.x && a.y == b.y) {
        throw Error("analytics: zone '" + zone.name + "' repeats point " + std::to_string(i + 1) + " (" +
                    std::to_string(a.x) + "," + std::to_string(a.y) + ")");
      }
    }
    // Edges that are not neighbours must not touch; neighbours share exactly their corner.
    for (std::size_t i = 0; i < count; ++i) {
      for (std::size_t j = i + 1; j < count; ++j) {
        const bool neighbours = j == i + 1 || (i == 0 && j == count - 1);
        const Point a = zone.polygon[i], b = zone.polygon[(i + 1) % count];
        const Point c = zone.polygon[j], d = zone.polygon[(j + 1) % count];
        bool bad = false;
        if (neighbours) {
          // Folding back onto the previous edge (collinear overlap) is also self-intersection.
          const Point shared = (j == i + 1) ? b : a;
          const Point other_first = (j == i + 1) ? a : b;
          const Point other_second = (j == i + 1) ? d : c;
          bad = cross(shared, other_first, other_second) == 0 &&
                ((other_first.x - shared.x) * (other_second.x - shared.x) +
                 (other_first.y - shared.y) * (other_second.y - shared.y)) > 0;
        } else {
          bad = segments_intersect(a, b, c, d);
        }
        if (bad) {
          throw Error("analytics: zone '" + zone.name + "' intersects itself (edges " + std::to_string(i + 1) +
                      " and " + std::to_string(j + 1) + "); give the points in order around the area");
        }
      }
    }
    resolve_classes("zone '" + zone.name + "'", zone.classes, labels);
  }
  if (line_min_frames < 1 || line_min_frames > 1000) {
    throw Error("analytics.line_min_frames = " + std::to_string(line_min_frames) +
                " is out of range; accepted: 1 to 1000");
  }
  if (!(line_hysteresis >= 0 && line_hysteresis <= 1)) {
    throw Error("analytics.line_hysteresis = " + std::to_string(line_hysteresis) +
                " is out of range; accepted: [0, 1]");
  }
  if (zone_min_frames < 1 || zone_min_frames > 1000) {
    throw Error("analytics.zone_min_frames = " + std::to_string(zone_min_frames) +
                " is out of range; accepted: 1 to 1000");
  }
  if (!(loiter_seconds >= 0 && loiter_seconds <= 86400)) {
    throw Error("analytics.loiter_seconds = " + std::to_string(loiter_seconds) +
                " is out of range; accepted: [0, 86400] seconds (0 disables loitering events)");
  }
}

Analytics::Analytics(AnalyticsSettings settings, std::vector<std::string> labels, std::string stream,
                     EventIdGenerator ids, WallClock clock)
    : settings_(std::move(settings)),
      labels_(std::move(labels)),
      stream_(std::move(stream)),
      ids_(std::move(ids)),
      clock_(clock ? std::move(clock) : WallClock(system_time_ms)) {
  settings_.validate(labels_);
  std::vector<std::string> line_names, zone_names;
  for (const auto& line : settings_.lines) {
    line_names.push_back(line.name);
    line_classes_.push_back(resolve_classes("line '" + line.name + "'", line.classes, labels_));
  }
  for (const auto& zone : settings_.zones) {
    zone_names.push_back(zone.name);
    zone_classes_.push_back(resolve_classes("zone '" + zone.name + "'", zone.classes, labels_));
  }
  counts_ = CountsSnapshot::with_names(line_names, zone_names);
}

Event& Analytics::emit(EventType type, const Track& track) {
  if (events_.empty()) unix_time_ms_ = clock_();  // one clock read per frame with events
  Event& event = events_.emplace_back();
  event.event_id = ids_.next();
  event.unix_time_ms = unix_time_ms_;
  event.pts_ms = std::llround(timestamp_ * 1000.0);
  event.frame = frame_;
  event.type = type;
  event.stream = stream_;
  event.track_id = track.id;
  event.class_id = track.class_id;
  event.label = track.label;
  event.box = track.box;
  return event;
}

Analytics::TrackState& Analytics::state_for(const Track& track) {
  auto position = std::lower_bound(states_.begin(), states_.end(), track.id,
                                   [](const TrackState& state, std::uint64_t id) { return state.id < id; });
  if (position != states_.end() && position->id == track.id) return *position;
  TrackState state;
  if (!spare_.empty()) {
    state = std::move(spare_.back());
    spare_.pop_back();
  }
  state.id = track.id;
  state.class_id = track.class_id;
  state.label = track.label;
  state.lines.assign(settings_.lines.size(), LineState{});
  state.zones.assign(settings_.zones.size(), ZoneState{});
  return *states_.insert(position, std::move(state));
}

void Analytics::observe_lines(TrackState& state, const Track& track, Point anchor) {
  const double box_width = std::max(track.box.x2 - track.box.x1, 1.0f);
  const double box_height = std::max(track.box.y2 - track.box.y1, 1.0f);
  for (std::size_t index = 0; index < settings_.lines.size(); ++index) {
    if (!counts_class(line_classes_[index], track.class_id)) continue;
    const LineSettings& line = settings_.lines[index];
    LineState& line_state = state.lines[index];
    const double dx = line.end.x - line.start.x, dy = line.end.y - line.start.y;
    const double length = std::sqrt(dx * dx + dy * dy);
    const double distance = (dx * (anchor.y - line.start.y) - dy * (anchor.x - line.start.x)) / length;
    // The box's extent across the line, |normal . (width, height)|: its width for a vertical
    // line, its height for a horizontal one. Box edges jitter in proportion to it (a person's
    // bottom edge much more than the side edges), so the band does too.
    const double extent = (std::fabs(dy) * box_width + std::fabs(dx) * box_height) / length;
    if (std::fabs(distance) <= extent * settings_.line_hysteresis) {
      // On the line: no side, except for a track seen here first (a person entering the view on
      // the line, or given a new id there). It takes the side its anchor is on, so walking off
      // the other side still counts; walking off the same side only confirms it. Without this,
      // every crossing whose track starts in the band is lost.
      if (line_state.side == 0 && distance != 0) {
        line_state.side = distance < 0 ? -1 : 1;
        line_state.last_on_side = anchor;
      }
      continue;
    }
    const int side = distance < 0 ? -1 : 1;
    if (line_state.side == 0) {
      line_state.side = side;
      line_state.last_on_side = anchor;
      continue;
    }
    if (side == line_state.side) {
      line_state.last_on_side = anchor;
      line_state.candidate_count = 0;
      continue;
    }
    if (line_state.candidate_count == 0 || line_state.candidate_side != side) {
      line_state.candidate_side = side;
      line_state.candidate_count = 0;
      line_state.first_on_candidate = anchor;
    }
    if (++line_state.candidate_count < settings_.line_min_frames) continue;
    // Confirmed on the other side: a crossing if the step from the old side passed the segment.
    const Point a = line_state.last_on_side, b = line_state.first_on_candidate;
    const double side_a = dx * (a.y - line.start.y) - dy * (a.x - line.start.x);
    const double side_b = dx * (b.y - line.start.y) - dy * (b.x - line.start.x);
    bool through_segment = false;
    if (side_a != side_b) {
      const double t = side_a / (side_a - side_b);
      const double cx = a.x + t * (b.x - a.x), cy = a.y + t * (b.y - a.y);
      const double u = ((cx - line.start.x) * dx + (cy - line.start.y) * dy) / (dx * dx + dy * dy);
      through_segment = u >= 0 && u <= 1;
    }
    line_state.side = side;
    line_state.last_on_side = anchor;
    line_state.candidate_count = 0;
    if (!through_segment) continue;
    Event& event = emit(EventType::line_cross, track);
    event.line = line.name;
    event.direction = side < 0 ? Direction::in : Direction::out;
    counts_.apply(event);
  }
}

void Analytics::observe_zones(TrackState& state, const Track& track, Point anchor, double timestamp) {
  for (std::size_t index = 0; index < settings_.zones.size(); ++index) {
    if (!counts_class(zone_classes_[index], track.class_id)) continue;
    const ZoneSettings& zone = settings_.zones[index];
    ZoneState& zone_state = state.zones[index];
    if (!track.predicted) {
      const bool inside = inside_polygon(zone.polygon, anchor);
      if (inside == zone_state.inside) {
        zone_state.candidate_count = 0;
      } else {
        if (++zone_state.candidate_count == 1 && inside) zone_state.first_inside = timestamp;
        if (zone_state.candidate_count >= settings_.zone_min_frames) {
          zone_state.candidate_count = 0;
          zone_state.inside = inside;
          Event& event = emit(inside ? EventType::zone_enter : EventType::zone_exit, track);
          event.zone = zone.name;
          event.direction = inside ? Direction::in : Direction::out;
          if (inside) {
            zone_state.entered = timestamp;
            zone_state.loitered = false;
          } else {
            event.duration_seconds = std::max(0.0, timestamp - zone_state.first_inside);
          }
          counts_.apply(event);
        }
      }
    }
    if (zone_state.inside && !zone_state.loitered && settings_.loiter_seconds > 0 &&
        timestamp - zone_state.first_inside >= settings_.loiter_seconds) {
      zone_state.loitered = true;
      Event& event = emit(EventType::zone_loiter, track);
      event.zone = zone.name;
      event.duration_seconds = timestamp - zone_state.first_inside;
      counts_.apply(event);
    }
  }
}

void Analytics::end_track(const Track& track, double timestamp) {
  auto position = std::lower_bound(states_.begin(), states_.end(), track.id,
                                   [](const TrackState& state, std::uint64_t id) { return state.id < id; });
  if (position != states_.end() && position->id == track.id) {
    for (std::size_t index = 0; index < settings_.zones.size(); ++index) {
      const ZoneState& zone_state = position->zones[index];
      if (!zone_state.inside) continue;
      Event& event = emit(EventType::zone_exit, track);
      event.zone = settings_.zones[index].name;
      event.direction = Direction::out;
      event.duration_seconds = std::max(0.0, std::min(track.last_seen, timestamp) - zone_state.first_inside);
      counts_.apply(event);
    }
    spare_.push_back(std::move(*position));
    states_.erase(position);
  }
  if (settings_.track_events) {
    Event& event = emit(EventType::track_end, track);
    event.duration_seconds = std::max(0.0, track.last_seen - track.first_seen);
  }
}

const std::vector<Event>& Analytics::update(const std::vector<Track>& tracks, const TrackChanges& changes,
                                            std::int64_t frame, double timestamp_seconds) {
  events_.clear();
  frame_ = frame;
  timestamp_ = timestamp_seconds;
  if (settings_.track_events) {
    for (const auto& track : changes.started) emit(EventType::track_start, track);
  }
  if (!settings_.lines.empty() || !settings_.zones.empty()) {
    for (const auto& track : tracks) {
      TrackState& state = state_for(track);
      const Point anchor = anchor_point(track.box, settings_.anchor);
      if (!track.predicted) observe_lines(state, track, anchor);
      observe_zones(state, track, anchor, timestamp_seconds);
    }
  }
  for (const auto& track : changes.ended) end_track(track, timestamp_seconds);
  counts_.frame = frame;
  counts_.pts_ms = std::llround(timestamp_seconds * 1000.0);
  return events_;
}

}  // namespace detflow::track
