// Line and zone analytics on scripted tracks: crossings counted once, jitter and flicker
// ignored, zone inertia, dwell and loitering, state freed with the track, counts equal to the
// events, and configuration errors.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "detflow/error.h"
#include "detflow/track/analytics.h"

namespace detflow::track {
namespace {

// A confirmed track whose bottom-centre anchor is at (x, y).
Track track_at(std::uint64_t id, float x, float y, bool predicted = false, int class_id = 0) {
  Track track;
  track.id = id;
  track.box = {x - 20, y - 100, x + 20, y};
  track.class_id = class_id;
  track.label = class_id == 0 ? "person" : "car";
  track.predicted = predicted;
  return track;
}

Analytics make_analytics(AnalyticsSettings settings) {
  return Analytics(std::move(settings), {"person", "car"}, "", EventIdGenerator("test"), [] { return 0; });
}

// Feeds one track along anchor positions (one frame each) and returns every event.
std::vector<Event> run_path(Analytics& analytics, const std::vector<Point>& path, std::uint64_t id = 1) {
  std::vector<Event> events;
  TrackChanges no_changes;
  for (std::size_t frame = 0; frame < path.size(); ++frame) {
    const std::vector<Track> tracks{track_at(id, path[frame].x, path[frame].y)};
    for (const auto& event : analytics.update(tracks, no_changes, static_cast<std::int64_t>(frame), frame / 30.0)) {
      events.push_back(event);
    }
  }
  return events;
}

AnalyticsSettings one_vertical_line() {
  AnalyticsSettings settings;
  settings.lines.push_back(LineSettings{"door", {500, 0}, {500, 1000}, {}});
  settings.track_events = false;
  return settings;
}

std::vector<Point> walk(float from_x, float to_x, float step, float y = 500) {
  std::vector<Point> path;
  for (float x = from_x; step > 0 ? x <= to_x : x >= to_x; x += step) path.push_back({x, y});
  return path;
}

TEST(LineAnalytics, CountsOneCrossingWithTheDirectionOfTheCrossProduct) {
  // Line (500,0) -> (500,1000) points down; its left side (cross product < 0) is x > 500: "in".
  Analytics analytics = make_analytics(one_vertical_line());
  const auto events = run_path(analytics, walk(400, 600, 10));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::line_cross);
  EXPECT_EQ(events[0].line, "door");
  EXPECT_EQ(events[0].direction, Direction::in);
  EXPECT_EQ(analytics.counts().lines.at(0).in(), 1);
  EXPECT_EQ(analytics.counts().lines.at(0).out(), 0);

  Analytics back = make_analytics(one_vertical_line());
  const auto back_events = run_path(back, walk(600, 400, -10));
  ASSERT_EQ(back_events.size(), 1u);
  EXPECT_EQ(back_events[0].direction, Direction::out);
}

TEST(LineAnalytics, FeetJitteringOnTheLineCountNothing) {
  Analytics analytics = make_analytics(one_vertical_line());
  std::vector<Point> path;
  for (int frame = 0; frame < 200; ++frame) path.push_back({frame % 2 ? 506.0f : 494.0f, 500});
  EXPECT_TRUE(run_path(analytics, path).empty());
  // Runs shorter than line_min_frames on the far side do not count either.
  std::vector<Point> short_runs;
  for (int frame = 0; frame < 200; ++frame) short_runs.push_back({frame % 4 < 2 ? 470.0f : 530.0f, 500});
  Analytics second = make_analytics(one_vertical_line());
  EXPECT_TRUE(run_path(second, short_runs).empty());
}

TEST(LineAnalytics, CountsAgainOnlyAfterGoingBack) {
  Analytics analytics = make_analytics(one_vertical_line());
  auto path = walk(400, 600, 10);
  const auto back = walk(600, 400, -10);
  path.insert(path.end(), back.begin(), back.end());
  const auto forth = walk(400, 600, 10);
  path.insert(path.end(), forth.begin(), forth.end());
  const auto events = run_path(analytics, path);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].direction, Direction::in);
  EXPECT_EQ(events[1].direction, Direction::out);
  EXPECT_EQ(events[2].direction, Direction::in);
}

TEST(LineAnalytics, IgnoresCrossingsBesideTheSegmentAndNewTracksOnTheFarSide) {
  AnalyticsSettings settings = one_vertical_line();
  settings.lines[0].end = {500, 300};  // segment y in [0, 300]; the path walks at y = 500
  Analytics analytics = make_analytics(settings);
  EXPECT_TRUE(run_path(analytics, walk(400, 600, 10)).empty());

  // ID flicker: the object reappears on the other side under a new id; no crossing is invented.
  Analytics flicker = make_analytics(one_vertical_line());
  EXPECT_TRUE(run_path(flicker, walk(400, 480, 10), 1).empty());
  EXPECT_TRUE(run_path(flicker, walk(520, 600, 10), 2).empty());
}

