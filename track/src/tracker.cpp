#include "detflow/track/tracker.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "detflow/error.h"
#include "detflow/track/assignment.h"

namespace detflow::track {

namespace {

// Velocities and noise are expressed per reference interval (1/30 s, ByteTrack's tuning unit).
constexpr double reference_interval_seconds = 1.0 / 30.0;
constexpr float minimal_size = 1.0f;  // pixels; keeps the size-relative noise positive

enum AxisIndex { centre_x = 0, centre_y = 1, width = 2, height = 3 };

void require(bool condition, const char* key, double value, const char* accepted) {
  if (condition) return;
  std::ostringstream message;
  message << "tracking." << key << " = " << value << " is out of range; accepted: " << accepted;
  throw Error(message.str());
}

// The size an axis's noise is relative to: x and width scale with the width, y and height with
// the height (an object's horizontal jitter follows its width, not its height).
float scale_of(const Tracker::LiveTrack& track, int axis) {
  const float size = (axis == centre_x || axis == width) ? track.axes[width].position : track.axes[height].position;
  return std::max(size, minimal_size);
}

Box box_from_axes(const Tracker::Axis (&axes)[4]) {
  const float half_width = std::max(axes[width].position, 0.0f) * 0.5f;
  const float half_height = std::max(axes[height].position, 0.0f) * 0.5f;
  return {axes[centre_x].position - half_width, axes[centre_y].position - half_height,
          axes[centre_x].position + half_width, axes[centre_y].position + half_height};
}

struct Measurement {
  float values[4];
};

Measurement measure(const Detection& detection) {
  return {{(detection.x1 + detection.x2) * 0.5f, (detection.y1 + detection.y2) * 0.5f,
           std::max(detection.x2 - detection.x1, minimal_size), std::max(detection.y2 - detection.y1, minimal_size)}};
}

}  // namespace

namespace {

// `box` grown by `fraction` of its width (height) on the left and right (top and bottom).
Box buffered(const Box& box, float fraction) {
  const float grow_x = (box.x2 - box.x1) * fraction, grow_y = (box.y2 - box.y1) * fraction;
  return {box.x1 - grow_x, box.y1 - grow_y, box.x2 + grow_x, box.y2 + grow_y};
}

}  // namespace

float intersection_over_union(const Box& a, const Box& b) {
  const float overlap_width = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  const float overlap_height = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  if (overlap_width <= 0 || overlap_height <= 0) return 0.0f;
  const float intersection = overlap_width * overlap_height;
  const float area_a = (a.x2 - a.x1) * (a.y2 - a.y1);
  const float area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
  const float union_area = area_a + area_b - intersection;
  return union_area > 0 ? intersection / union_area : 0.0f;
}

void TrackerSettings::validate() const {
  require(high_score_threshold > 0 && high_score_threshold <= 1, "high_score_threshold", high_score_threshold,
          "(0, 1]");
  require(low_score_threshold >= 0 && low_score_threshold <= high_score_threshold, "low_score_threshold",
          low_score_threshold, "[0, tracking.high_score_threshold]");
  require(new_track_score_threshold >= high_score_threshold && new_track_score_threshold <= 1,
          "new_track_score_threshold", new_track_score_threshold, "[tracking.high_score_threshold, 1]");
  require(first_match_iou > 0 && first_match_iou < 1, "first_match_iou", first_match_iou, "(0, 1)");
  require(second_match_iou > 0 && second_match_iou < 1, "second_match_iou", second_match_iou, "(0, 1)");
  require(tentative_match_iou > 0 && tentative_match_iou < 1, "tentative_match_iou", tentative_match_iou, "(0, 1)");
  require(confirm_hits >= 1 && confirm_hits <= 100, "confirm_hits", confirm_hits, "1 to 100");
  require(track_buffer_seconds > 0 && track_buffer_seconds <= 3600, "track_buffer_seconds", track_buffer_seconds,
          "(0, 3600] seconds");
  require(tentative_buffer_seconds >= 0 && tentative_buffer_seconds <= track_buffer_seconds, "tentative_buffer_seconds",
          tentative_buffer_seconds, "[0, tracking.track_buffer_seconds] seconds");
  require(predicted_output_seconds >= 0 && predicted_output_seconds <= track_buffer_seconds, "predicted_output_seconds",
          predicted_output_seconds, "[0, tracking.track_buffer_seconds] seconds");
  require(position_noise > 0 && position_noise <= 1, "position_noise", position_noise, "(0, 1]");
  require(velocity_noise > 0 && velocity_noise <= 1, "velocity_noise", velocity_noise, "(0, 1]");
  require(measurement_noise > 0 && measurement_noise <= 1, "measurement_noise", measurement_noise, "(0, 1]");
  require(max_tracks >= 1 && max_tracks <= 1000000, "max_tracks", max_tracks, "1 to 1000000");
  require(match_buffer >= 0 && match_buffer <= 10, "match_buffer", match_buffer, "0 to 10");
}

// Buffers of the gated, component-wise assignment (kept between updates).
struct Tracker::Assignment {
  struct Edge {
    int track, detection;  // positions in the candidate lists
    float cost;            // negative: minimal_similarity - similarity
  };
  std::vector<Edge> edges;
  std::vector<int> parent;  // union-find over tracks [0, T) and detections [T, T + D)
  std::vector<int> component_of_edge;
  std::vector<int> edge_order;
  std::vector<int> local_track, local_detection;  // candidate position -> index in the component
  std::vector<int> component_tracks, component_detections;
  std::vector<float> cost;
  std::vector<int> row_to_column;
  std::vector<char> track_used, detection_used;
  LinearAssignment solver;

