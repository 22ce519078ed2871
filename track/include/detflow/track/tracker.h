// detflow/track/tracker.h — a multi-object tracker of the ByteTrack family: objects over time
// instead of boxes per frame.
//
// Per update (one frame, in frame order):
//   1. every live track's Kalman filter predicts its box at the frame's timestamp;
//   2. first association: detections with score >= high_score_threshold against confirmed and
//      lost tracks, by IoU (optionally weighted by the detection score), optimal assignment;
//   3. second association: detections with low_score_threshold <= score < high_score_threshold
//      against the confirmed tracks still unmatched (a partly occluded object scores low but
//      still belongs to its track; ByteTrack's idea);
//   4. tentative tracks against the high-score detections left; a tentative track becomes
//      confirmed after `confirm_hits` matched frames and is removed once it has gone
//      `tentative_buffer_seconds` without a match (0: at its first miss, ByteTrack's rule);
//   5. high-score detections still unmatched (score >= new_track_score_threshold) start
//      tentative tracks; confirmed tracks that were not matched become lost; lost tracks are
//      removed `track_buffer_seconds` after their last detection.
//
// Motion model: box centre and size (cx, cy, w, h) each with a velocity, as four independent
// constant-velocity Kalman filters (the covariance of ByteTrack's 8-state filter stays block
// diagonal in these pairs, so this is the same filter at a fraction of the cost). Noise scales
// with the box size and with elapsed time, so dropped frames only widen the uncertainty.
//
// Contract:
// - update() takes the timestamp in seconds (any origin, non-decreasing; a timestamp earlier than
//   the previous one is treated as equal to it). Time, not frame count, decides when lost tracks
//   expire: live sources drop frames.
// - Not thread-safe: one thread at a time per Tracker (one Tracker per stream).
// - Track ids start at 1, increase, and are never reused within a Tracker's lifetime.
// - Memory is bounded by the live tracks (at most max_tracks); buffers are reused, so in steady
//   state update() does not allocate. Per-track state is freed (its slot reused) when it ends.
// - The returned references stay valid until the next update() or reset().
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "detflow/post/detection.h"
#include "detflow/track/event.h"

namespace detflow::track {

// Tracker settings. validate() throws detflow::Error naming the first value out of range.
struct TrackerSettings {
  float high_score_threshold = 0.5f;       // (0, 1]: first association, new tracks from these
  float low_score_threshold = 0.1f;        // [0, high_score_threshold]: below it detections are ignored
  float new_track_score_threshold = 0.6f;  // [high_score_threshold, 1]: start a track
  float first_match_iou = 0.2f;            // (0, 1): minimal (score-weighted) IoU, first association
  float second_match_iou = 0.5f;           // (0, 1): minimal IoU, low-score association
  float tentative_match_iou = 0.3f;        // (0, 1): minimal IoU, tentative tracks
  bool score_weighted_iou = true;          // first association ranks by IoU x detection score
  int confirm_hits = 2;                    // [1, 100]: matched frames before a track is confirmed
  double track_buffer_seconds = 1.0;       // (0, 3600]: how long a lost track may be re-found
  double tentative_buffer_seconds = 0.2;   // [0, track_buffer_seconds]: how long a not yet confirmed
                                           // track may go unmatched (detectors miss a new object in
                                           // runs of frames too); 0: removed at its first miss
  double predicted_output_seconds = 0.3;   // [0, track_buffer_seconds]: report lost tracks this long
                                           // after their last detection, box predicted, flagged
                                           // (bridges short occlusions; 0 reports detected boxes only)
  bool class_agnostic = false;             // true: match across classes (the class follows the
                                           // latest detection); false: only within a class
  // Kalman noise, as standard deviations relative to the box's size, per 1/30 s of elapsed time.
  float position_noise = 1.0f / 20;     // (0, 1]
  float velocity_noise = 1.0f / 160;    // (0, 1]
  float measurement_noise = 1.0f / 20;  // (0, 1]
  int max_tracks = 4096;                // [1, 1000000]: live tracks; new ones are refused beyond
  // [0, 10]: buffered IoU (Yang et al., C-BIoU, 2023): before matching, both the predicted and the
  // detected box grow by this fraction of their own width (height) on each side. For detections
  // far apart in time (the detector on every N-th frame): an object that moved more than its
  // width since the last update still overlaps its track. 0: plain IoU. The pipeline sets
  // 0.5 x (N - 1) for detection.interval N unless this is set.
  float match_buffer = 0.0f;