TEST(LineAnalytics, ATrackFirstSeenOnTheLineCountsOnlyWhenItWalksOffTheOtherSide) {
  // The band is 8 px either side of x = 500 (boxes 40 wide). x < 500 is the "out" side.
  // First seen at x = 497 (on the line, its anchor on the "out" side), walking off to x = 600.
  Analytics across = make_analytics(one_vertical_line());
  const auto events = run_path(across, walk(497, 600, 5));
  ASSERT_EQ(events.size(), 1u) << "a person entering the view on the line and leaving across it";
  EXPECT_EQ(events[0].direction, Direction::in);
  // First seen at x = 503, on the side it walks off to: it only takes its side.
  Analytics same_side = make_analytics(one_vertical_line());
  EXPECT_TRUE(run_path(same_side, walk(503, 600, 5)).empty());
  // Exactly on the line: no side to start from, nothing counted.
  Analytics exactly = make_analytics(one_vertical_line());
  EXPECT_TRUE(run_path(exactly, walk(500, 600, 5)).empty());
  // Standing on the line, feet jittering within the band: nothing.
  Analytics standing = make_analytics(one_vertical_line());
  std::vector<Point> path;
  for (int frame = 0; frame < 200; ++frame) path.push_back({frame % 3 == 0 ? 497.0f : 505.0f, 500});
  EXPECT_TRUE(run_path(standing, path).empty());
}

TEST(LineAnalytics, PredictedBoxesAreNoEvidence) {
  Analytics analytics = make_analytics(one_vertical_line());
  TrackChanges no_changes;
  for (int frame = 0; frame < 10; ++frame) analytics.update({track_at(1, 400, 500)}, no_changes, frame, frame / 30.0);
  for (int frame = 10; frame < 20; ++frame) {
    EXPECT_TRUE(analytics.update({track_at(1, 600, 500, true)}, no_changes, frame, frame / 30.0).empty());
  }
}

// Runs of `run` frames alternating between two anchors, `runs` runs in all.
std::vector<Point> alternate(Point first, Point second, int run, int runs) {
  std::vector<Point> path;
  for (int index = 0; index < runs; ++index) path.insert(path.end(), run, index % 2 ? second : first);
  return path;
}

TEST(LineAnalytics, TheBandFollowsTheBoxExtentAcrossTheLine) {
  // Boxes are 40 wide and 100 tall; line_hysteresis 0.2: a band of 8 px either side of a vertical
  // line (0.2 x width), 20 px either side of a horizontal one (0.2 x height).
  // A person stepping 15 px (0.375 box widths) across a vertical line and staying crosses.
  Analytics vertical = make_analytics(one_vertical_line());
  const auto events = run_path(vertical, alternate({485, 500}, {515, 500}, 10, 2));
  ASSERT_EQ(events.size(), 1u) << "a step of 0.375 box widths across a vertical line is a crossing";
  EXPECT_EQ(events[0].direction, Direction::in);

  // The bottom edge jittering 15 px (0.15 box heights) about a horizontal line, in runs longer
  // than line_min_frames, is noise: bottom edges jitter far more than side edges.
  AnalyticsSettings settings = one_vertical_line();
  settings.lines[0] = LineSettings{"floor", {0, 500}, {1000, 500}, {}};
  Analytics horizontal = make_analytics(settings);
  EXPECT_TRUE(run_path(horizontal, alternate({300, 485}, {300, 515}, 8, 20)).empty());

  // A diagonal line: the extent is (width + height) / sqrt 2 = 99 px, a band of 19.8 px.
  settings.lines[0] = LineSettings{"diagonal", {0, 0}, {1000, 1000}, {}};
  Analytics diagonal = make_analytics(settings);
  // 12 px from the line either side (within the band): nothing.
  EXPECT_TRUE(run_path(diagonal, alternate({508.5f, 491.5f}, {491.5f, 508.5f}, 8, 20)).empty());
  // 28 px either side: one crossing per change of side.
  EXPECT_EQ(run_path(diagonal, alternate({520, 480}, {480, 520}, 8, 2), 2).size(), 1u);
}