  int find(int node) {
    while (parent[static_cast<std::size_t>(node)] != node) {
      parent[static_cast<std::size_t>(node)] = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(node)])];
      node = parent[static_cast<std::size_t>(node)];
    }
    return node;
  }
};

void Tracker::AssignmentDeleter::operator()(Assignment* assignment) const { delete assignment; }

Tracker::Tracker(TrackerSettings settings) : settings_(std::move(settings)), assignment_(new Assignment) {
  settings_.validate();
}

void Tracker::reset() {
  live_.clear();
  have_time_ = false;
  output_.clear();
  changes_.started.clear();
  changes_.ended.clear();
}

Track Tracker::report(const LiveTrack& track, bool predicted) const {
  Track reported;
  reported.id = track.id;
  reported.box = box_from_axes(track.axes);
  reported.score = track.score;
  reported.class_id = track.class_id;
  reported.label = track.label;
  reported.state = track.state;
  reported.predicted = predicted;
  reported.detection_index = predicted ? -1 : track.detection_index;
  reported.hits = track.hits;
  reported.first_seen = track.first_seen;
  reported.last_seen = track.last_seen;
  return reported;
}

Track Tracker::report_ended(const LiveTrack& track) const {
  Track reported = report(track, track.state == TrackState::lost);
  reported.box = track.last_detection;
  return reported;
}

void Tracker::predict(double elapsed_seconds) {
  const float steps = static_cast<float>(elapsed_seconds / reference_interval_seconds);
  if (steps <= 0) return;
  for (auto& track : live_) {
    // A size must not shrink through zero by its own velocity: damp the size velocity of lost
    // tracks, whose extrapolation is otherwise unchecked for many frames.
    for (int axis = 0; axis < 4; ++axis) {
      Axis& state = track.axes[axis];
      const float scale = scale_of(track, axis);
      const float position_deviation = settings_.position_noise * scale;
      const float velocity_deviation = settings_.velocity_noise * scale;
      state.position += state.velocity * steps;
      state.variance_position += 2 * state.covariance * steps + state.variance_velocity * steps * steps +
                                 position_deviation * position_deviation * steps;
      state.covariance += state.variance_velocity * steps;
      state.variance_velocity += velocity_deviation * velocity_deviation * steps;
    }
    track.axes[width].position = std::max(track.axes[width].position, minimal_size);
    track.axes[height].position = std::max(track.axes[height].position, minimal_size);
  }
}

