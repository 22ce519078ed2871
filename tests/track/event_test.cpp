// Events as JSON (the contract sinks and the MQTT publisher rely on), event ids, counts.
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "detflow/track/event.h"

namespace detflow::track {
namespace {

TEST(Event, LineCrossingSerialisesEveryDocumentedField) {
  Event event;
  event.event_id = "00000000000000ab-0000000007";
  event.unix_time_ms = 1'795'000'212'345;  // 2026-11-18T11:10:12.345Z
  event.pts_ms = 12345;
  event.frame = 370;
  event.type = EventType::line_cross;
  event.track_id = 17;
  event.class_id = 0;
  event.label = "person";
  event.line = "door";
  event.direction = Direction::in;
  event.box = {1, 2, 3, 4};
  const nlohmann::json json = to_json(event);
  EXPECT_EQ(json["event_id"], "00000000000000ab-0000000007");
  EXPECT_EQ(json["time"], "2026-11-18T11:10:12.345Z");
  EXPECT_EQ(json["pts_ms"], 12345);
  EXPECT_EQ(json["frame"], 370);
  EXPECT_EQ(json["type"], "line_cross");
  EXPECT_EQ(json["track_id"], 17);
  EXPECT_EQ(json["class"], 0);
  EXPECT_EQ(json["label"], "person");
  EXPECT_EQ(json["line"], "door");
  EXPECT_FALSE(json.contains("zone"));
  EXPECT_FALSE(json.contains("stream"));
  EXPECT_FALSE(json.contains("duration_s"));
  EXPECT_EQ(json["direction"], "in");
  EXPECT_EQ(json["box"], nlohmann::json::parse("[1.0, 2.0, 3.0, 4.0]"));
  EXPECT_EQ(nlohmann::json::parse(to_json_line(event)), json);
  EXPECT_EQ(to_json_line(event).find('\n'), std::string::npos);
}

TEST(Event, ZoneAndTrackEventsCarryTheirOwnFields) {
  Event event;
  event.type = EventType::zone_exit;
  event.zone = "lobby";
  event.stream = "door-cam";
  event.direction = Direction::out;
  event.duration_seconds = 4.5;
  nlohmann::json json = to_json(event);
  EXPECT_EQ(json["zone"], "lobby");
  EXPECT_FALSE(json.contains("line"));
  EXPECT_EQ(json["stream"], "door-cam");
  EXPECT_EQ(json["direction"], "out");
  EXPECT_DOUBLE_EQ(json["duration_s"].get<double>(), 4.5);
  event = {};
  event.type = EventType::track_start;
  json = to_json(event);
  EXPECT_TRUE(json["direction"].is_null());
  EXPECT_EQ(json["time"], "1970-01-01T00:00:00.000Z");
  for (auto type : {EventType::track_start, EventType::track_end, EventType::line_cross, EventType::zone_enter,
                    EventType::zone_exit, EventType::zone_loiter}) {
    EXPECT_NE(to_string(type), "unknown");
  }
}

TEST(EventIdGenerator, IdsAreUniqueAcrossRunsAndSortInProductionOrder) {
  EventIdGenerator first, second;
  EXPECT_NE(first.run_prefix(), second.run_prefix());
  EXPECT_EQ(first.run_prefix().size(), 16u);
  std::set<std::string> ids;
  std::string previous;
  for (int index = 0; index < 1000; ++index) {
    const std::string id = first.next();
    EXPECT_GT(id, previous);
    previous = id;
    ids.insert(id);
    ids.insert(second.next());
  }
  EXPECT_EQ(ids.size(), 2000u);
  EXPECT_EQ(EventIdGenerator("run").next(), "run-0000000001");
}

TEST(CountsSnapshot, AppliesEventsPerClassAndSerialises) {
  CountsSnapshot counts = CountsSnapshot::with_names({"door"}, {"lobby"});
  Event cross;
  cross.type = EventType::line_cross;
  cross.line = "door";
  cross.class_id = 2;
  cross.label = "car";
  cross.direction = Direction::out;
  counts.apply(cross);
  cross.class_id = 0;
  cross.label = "person";
  cross.direction = Direction::in;
  counts.apply(cross);
  counts.apply(cross);
  Event enter;
  enter.type = EventType::zone_enter;
  enter.zone = "lobby";
  enter.label = "person";
  counts.apply(enter);
  counts.apply(enter);
  Event exit = enter;
  exit.type = EventType::zone_exit;
  counts.apply(exit);
  const nlohmann::json json = to_json(counts);
  EXPECT_EQ(json["lines"][0]["name"], "door");
  EXPECT_EQ(json["lines"][0]["in"], 2);
  EXPECT_EQ(json["lines"][0]["out"], 1);
  EXPECT_EQ(json["lines"][0]["classes"][0]["label"], "person");
  EXPECT_EQ(json["lines"][0]["classes"][1]["class"], 2);
  EXPECT_EQ(json["zones"][0]["occupancy"], 1);
  EXPECT_EQ(json["zones"][0]["entered"], 2);
}

}  // namespace
}  // namespace detflow::track