TEST(LineAnalytics, AnIdentitySwitchOnTheLineIsNotCountedTwice) {
  // Track 1 crosses and is counted, is lost just past the line, and the same person re-appears
  // as track 2, first back inside the band, then walking on: the crossing is counted once.
  Analytics analytics = make_analytics(one_vertical_line());
  TrackChanges no_changes;
  std::size_t crossings = 0;
  std::int64_t frame = 0;
  for (const Point& anchor : walk(400, 540, 5)) {
    crossings += analytics.update({track_at(1, anchor.x, anchor.y)}, no_changes, frame, frame / 30.0).size();
    ++frame;
  }
  EXPECT_EQ(crossings, 1u);
  for (int lost = 0; lost < 5; ++lost, ++frame) {
    crossings += analytics.update({track_at(1, 545, 500, true)}, no_changes, frame, frame / 30.0).size();
  }
  auto path = walk(503, 497, -1);  // re-born on the line, its box still jittering
  const auto on = walk(505, 700, 5);
  path.insert(path.end(), on.begin(), on.end());
  for (const Point& anchor : path) {
    crossings += analytics.update({track_at(2, anchor.x, anchor.y)}, no_changes, frame, frame / 30.0).size();
    ++frame;
  }
  EXPECT_EQ(crossings, 1u);
  EXPECT_EQ(analytics.counts().lines.at(0).in(), 1);
}

TEST(LineAnalytics, CountsOnlyTheConfiguredClasses) {
  AnalyticsSettings settings = one_vertical_line();
  settings.lines[0].classes = {"car"};
  Analytics analytics = make_analytics(settings);
  EXPECT_TRUE(run_path(analytics, walk(400, 600, 10)).empty()) << "a person does not count on a car line";
}

AnalyticsSettings one_square_zone() {
  AnalyticsSettings settings;
  settings.zones.push_back(ZoneSettings{"lobby", {{100, 100}, {300, 100}, {300, 300}, {100, 300}}, {}});
  settings.zone_min_frames = 3;
  settings.loiter_seconds = 1.0;
  return settings;
}

TEST(ZoneAnalytics, EntersWithInertiaLoitersAndExitsWithDwell) {
  Analytics analytics = make_analytics(one_square_zone());
  TrackChanges changes;
  std::vector<Event> events;
  const auto step = [&](std::int64_t frame, float x, const TrackChanges& frame_changes) {
    const std::vector<Track> tracks{track_at(7, x, 200)};
    for (const auto& event : analytics.update(tracks, frame_changes, frame, frame / 30.0)) events.push_back(event);
  };
  step(0, 50, changes);
  step(1, 150, changes);                                              // first inside at t = 1/30
  step(2, 50, changes);                                               // flicker outside: resets the run
  for (int frame = 3; frame < 6; ++frame) step(frame, 150, changes);  // inside from t = 3/30
  ASSERT_EQ(events.size(), 1u) << "zone_enter after 3 consecutive frames inside";
  EXPECT_EQ(events[0].type, EventType::zone_enter);
  EXPECT_EQ(events[0].zone, "lobby");
  EXPECT_EQ(events[0].direction, Direction::in);
  EXPECT_EQ(events[0].frame, 5);
  EXPECT_EQ(analytics.counts().zones.at(0).occupancy(), 1);
  for (int frame = 6; frame < 40; ++frame) step(frame, 150, changes);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type, EventType::zone_loiter);
  EXPECT_NEAR(static_cast<double>(events[1].frame), 33.0, 1.0) << "1 s after the first frame inside (frame 3)";
  for (int frame = 40; frame < 43; ++frame) step(frame, 400, changes);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].type, EventType::zone_exit);
  EXPECT_NEAR(events[2].duration_seconds, (42 - 3) / 30.0, 1e-9);
  EXPECT_EQ(analytics.counts().zones.at(0).occupancy(), 0);
  EXPECT_EQ(analytics.counts().zones.at(0).entered(), 1);
}

TEST(ZoneAnalytics, ATrackEndingInsideExitsFirstAndItsStateIsFreed) {
  AnalyticsSettings settings = one_square_zone();
  settings.zone_min_frames = 1;
  Analytics analytics = make_analytics(settings);
  TrackChanges started;
  started.started.push_back(track_at(3, 150, 200));
  started.started[0].first_seen = 0;
  std::vector<Event> events;
  for (const auto& event : analytics.update({track_at(3, 150, 200)}, started, 0, 0.0)) events.push_back(event);
  EXPECT_EQ(analytics.tracked_objects(), 1u);
  TrackChanges ended;
  ended.ended.push_back(track_at(3, 150, 200, true));
  ended.ended[0].first_seen = 0;
  ended.ended[0].last_seen = 0.5;
  for (const auto& event : analytics.update({}, ended, 30, 1.0)) events.push_back(event);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].type, EventType::track_start);
  EXPECT_EQ(events[1].type, EventType::zone_enter);
  EXPECT_EQ(events[2].type, EventType::zone_exit);
  EXPECT_EQ(events[3].type, EventType::track_end);
  EXPECT_DOUBLE_EQ(events[3].duration_seconds, 0.5);
  EXPECT_EQ(analytics.tracked_objects(), 0u);
  EXPECT_EQ(analytics.counts().zones.at(0).occupancy(), 0);
}