void Tracker::correct(LiveTrack& track, const Detection& detection, int detection_index, double timestamp) {
  const Measurement measurement = measure(detection);
  for (int axis = 0; axis < 4; ++axis) {
    Axis& state = track.axes[axis];
    const float deviation = settings_.measurement_noise * scale_of(track, axis);
    const float innovation_variance = state.variance_position + deviation * deviation;
    const float gain_position = state.variance_position / innovation_variance;
    const float gain_velocity = state.covariance / innovation_variance;
    const float innovation = measurement.values[axis] - state.position;
    state.position += gain_position * innovation;
    state.velocity += gain_velocity * innovation;
    const float variance_position = state.variance_position;
    const float covariance = state.covariance;
    state.variance_position -= gain_position * variance_position;
    state.covariance -= gain_position * covariance;
    state.variance_velocity -= gain_velocity * covariance;
  }
  track.score = detection.score;
  if (settings_.class_agnostic && track.class_id != detection.class_id) {
    track.class_id = detection.class_id;
    track.label = detection.label;
  }
  track.matched = true;
  track.detection_index = detection_index;
  track.last_detection = box_of(detection);
  track.hits += 1;
  track.last_seen = timestamp;
}

bool Tracker::start_track(const Detection& detection, int detection_index, double timestamp) {
  if (live_.size() >= static_cast<std::size_t>(settings_.max_tracks)) {
    ++tracks_refused_;
    return false;
  }
  live_.emplace_back();
  LiveTrack& track = live_.back();
  track.id = next_id_++;
  const Measurement measurement = measure(detection);
  for (int axis = 0; axis < 4; ++axis) {
    track.axes[axis].position = measurement.values[axis];
    track.axes[axis].velocity = 0;
    track.axes[axis].covariance = 0;
  }
  for (int axis = 0; axis < 4; ++axis) {
    // ByteTrack's initial uncertainty: twice the position noise, ten times the velocity noise.
    const float scale = scale_of(track, axis);
    const float position_deviation = 2 * settings_.position_noise * scale;
    const float velocity_deviation = 10 * settings_.velocity_noise * scale;
    track.axes[axis].variance_position = position_deviation * position_deviation;
    track.axes[axis].variance_velocity = velocity_deviation * velocity_deviation;
  }
  track.score = detection.score;
  track.class_id = detection.class_id;
  track.label = detection.label;
  track.state = TrackState::tentative;
  track.hits = 1;
  track.first_seen = timestamp;
  track.last_seen = timestamp;
  track.matched = true;
  track.detection_index = detection_index;
  track.last_detection = box_of(detection);
  return true;
}

