// detflow/track/analytics.h — lines and zones over tracks: crossings, occupancy, dwell, loitering,
// as events (event.h) and counts derived from them.
//
// Each track is reduced to one anchor point per frame (bottom centre by default: where a person
// stands). Only detected boxes count as evidence; predicted boxes of briefly lost tracks never
// move a track across a line or into a zone.
//
// Lines: a track's side of a line is confirmed once its anchor has been observed at least
// `min_frames` consecutive times on that side, beyond the hysteresis band. The band's half-width
// is `line_hysteresis` times the box's extent across the line (|normal . (width, height)|: the
// box width for a vertical line, its height for a horizontal one, in between for a slanted one),
// because a detector's box edges jitter in proportion to the box's size along that direction and
// the bottom edge far more than the sides: for a pedestrian about 2.5 times as tall as wide, a
// vertical line gets a band 2.5 times narrower than a horizontal one. A crossing is counted
// when the confirmed side changes and the path between the last anchor on the old side and the
// first on the new side passes through the segment. So feet jittering on the line count nothing,
// and a track counts once per direction until it has gone back. A track that appears (or
// re-appears under a new id) beyond the band is only placed on its side, never counted as
// crossing; one that appears inside the band takes the side its anchor is on there, so a person
// first seen on the line who walks off the other side is counted.
// Direction: "in" when the anchor moves to the left of X1,Y1 -> X2,Y2 (see event.h).
//
// Zones (simple polygons): a track enters after `min_frames` consecutive anchors inside and exits
// after `min_frames` consecutive anchors outside (inertia against flicker at the border), or when
// the track ends. zone_exit carries the dwell time; zone_loiter is emitted once per visit when
// the dwell reaches `loiter_seconds`.
//
// Thread-safety: one thread at a time per Analytics. Per-track state is freed when the tracker
// ends the track (TrackChanges::ended); buffers are reused between frames.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "detflow/track/event.h"
#include "detflow/track/tracker.h"

namespace detflow::track {

struct Point {
  float x = 0, y = 0;
};

// Which point of the box stands for the object.
enum class Anchor { bottom_center, center, top_center, bottom_left, bottom_right };
// "bottom_center", "center", "top_center", "bottom_left", "bottom_right"; parse throws detflow::Error.
std::string_view to_string(Anchor anchor);
Anchor parse_anchor(std::string_view text);
Point anchor_point(const Box& box, Anchor anchor);

struct LineSettings {
  std::string name;
  Point start, end;                  // source pixels; must differ
  std::vector<std::string> classes;  // class labels counted; empty: every class
};

struct ZoneSettings {
  std::string name;
  std::vector<Point> polygon;        // source pixels; >= 3 points, not self-intersecting
  std::vector<std::string> classes;  // class labels counted; empty: every class
};

// Analytics settings. validate() throws detflow::Error naming the first bad value.
struct AnalyticsSettings {
  std::vector<LineSettings> lines;
  std::vector<ZoneSettings> zones;
  Anchor anchor = Anchor::bottom_center;
  int line_min_frames = 5;       // [1, 1000]: observations on the new side to count a crossing
  float line_hysteresis = 0.2f;  // [0, 1]: half-width of the band around a line where an anchor
                                 // counts for neither side, as a fraction of the box's extent
                                 // across the line (width for a vertical line, height for a
                                 // horizontal one); a person standing on the line, or a box
                                 // whose bottom jitters, counts nothing
  int zone_min_frames = 3;       // [1, 1000]: observations inside (outside) to enter (exit)
  double loiter_seconds = 30.0;  // [0, 86400]: dwell before zone_loiter; 0 disables it
  bool track_events = true;      // emit track_start / track_end

  // `labels` are the model's class labels (index = class id); classes named in lines and zones
  // must be among them. With no labels, class filters are an error.
  void validate(const std::vector<std::string>& labels) const;
};

// "NAME=X1,Y1,X2,Y2" (the --line flag and analytics.lines list items). Throws detflow::Error.
LineSettings parse_line_spec(const std::string& text);
// "NAME=X1,Y1,X2,Y2,X3,Y3[,...]" (--zone, analytics.zones). Throws detflow::Error.
ZoneSettings parse_zone_spec(const std::string& text);

class Analytics {
 public:
  // Milliseconds since 1970-01-01 UTC, for Event::unix_time_ms (replaceable for tests).
  using WallClock = std::function<std::int64_t()>;

  // Validates settings against labels (see AnalyticsSettings::validate). `stream` names the
  // events' stream ("" for a single unnamed one); `ids` makes their ids.
  Analytics(AnalyticsSettings settings, std::vector<std::string> labels = {}, std::string stream = {},
            EventIdGenerator ids = EventIdGenerator(), WallClock clock = {});

  // Consumes one frame of tracker output (Tracker::update()'s tracks and changes()) and returns
  // the events it caused, in order: track starts, then per track (ascending id) line crossings,
  // zone exits, entries and loitering, then track ends (each preceded by the zone exits it
  // causes). The reference is valid until the next update().
  const std::vector<Event>& update(const std::vector<Track>& tracks, const TrackChanges& changes, std::int64_t frame,
                                   double timestamp_seconds);

  // Counts so far (equal to CountsSnapshot::with_names(...) with every event applied).
  const CountsSnapshot& counts() const { return counts_; }
  const AnalyticsSettings& settings() const { return settings_; }
  std::size_t tracked_objects() const { return states_.size(); }  // per-track states held

 private:
  struct LineState {
    int side = 0;              // confirmed side: -1 left ("in" side), +1 right, 0 not yet known
    int candidate_side = 0;    // side being observed
    int candidate_count = 0;   // consecutive observations on candidate_side
    Point last_on_side;        // last anchor on the confirmed side
    Point first_on_candidate;  // first anchor of the candidate run
  };
  struct ZoneState {
    bool inside = false;
    int candidate_count = 0;  // consecutive observations contradicting `inside`
    double first_inside = 0;  // first anchor inside of the run that led to entering
    double entered = 0;       // when the enter was confirmed (dwell counts from first_inside)
    bool loitered = false;
  };
  struct TrackState {
    std::uint64_t id = 0;
    int class_id = 0;
    std::string label;
    std::vector<LineState> lines;
    std::vector<ZoneState> zones;
  };

  TrackState& state_for(const Track& track);
  void observe_lines(TrackState& state, const Track& track, Point anchor);
  void observe_zones(TrackState& state, const Track& track, Point anchor, double timestamp);
  void end_track(const Track& track, double timestamp);
  Event& emit(EventType type, const Track& track);

  AnalyticsSettings settings_;
  std::vector<std::string> labels_;
  std::string stream_;
  EventIdGenerator ids_;
  WallClock clock_;
  std::vector<std::vector<int>> line_classes_, zone_classes_;  // resolved class filters
  CountsSnapshot counts_;
  std::vector<TrackState> states_;  // ascending id (tracker ids only grow)
  std::vector<TrackState> spare_;   // freed states, reused for new tracks
  std::vector<Event> events_;
  std::int64_t frame_ = 0;
  double timestamp_ = 0;
  std::int64_t unix_time_ms_ = 0;
};

}  // namespace detflow::track
