// The tracker's life cycle on scripted detections: confirmation, identity through gaps and
// crossings, time-based expiry, the low-score stage, classes, bounds and settings errors.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "detflow/error.h"
#include "detflow/track/tracker.h"

namespace detflow::track {
namespace {

Detection box_at(float x, float y, float score = 0.9f, int class_id = 0, float width = 40, float height = 100) {
  Detection detection;
  detection.x1 = x;
  detection.y1 = y;
  detection.x2 = x + width;
  detection.y2 = y + height;
  detection.score = score;
  detection.class_id = class_id;
  detection.label = class_id == 0 ? "person" : "car";
  return detection;
}

const Track* find_track(const std::vector<Track>& tracks, std::uint64_t id) {
  for (const auto& track : tracks) {
    if (track.id == id) return &track;
  }
  return nullptr;
}

TEST(Tracker, ConfirmsAfterHitsAndKeepsOneIdForAMovingObject) {
  TrackerSettings settings;
  settings.confirm_hits = 3;
  Tracker tracker(settings);
  std::uint64_t id = 0;
  for (int frame = 0; frame < 60; ++frame) {
    const std::vector<Detection> detections{box_at(100.0f + 5.0f * frame, 200)};
    const auto& tracks = tracker.update(detections, frame / 30.0);
    if (frame < 2) {
      EXPECT_TRUE(tracks.empty()) << "frame " << frame << ": a tentative track is not reported";
      continue;
    }
    ASSERT_EQ(tracks.size(), 1u) << "frame " << frame;
    if (frame == 2) {
      id = tracks[0].id;
      ASSERT_EQ(tracker.changes().started.size(), 1u);
      EXPECT_EQ(tracker.changes().started[0].id, id);
    }
    EXPECT_EQ(tracks[0].id, id);
    EXPECT_FALSE(tracks[0].predicted);
    EXPECT_EQ(tracks[0].detection_index, 0);
    EXPECT_NEAR(tracks[0].box.x1, 100.0f + 5.0f * frame, 3.0f);
  }
  EXPECT_EQ(tracker.live_tracks(), 1u);
}

TEST(Tracker, ANewTrackMissedOnceIsStillConfirmedWithinTheTentativeBuffer) {
  // A person detected, missed for 4 frames (0.13 s), detected again: with the default 0.2 s
  // buffer the second hit confirms the same track; at 0 (ByteTrack's rule) the miss kills it
  // and the second hit only starts a new tentative track.
  const auto run = [](double tentative_buffer_seconds, int missed_frames) {
    TrackerSettings settings;
    settings.tentative_buffer_seconds = tentative_buffer_seconds;
    Tracker tracker(settings);
    std::vector<std::vector<Track>> reported;
    for (int frame = 0; frame < 10; ++frame) {
      std::vector<Detection> detections;
      if (frame == 0 || frame > missed_frames) detections.push_back(box_at(100.0f + 3.0f * frame, 200));
      reported.push_back(tracker.update(detections, frame / 30.0));
    }
    return reported;
  };
  const auto buffered = run(0.2, 4);
  for (int frame = 0; frame <= 4; ++frame) EXPECT_TRUE(buffered[frame].empty()) << frame;
  ASSERT_EQ(buffered[5].size(), 1u) << "confirmed by the second hit, 5 frames after the first";
  EXPECT_EQ(buffered[5][0].id, 1u) << "the same track";
  EXPECT_EQ(buffered[5][0].hits, 2);
  const auto at_first_miss = run(0.0, 4);
  EXPECT_TRUE(at_first_miss[5].empty()) << "a new tentative track";
  ASSERT_EQ(at_first_miss[6].size(), 1u);
  EXPECT_EQ(at_first_miss[6][0].id, 2u);
  const auto too_long = run(0.2, 6);  // seen again 0.23 s later: the first track is gone
  EXPECT_TRUE(too_long[7].empty()) << "a new tentative track";
  ASSERT_EQ(too_long[8].size(), 1u);
  EXPECT_EQ(too_long[8][0].id, 2u);
}

TEST(Tracker, BridgesAGapWithFlaggedPredictionsThatFollowTheMotion) {
  TrackerSettings settings;
  settings.predicted_output_seconds = 0.5;
  Tracker tracker(settings);
  std::uint64_t id = 0;
  for (int frame = 0; frame < 40; ++frame) {
    const float x = 100.0f + 6.0f * frame;
    const bool occluded = frame >= 20 && frame < 28;
    std::vector<Detection> detections;
    if (!occluded) detections.push_back(box_at(x, 300));
    const auto& tracks = tracker.update(detections, frame / 30.0);
    if (frame == 10) id = tracks.at(0).id;
    if (frame < 10) continue;
    ASSERT_EQ(tracks.size(), 1u) << "frame " << frame;
    EXPECT_EQ(tracks[0].id, id) << "frame " << frame;
    EXPECT_EQ(tracks[0].predicted, occluded) << "frame " << frame;
    EXPECT_EQ(tracks[0].detection_index, occluded ? -1 : 0);
    if (occluded) {
      EXPECT_NEAR(tracks[0].box.x1, x, 6.0f) << "the prediction follows the velocity";
    }
  }
}

TEST(Tracker, LostTracksExpireByTimeNotByFrameCount) {
  // A 0.8 s gap is bridged with a 1 s buffer whether 24 frames or one frame pass in it
  // (a live source that dropped frames); a 1.5 s gap ends the track and the object gets a new id.
  for (const double frame_interval : {1.0 / 30.0, 0.8}) {
    TrackerSettings settings;
    settings.track_buffer_seconds = 1.0;
    Tracker tracker(settings);
    double now = 0;
    for (int frame = 0; frame < 10; ++frame, now += 1.0 / 30.0) {
      const std::vector<Detection> detections{box_at(500, 300)};
      tracker.update(detections, now);
    }
    const std::uint64_t id = tracker.update(std::vector<Detection>{box_at(500, 300)}, now).at(0).id;
    const double gap_end = now + 0.8;
    for (now += frame_interval; now < gap_end - 1e-9; now += frame_interval) {
      tracker.update({}, now);
    }
    const auto& tracks = tracker.update(std::vector<Detection>{box_at(500, 300)}, gap_end);
    ASSERT_EQ(tracks.size(), 1u) << "interval " << frame_interval;
    EXPECT_EQ(tracks[0].id, id) << "interval " << frame_interval;

    tracker.update({}, gap_end + 1.5);
    ASSERT_EQ(tracker.changes().ended.size(), 1u);
    EXPECT_EQ(tracker.changes().ended[0].id, id);
    EXPECT_EQ(tracker.live_tracks(), 0u) << "per-track state is freed when a track ends";
    tracker.update(std::vector<Detection>{box_at(500, 300)}, gap_end + 1.6);
    const auto& again = tracker.update(std::vector<Detection>{box_at(500, 300)}, gap_end + 1.65);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_GT(again[0].id, id) << "ids are never reused";
  }
}

TEST(Tracker, LowScoreDetectionsKeepATrackButNeverStartOne) {
  Tracker tracker;
  for (int frame = 0; frame < 5; ++frame) tracker.update(std::vector<Detection>{box_at(200, 200)}, frame / 30.0);
  const std::uint64_t id = tracker.update(std::vector<Detection>{box_at(200, 200)}, 5 / 30.0).at(0).id;
  for (int frame = 6; frame < 20; ++frame) {
    const auto& tracks = tracker.update(std::vector<Detection>{box_at(200, 200, 0.3f)}, frame / 30.0);
    ASSERT_EQ(tracks.size(), 1u) << "frame " << frame;
    EXPECT_EQ(tracks[0].id, id);
    EXPECT_FALSE(tracks[0].predicted);
    EXPECT_FLOAT_EQ(tracks[0].score, 0.3f);
  }
  Tracker fresh;
  for (int frame = 0; frame < 10; ++frame) {
    EXPECT_TRUE(fresh.update(std::vector<Detection>{box_at(200, 200, 0.3f)}, frame / 30.0).empty());
  }
  EXPECT_EQ(fresh.live_tracks(), 0u);
}

TEST(Tracker, MatchesWithinAClassUnlessClassAgnostic) {
  for (const bool agnostic : {false, true}) {
    TrackerSettings settings;
    settings.class_agnostic = agnostic;
    settings.predicted_output_seconds = 0;  // the lost person track is not reported
    Tracker tracker(settings);
    for (int frame = 0; frame < 5; ++frame)
      tracker.update(std::vector<Detection>{box_at(300, 300, 0.9f, 0)}, frame / 30.0);
    const std::uint64_t id = tracker.update(std::vector<Detection>{box_at(300, 300, 0.9f, 0)}, 0.2).at(0).id;
    tracker.update(std::vector<Detection>{box_at(300, 300, 0.9f, 1)}, 0.25);
    const auto& tracks = tracker.update(std::vector<Detection>{box_at(300, 300, 0.9f, 1)}, 0.3);
    if (agnostic) {
      ASSERT_EQ(tracks.size(), 1u);
      EXPECT_EQ(tracks[0].id, id);
      EXPECT_EQ(tracks[0].class_id, 1) << "the class follows the latest detection";
      EXPECT_EQ(tracks[0].label, "car");
    } else {
      ASSERT_EQ(tracks.size(), 1u);
      EXPECT_NE(tracks[0].id, id) << "a car never continues a person's track";
      EXPECT_EQ(tracks[0].class_id, 1);
    }
  }
}

TEST(Tracker, TwoObjectsCrossingKeepTheirIds) {
  Tracker tracker;
  std::uint64_t left_id = 0, right_id = 0;
  for (int frame = 0; frame < 80; ++frame) {
    // One walks right at y = 300, the other left at y = 330 (partial overlap while passing).
    const std::vector<Detection> detections{box_at(100.0f + 8.0f * frame, 300), box_at(740.0f - 8.0f * frame, 330)};
    const auto& tracks = tracker.update(detections, frame / 30.0);
    if (frame == 5) {
      ASSERT_EQ(tracks.size(), 2u);
      for (const auto& track : tracks) (track.detection_index == 0 ? left_id : right_id) = track.id;
    }
    if (frame <= 5) continue;
    ASSERT_EQ(tracks.size(), 2u) << "frame " << frame;
    ASSERT_NE(find_track(tracks, left_id), nullptr);
    EXPECT_EQ(find_track(tracks, left_id)->detection_index, 0) << "frame " << frame;
    EXPECT_EQ(find_track(tracks, right_id)->detection_index, 1) << "frame " << frame;
  }
}

TEST(Tracker, ReportsTracksInAscendingIdOrder) {
  Tracker tracker;
  std::vector<Detection> detections;
  for (int index = 0; index < 20; ++index) detections.push_back(box_at(60.0f * index, 100));
  for (int frame = 0; frame < 5; ++frame) {
    const auto& tracks = tracker.update(detections, frame / 30.0);
    for (std::size_t index = 1; index < tracks.size(); ++index) EXPECT_LT(tracks[index - 1].id, tracks[index].id);
  }
}

TEST(Tracker, RefusesTracksBeyondMaxTracksAndFinishEndsEveryTrack) {
  TrackerSettings settings;
  settings.max_tracks = 3;
  Tracker tracker(settings);
  std::vector<Detection> detections;
  for (int index = 0; index < 5; ++index) detections.push_back(box_at(100.0f * index, 100));
  for (int frame = 0; frame < 3; ++frame) tracker.update(detections, frame / 30.0);
  EXPECT_EQ(tracker.live_tracks(), 3u);
  EXPECT_GT(tracker.tracks_refused(), 0u);
  tracker.finish();
  EXPECT_EQ(tracker.changes().ended.size(), 3u);
  EXPECT_EQ(tracker.live_tracks(), 0u);
}

TEST(Tracker, TimestampsGoingBackwardsAreTreatedAsEqual) {
  Tracker tracker;
  for (int frame = 0; frame < 5; ++frame) tracker.update(std::vector<Detection>{box_at(100, 100)}, 1.0 + frame / 30.0);
  const auto& tracks = tracker.update(std::vector<Detection>{box_at(100, 100)}, 0.5);
  ASSERT_EQ(tracks.size(), 1u);
  EXPECT_TRUE(std::isfinite(tracks[0].box.x1));
}

// The detector on every third frame: a walker moves its own width between detections, so plain
// IoU never sees the same object twice; buffered IoU (match_buffer) keeps one track.
TEST(Tracker, BufferedIoUKeepsAnObjectThatMovesItsWidthBetweenDetections) {
  const auto tracks_seen = [](float match_buffer) {
    TrackerSettings settings;
    settings.match_buffer = match_buffer;
    Tracker tracker(settings);
    std::vector<std::uint64_t> ids;
    for (int update = 0; update < 20; ++update) {
      const std::vector<Detection> detections{box_at(100.0f + 40.0f * update, 200)};
      for (const Track& track : tracker.update(detections, update * 0.1)) ids.push_back(track.id);
    }
    return ids;
  };
  EXPECT_TRUE(tracks_seen(0).empty()) << "plain IoU: no overlap, so never confirmed";
  const std::vector<std::uint64_t> ids = tracks_seen(1.0f);
  ASSERT_GE(ids.size(), 18u) << "confirmed on the second detection";
  for (const std::uint64_t id : ids) EXPECT_EQ(id, ids.front());
}

TEST(TrackerSettings, OutOfRangeValuesAreOneLineErrorsNamingTheKey) {
  const auto expect_error = [](TrackerSettings settings, const std::string& key) {
    try {
      Tracker tracker(settings);
      ADD_FAILURE() << key << " accepted";
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(key), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  };
  TrackerSettings settings;
  settings.high_score_threshold = 1.5f;
  expect_error(settings, "tracking.high_score_threshold");
  settings = {};
  settings.low_score_threshold = 0.7f;
  expect_error(settings, "tracking.low_score_threshold");
  settings = {};
  settings.new_track_score_threshold = 0.4f;  // below high_score_threshold
  expect_error(settings, "tracking.new_track_score_threshold");
  settings = {};
  settings.confirm_hits = 0;
  expect_error(settings, "tracking.confirm_hits");
  settings = {};
  settings.track_buffer_seconds = 0;
  expect_error(settings, "tracking.track_buffer_seconds");
  settings = {};
  settings.tentative_buffer_seconds = -0.1;
  expect_error(settings, "tracking.tentative_buffer_seconds");
  settings.tentative_buffer_seconds = 1.5;  // beyond track_buffer_seconds
  expect_error(settings, "tracking.tentative_buffer_seconds");
  settings = {};
  settings.predicted_output_seconds = 2;
  expect_error(settings, "tracking.predicted_output_seconds");
  settings = {};
  settings.first_match_iou = 1;
  expect_error(settings, "tracking.first_match_iou");
  settings = {};
  settings.match_buffer = -0.5f;
  expect_error(settings, "tracking.match_buffer");
  settings = {};
  settings.max_tracks = 0;
  expect_error(settings, "tracking.max_tracks");
  EXPECT_NO_THROW(TrackerSettings{}.validate());
}

}  // namespace
}  // namespace detflow::track