// Matches the candidate tracks and detections (indices into live_ and detections) by IoU at or
// above `minimal_iou`, maximising the summed margin (similarity - minimal_iou) like ByteTrack's
// cost-limited linear assignment. Candidates form a sparse graph (boxes overlap only their
// neighbours), so it is solved per connected component: mostly single pairs, now and then a
// small crowd. Matched entries are appended to matches_ and removed from both lists.
void Tracker::associate(std::vector<int>& track_indices, std::vector<int>& detection_indices,
                        std::span<const Detection> detections, float minimal_iou, bool weight_by_score) {
  matches_.clear();
  const int track_count = static_cast<int>(track_indices.size());
  const int detection_count = static_cast<int>(detection_indices.size());
  if (track_count == 0 || detection_count == 0) return;
  Assignment& work = *assignment_;
  work.edges.clear();
  for (int t = 0; t < track_count; ++t) {
    const auto track_index = static_cast<std::size_t>(track_indices[static_cast<std::size_t>(t)]);
    const LiveTrack& track = live_[track_index];
    const Box& track_box = predicted_boxes_[track_index];
    for (int d = 0; d < detection_count; ++d) {
      const Detection& detection = detections[static_cast<std::size_t>(detection_indices[static_cast<std::size_t>(d)])];
      if (!settings_.class_agnostic && detection.class_id != track.class_id) continue;
      float similarity = settings_.match_buffer > 0
                             ? intersection_over_union(buffered(track_box, settings_.match_buffer),
                                                       buffered(box_of(detection), settings_.match_buffer))
                             : intersection_over_union(track_box, box_of(detection));
      if (weight_by_score) similarity *= detection.score;
      if (similarity < minimal_iou) continue;
      work.edges.push_back({t, d, minimal_iou - similarity});
    }
  }
  if (work.edges.empty()) return;

  work.parent.resize(static_cast<std::size_t>(track_count + detection_count));
  std::iota(work.parent.begin(), work.parent.end(), 0);
  for (const auto& edge : work.edges) {
    const int a = work.find(edge.track);
    const int b = work.find(track_count + edge.detection);
    if (a != b) work.parent[static_cast<std::size_t>(a)] = b;
  }
  work.component_of_edge.resize(work.edges.size());
  for (std::size_t e = 0; e < work.edges.size(); ++e) work.component_of_edge[e] = work.find(work.edges[e].track);
  work.edge_order.resize(work.edges.size());
  std::iota(work.edge_order.begin(), work.edge_order.end(), 0);
  std::sort(work.edge_order.begin(), work.edge_order.end(), [&work](int a, int b) {
    const int ca = work.component_of_edge[static_cast<std::size_t>(a)];
    const int cb = work.component_of_edge[static_cast<std::size_t>(b)];
    return ca != cb ? ca < cb : a < b;
  });

  work.local_track.assign(static_cast<std::size_t>(track_count), -1);
  work.local_detection.assign(static_cast<std::size_t>(detection_count), -1);
  work.track_used.assign(static_cast<std::size_t>(track_count), 0);
  work.detection_used.assign(static_cast<std::size_t>(detection_count), 0);
  std::size_t begin = 0;
  while (begin < work.edge_order.size()) {
    std::size_t end = begin;
    const int component = work.component_of_edge[static_cast<std::size_t>(work.edge_order[begin])];
    while (end < work.edge_order.size() &&
           work.component_of_edge[static_cast<std::size_t>(work.edge_order[end])] == component) {
      ++end;
    }
    if (end - begin == 1) {
      const auto& edge = work.edges[static_cast<std::size_t>(work.edge_order[begin])];
      work.track_used[static_cast<std::size_t>(edge.track)] = 1;
      work.detection_used[static_cast<std::size_t>(edge.detection)] = 1;
      matches_.emplace_back(track_indices[static_cast<std::size_t>(edge.track)],
                            detection_indices[static_cast<std::size_t>(edge.detection)]);
    } else {
      work.component_tracks.clear();
      work.component_detections.clear();
      for (std::size_t k = begin; k < end; ++k) {
        const auto& edge = work.edges[static_cast<std::size_t>(work.edge_order[k])];
        if (work.local_track[static_cast<std::size_t>(edge.track)] < 0) {
          work.local_track[static_cast<std::size_t>(edge.track)] = static_cast<int>(work.component_tracks.size());
          work.component_tracks.push_back(edge.track);
        }
        if (work.local_detection[static_cast<std::size_t>(edge.detection)] < 0) {
          work.local_detection[static_cast<std::size_t>(edge.detection)] =
              static_cast<int>(work.component_detections.size());
          work.component_detections.push_back(edge.detection);
        }
      }
      const int rows = static_cast<int>(work.component_tracks.size());
      const int columns = static_cast<int>(work.component_detections.size());
      // Pairs without an edge cost 0, the same as leaving both unmatched.
      work.cost.assign(static_cast<std::size_t>(rows) * static_cast<std::size_t>(columns), 0.0f);
      for (std::size_t k = begin; k < end; ++k) {
        const auto& edge = work.edges[static_cast<std::size_t>(work.edge_order[k])];
        const int row = work.local_track[static_cast<std::size_t>(edge.track)];
        const int column = work.local_detection[static_cast<std::size_t>(edge.detection)];
        work.cost[static_cast<std::size_t>(row) * static_cast<std::size_t>(columns) +
                  static_cast<std::size_t>(column)] = edge.cost;
      }
      work.solver.solve(work.cost, rows, columns, work.row_to_column);
      for (int row = 0; row < rows; ++row) {
        const int column = work.row_to_column[static_cast<std::size_t>(row)];
        if (column < 0) continue;
        if (work.cost[static_cast<std::size_t>(row) * static_cast<std::size_t>(columns) +
                      static_cast<std::size_t>(column)] >= 0.0f) {
          continue;  // no edge: both stay unmatched
        }
        const int t = work.component_tracks[static_cast<std::size_t>(row)];
        const int d = work.component_detections[static_cast<std::size_t>(column)];
        work.track_used[static_cast<std::size_t>(t)] = 1;
        work.detection_used[static_cast<std::size_t>(d)] = 1;
        matches_.emplace_back(track_indices[static_cast<std::size_t>(t)],
                              detection_indices[static_cast<std::size_t>(d)]);
      }
      for (int t : work.component_tracks) work.local_track[static_cast<std::size_t>(t)] = -1;
      for (int d : work.component_detections) work.local_detection[static_cast<std::size_t>(d)] = -1;
    }
    begin = end;
  }

  // Keep only the unmatched candidates, in their order.
  std::size_t kept = 0;
  for (int t = 0; t < track_count; ++t) {
    if (!work.track_used[static_cast<std::size_t>(t)])
      track_indices[kept++] = track_indices[static_cast<std::size_t>(t)];
  }
  track_indices.resize(kept);
  kept = 0;
  for (int d = 0; d < detection_count; ++d) {
    if (!work.detection_used[static_cast<std::size_t>(d)]) {
      detection_indices[kept++] = detection_indices[static_cast<std::size_t>(d)];
    }
  }
  detection_indices.resize(kept);
}