TEST(Analytics, CountsEqualTheEventsReplayedAndIdsAreOrdered) {
  AnalyticsSettings settings = one_vertical_line();
  settings.zones = one_square_zone().zones;
  settings.zones[0].polygon = {{450, 400}, {700, 400}, {700, 600}, {450, 600}};
  settings.track_events = true;
  Analytics analytics = make_analytics(settings);
  CountsSnapshot replay = CountsSnapshot::with_names({"door"}, {"lobby"});
  std::vector<Event> events;
  auto path = walk(300, 700, 7);
  const auto back = walk(700, 300, -9);
  path.insert(path.end(), back.begin(), back.end());
  for (std::uint64_t id = 1; id <= 3; ++id) {
    for (const auto& event : run_path(analytics, path, id)) events.push_back(event);
  }
  for (const auto& event : events) replay.apply(event);
  EXPECT_EQ(to_json(replay)["lines"], to_json(analytics.counts())["lines"]);
  EXPECT_EQ(to_json(replay)["zones"], to_json(analytics.counts())["zones"]);
  EXPECT_EQ(analytics.counts().lines[0].in(), 3);
  EXPECT_EQ(analytics.counts().lines[0].out(), 3);
  for (std::size_t index = 1; index < events.size(); ++index) {
    EXPECT_LT(events[index - 1].event_id, events[index].event_id);
  }
}

void expect_config_error(const AnalyticsSettings& settings, const std::string& expected) {
  try {
    settings.validate({"person", "car"});
    ADD_FAILURE() << "accepted; expected an error naming " << expected;
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(expected), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(AnalyticsSettings, BadGeometryAndUnknownClassesAreOneLineErrors) {
  AnalyticsSettings settings;
  settings.lines.push_back(LineSettings{"door", {5, 5}, {5, 5}, {}});
  expect_config_error(settings, "zero length");
  settings = {};
  settings.zones.push_back(ZoneSettings{"area", {{0, 0}, {10, 0}}, {}});
  expect_config_error(settings, "at least 3");
  settings = {};
  settings.zones.push_back(ZoneSettings{"bowtie", {{0, 0}, {10, 10}, {10, 0}, {0, 10}}, {}});
  expect_config_error(settings, "intersects itself");
  settings = {};
  settings.zones.push_back(ZoneSettings{"spike", {{0, 0}, {10, 0}, {5, 0}, {5, 5}}, {}});
  expect_config_error(settings, "intersects itself");
  settings = {};
  settings.lines.push_back(LineSettings{"door", {0, 0}, {5, 5}, {"bicycle"}});
  expect_config_error(settings, "unknown class 'bicycle'");
  settings = {};
  settings.lines.push_back(LineSettings{"door", {0, 0}, {5, 5}, {}});
  settings.lines.push_back(LineSettings{"door", {0, 0}, {9, 5}, {}});
  expect_config_error(settings, "used twice");
  settings = {};
  settings.line_min_frames = 0;
  expect_config_error(settings, "analytics.line_min_frames");
  settings = {};
  settings.line_hysteresis = 1.5f;
  expect_config_error(settings, "analytics.line_hysteresis = 1.5");
  settings = {};
  settings.loiter_seconds = -1;
  expect_config_error(settings, "analytics.loiter_seconds");
  settings = {};
  settings.zones.push_back(ZoneSettings{"ok", {{0, 0}, {10, 0}, {10, 10}, {0, 10}}, {"car"}});
  EXPECT_NO_THROW(settings.validate({"person", "car"}));
}

TEST(AnalyticsSettings, ParsesLineAndZoneFlags) {
  const LineSettings line = parse_line_spec("door=100,200,300.5,400");
  EXPECT_EQ(line.name, "door");
  EXPECT_FLOAT_EQ(line.end.x, 300.5f);
  const ZoneSettings zone = parse_zone_spec("lobby=0,0,10,0,10,10");
  EXPECT_EQ(zone.polygon.size(), 3u);
  EXPECT_THROW(parse_line_spec("100,200,300,400"), Error);
  EXPECT_THROW(parse_line_spec("door=1,2,3"), Error);
  EXPECT_THROW(parse_line_spec("door=1,2,x,4"), Error);
  EXPECT_THROW(parse_zone_spec("lobby=0,0,10,0"), Error);
  EXPECT_THROW(parse_zone_spec("lobby=0,0,10,0,10"), Error);
  EXPECT_EQ(parse_anchor("center"), Anchor::center);
  EXPECT_THROW(parse_anchor("feet"), Error);
}

}  // namespace
}  // namespace detflow::track
