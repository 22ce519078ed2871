// The tracker's cost per frame: Tracker::update over MOT17-04's det-medium detections (about
// 33 per frame, 1920x1080, ../shared/tracking), or a synthetic crowd of 40 walkers when
// ../shared is absent. The budget is 50 us per update on one thread; the official
// ByteTrack C++ takes 433 us on this file (../shared/tracking/README.md).
//
// Baseline: the first association step as ByteTrack does it, alone: the full IoU matrix of the
// previous frame's boxes (standing in for the tracks) against this frame's, solved densely by
// one linear assignment. detflow's complete update (Kalman, two associations, life cycle,
// output) splits the gated graph into components and solves those instead.
#include <cmath>
#include <random>

#include "detflow/track/assignment.h"
#include "detflow/track/mot.h"
#include "detflow/track/tracker.h"
#include "micro_support.h"

namespace detflow::bench::micro {
namespace {

struct TrackingCase {
  std::vector<std::vector<Detection>> frames;  // frame 1..N, empty frames included
  std::string origin;
};

const TrackingCase& tracking_case() {
  static const TrackingCase cached = [] {
    TrackingCase loaded;
    if (const auto file = shared_file("tracking/MOT17-04/det-medium.txt")) {
      for (auto& frame : track::group_by_frame(track::read_mot_file(file->string()))) {
        loaded.frames.resize(static_cast<std::size_t>(frame.frame));
        loaded.frames.back() = std::move(frame.detections);
      }
      loaded.origin = "MOT17-04 det-medium";
      return loaded;
    }
    // 40 walkers crossing a 1920x1080 frame, 5 % missed per frame, for 1000 frames.
    std::mt19937 random(1);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    struct Walker {
      float x, y, vx, vy;
    };
    std::vector<Walker> walkers;
    for (int index = 0; index < 40; ++index) {
      walkers.push_back({unit(random) * 1800, unit(random) * 900, unit(random) * 6 - 3, unit(random) * 2 - 1});
    }
    for (int frame = 0; frame < 1000; ++frame) {
      auto& detections = loaded.frames.emplace_back();
      for (auto& walker : walkers) {
        walker.x = std::fmod(walker.x + walker.vx + 1800, 1800.0f);
        walker.y = std::fmod(walker.y + walker.vy + 900, 900.0f);
        if (unit(random) < 0.05f) continue;
        Detection detection;
        detection.x1 = walker.x + unit(random) * 4;
        detection.y1 = walker.y + unit(random) * 4;
        detection.x2 = detection.x1 + 60;
        detection.y2 = detection.y1 + 160;
        detection.score = 0.3f + 0.7f * unit(random);
        detections.push_back(detection);
      }
    }
    loaded.origin = "synthetic 40 walkers (../shared/tracking absent)";
    return loaded;
  }();
  return cached;
}

void per_update_counter(benchmark::State& state, const TrackingCase& tracking) {
  state.counters["us_per_update"] =
      benchmark::Counter(static_cast<double>(tracking.frames.size()) * 1e-6,
                         benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel(tracking.origin + ", " + std::to_string(tracking.frames.size()) + " frames per iteration");
}

void detflow_tracker(benchmark::State& state) {
  const TrackingCase& tracking = tracking_case();
  std::size_t reported = 0;
  for (auto _ : state) {
    track::Tracker tracker;
    for (std::size_t frame = 0; frame < tracking.frames.size(); ++frame) {
      reported += tracker.update(tracking.frames[frame], static_cast<double>(frame) / 30.0).size();
    }
    benchmark::DoNotOptimize(reported);
  }
  per_update_counter(state, tracking);
}

void dense_association(benchmark::State& state) {
  const TrackingCase& tracking = tracking_case();
  track::LinearAssignment solver;
  std::vector<float> cost;
  std::vector<int> result;
  std::size_t matched = 0;
  for (auto _ : state) {
    for (std::size_t frame = 1; frame < tracking.frames.size(); ++frame) {
      const auto& previous = tracking.frames[frame - 1];
      const auto& current = tracking.frames[frame];
      cost.resize(previous.size() * current.size());
      for (std::size_t row = 0; row < previous.size(); ++row) {
        for (std::size_t column = 0; column < current.size(); ++column) {
          const float iou =
              track::intersection_over_union(track::box_of(previous[row]), track::box_of(current[column]));
          cost[row * current.size() + column] = iou >= 0.2f ? -iou : 0.0f;
        }
      }
      solver.solve(cost, static_cast<int>(previous.size()), static_cast<int>(current.size()), result);
      for (int column : result) matched += column >= 0;
    }
    benchmark::DoNotOptimize(matched);
  }
  per_update_counter(state, tracking);
}

}  // namespace

void register_tracking_benchmarks() {
  register_pair("track_update", "ByteTrack's first association alone: full IoU matrix + one dense assignment",
                detflow_tracker, dense_association, 3);
}

}  // namespace detflow::bench::micro