const std::vector<Track>& Tracker::update(std::span<const Detection> detections, double timestamp_seconds) {
  output_.clear();
  changes_.started.clear();
  changes_.ended.clear();
  if (!have_time_) {
    have_time_ = true;
    now_ = timestamp_seconds;
  }
  const double timestamp = std::max(timestamp_seconds, now_);
  predict(timestamp - now_);
  now_ = timestamp;

  predicted_boxes_.resize(live_.size());
  for (std::size_t index = 0; index < live_.size(); ++index) {
    live_[index].matched = false;
    live_[index].detection_index = -1;
    predicted_boxes_[index] = box_from_axes(live_[index].axes);
  }

  high_detections_.clear();
  low_detections_.clear();
  for (std::size_t index = 0; index < detections.size(); ++index) {
    const float score = detections[index].score;
    if (detections[index].width() <= 0 || detections[index].height() <= 0) continue;
    if (score >= settings_.high_score_threshold) {
      high_detections_.push_back(static_cast<int>(index));
    } else if (score >= settings_.low_score_threshold) {
      low_detections_.push_back(static_cast<int>(index));
    }
  }

  pool_tracks_.clear();
  tentative_tracks_.clear();
  for (std::size_t index = 0; index < live_.size(); ++index) {
    (live_[index].state == TrackState::tentative ? tentative_tracks_ : pool_tracks_).push_back(static_cast<int>(index));
  }

  // 1. High-score detections against confirmed and lost tracks.
  associate(pool_tracks_, high_detections_, detections, settings_.first_match_iou, settings_.score_weighted_iou);
  for (const auto& [track, detection] : matches_) {
    LiveTrack& live = live_[static_cast<std::size_t>(track)];
    correct(live, detections[static_cast<std::size_t>(detection)], detection, timestamp);
    live.state = TrackState::confirmed;
  }

  // 2. Low-score detections against the confirmed tracks left (lost ones are not re-found by a
  //    low-score box: too easily a neighbour's fragment).
  std::erase_if(pool_tracks_,
                [this](int index) { return live_[static_cast<std::size_t>(index)].state != TrackState::confirmed; });
  associate(pool_tracks_, low_detections_, detections, settings_.second_match_iou, false);
  for (const auto& [track, detection] : matches_) {
    correct(live_[static_cast<std::size_t>(track)], detections[static_cast<std::size_t>(detection)], detection,
            timestamp);
  }

  // 3. Tentative tracks against the high-score detections left.
  associate(tentative_tracks_, high_detections_, detections, settings_.tentative_match_iou,
            settings_.score_weighted_iou);
  for (const auto& [track, detection] : matches_) {
    LiveTrack& live = live_[static_cast<std::size_t>(track)];
    correct(live, detections[static_cast<std::size_t>(detection)], detection, timestamp);
    if (live.hits >= settings_.confirm_hits) {
      live.state = TrackState::confirmed;
      changes_.started.push_back(report(live, false));
    }
  }

  // 4. Life cycle: unmatched tentative tracks die after tentative_buffer_seconds, unmatched
  //    confirmed ones become lost, lost ones expire. Removal swaps with the last slot (no order is
  //    kept; output is sorted by id).
  for (std::size_t index = 0; index < live_.size();) {
    LiveTrack& track = live_[index];
    bool remove = false;
    if (!track.matched) {
      if (track.state == TrackState::tentative) {
        // A detector that misses a person in one frame often misses them in the next too; killing
        // a new track at its first miss makes every appearance wait for two hits in a row (on
        // MOT17-02/04 det-medium: MOTA 83.8 / 95.3 with that rule, 87.4 / 96.6 with 0.2 s).
        remove =
            settings_.tentative_buffer_seconds <= 0 || timestamp - track.last_seen > settings_.tentative_buffer_seconds;
      } else {
        track.state = TrackState::lost;
        if (timestamp - track.last_seen > settings_.track_buffer_seconds) {
          remove = true;
          changes_.ended.push_back(report_ended(track));
        }
      }
    }
    if (remove) {
      if (index + 1 != live_.size()) std::swap(live_[index], live_.back());
      live_.pop_back();
      predicted_boxes_[index] = predicted_boxes_.back();
      predicted_boxes_.pop_back();
    } else {
      ++index;
    }
  }

  // 5. New tentative tracks (immediately confirmed when one hit suffices).
  for (int detection : high_detections_) {
    const Detection& candidate = detections[static_cast<std::size_t>(detection)];
    if (candidate.score < settings_.new_track_score_threshold) continue;
    if (start_track(candidate, detection, timestamp) && settings_.confirm_hits <= 1) {
      live_.back().state = TrackState::confirmed;
      changes_.started.push_back(report(live_.back(), false));
    }
  }

  for (const auto& track : live_) {
    if (track.state == TrackState::confirmed && track.matched) {
      output_.push_back(report(track, false));
    } else if (track.state == TrackState::lost && timestamp - track.last_seen <= settings_.predicted_output_seconds &&
               settings_.predicted_output_seconds > 0) {
      output_.push_back(report(track, true));
    }
  }
  std::sort(output_.begin(), output_.end(), [](const Track& a, const Track& b) { return a.id < b.id; });
  return output_;
}

void Tracker::finish() {
  output_.clear();
  changes_.started.clear();
  changes_.ended.clear();
  for (const auto& track : live_) {
    if (track.state != TrackState::tentative) changes_.ended.push_back(report_ended(track));
  }
  std::sort(changes_.ended.begin(), changes_.ended.end(), [](const Track& a, const Track& b) { return a.id < b.id; });
  live_.clear();
}

}  // namespace detflow::track