  void validate() const;
};

enum class TrackState {
  tentative,  // not yet confirmed_hits matches; never reported
  confirmed,  // matched in this frame or the previous matched frame
  lost,       // not matched recently; kept for re-identification, reported only while predicted
};

// A track as reported for one frame.
struct Track {
  std::uint64_t id = 0;
  Box box;          // source pixels: the matched detection's box, or the prediction
  float score = 0;  // the matched detection's score; the last matched score when predicted
  int class_id = 0;
  std::string label;
  TrackState state = TrackState::confirmed;
  bool predicted = false;    // not detected in this frame: the box is the motion model's prediction
  int detection_index = -1;  // index into update()'s detections; -1 when predicted
  int hits = 0;              // frames matched so far
  double first_seen = 0;     // timestamp of the first detection, seconds
  double last_seen = 0;      // timestamp of the latest matched detection, seconds
};

// What one update() changed besides the reported boxes.
struct TrackChanges {
  std::vector<Track> started;  // confirmed in this update (reported as track_start)
  std::vector<Track> ended;    // confirmed tracks removed in this update (lost too long, or
                               // at finish()); box and time of their last detection
};

class Tracker {
 public:
  explicit Tracker(TrackerSettings settings = {});

  // Tracks one frame. Returns the confirmed tracks matched in this frame and, when
  // predicted_output_seconds > 0, lost tracks within that time of their last detection
  // (predicted = true), in ascending id order.
  const std::vector<Track>& update(std::span<const Detection> detections, double timestamp_seconds);
  // Ends every live track (end of stream): they appear in changes().ended; nothing stays live.
  void finish();
  // Tracks started and ended by the last update() or finish().
  const TrackChanges& changes() const { return changes_; }

  // Forgets all tracks (ids continue: never reused within this Tracker).
  void reset();

  const TrackerSettings& settings() const { return settings_; }
  std::size_t live_tracks() const { return live_.size(); }
  std::uint64_t tracks_refused() const { return tracks_refused_; }  // max_tracks reached
  std::uint64_t tracks_created() const { return next_id_ - 1; }     // ids issued (tentative ones too)

  // Internal per-track state (public for the implementation's helpers; not part of the API).
  struct Axis {
    float position = 0, velocity = 0;  // velocity per 1/30 s
    float variance_position = 0, covariance = 0, variance_velocity = 0;
  };
  struct LiveTrack {
    std::uint64_t id = 0;
    Axis axes[4];  // cx, cy, w, h
    float score = 0;
    int class_id = 0;
    std::string label;
    TrackState state = TrackState::tentative;
    int hits = 0;
    double first_seen = 0, last_seen = 0;
    Box last_detection;        // the latest matched detection's box
    bool matched = false;      // in this update
    int detection_index = -1;  // in this update
  };

 private:
  void predict(double elapsed_seconds);
  void associate(std::vector<int>& track_indices, std::vector<int>& detection_indices,
                 std::span<const Detection> detections, float minimal_iou, bool weight_by_score);
  void correct(LiveTrack& track, const Detection& detection, int detection_index, double timestamp);
  bool start_track(const Detection& detection, int detection_index, double timestamp);
  Track report(const LiveTrack& track, bool predicted) const;
  Track report_ended(const LiveTrack& track) const;

  TrackerSettings settings_;
  std::vector<LiveTrack> live_;
  std::uint64_t next_id_ = 1;
  std::uint64_t tracks_refused_ = 0;
  bool have_time_ = false;
  double now_ = 0;

  // Reused per-update buffers.
  std::vector<Track> output_;
  TrackChanges changes_;
  std::vector<Box> predicted_boxes_;
  std::vector<int> high_detections_, low_detections_;
  std::vector<int> pool_tracks_, tentative_tracks_;
  std::vector<std::pair<int, int>> matches_;
  struct Assignment;  // the assignment solver's buffers
  struct AssignmentDeleter {
    void operator()(Assignment* assignment) const;
  };
  std::unique_ptr<Assignment, AssignmentDeleter> assignment_;
};

// The box of a detection.
inline Box box_of(const Detection& detection) { return {detection.x1, detection.y1, detection.x2, detection.y2}; }
float intersection_over_union(const Box& a, const Box& b);

}  // namespace detflow::track
