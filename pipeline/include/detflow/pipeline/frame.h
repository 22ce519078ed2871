// detflow/pipeline/frame.h — what flows through the graph.
//
// A Frame is created by a Source and, once captured, shared read-only as
// std::shared_ptr<const Frame>: sinks never mutate it (annotation draws on its own copy).
// FrameResult carries the frame with its detections and per-stage timings to the sinks,
// which receive results in frame order from a single thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "detflow/post/detection.h"
#include "detflow/track/event.h"
#include "detflow/track/tracker.h"

namespace detflow {

using Clock = std::chrono::steady_clock;

struct Frame {
  std::int64_t index = 0;      // 0-based, in capture order, counting dropped frames too
  double pts_ms = -1.0;        // presentation time from the source in milliseconds; -1 when unknown
  Clock::time_point captured;  // when the source handed the frame over
  cv::Mat image;               // 8-bit BGR (CV_8UC3)
  std::string name;            // image sources: the file's name (for per-image outputs); else empty
};
using FramePtr = std::shared_ptr<const Frame>;

// Wall-clock time a frame spent in each stage, in milliseconds.
struct StageTimes {
  double preprocess_ms = 0;
  double inference_ms = 0;
  double postprocess_ms = 0;
  double queue_ms = 0;  // waiting between stages (capture-to-output minus the stages)
};

struct FrameResult {
  FramePtr frame;
  std::vector<Detection> detections;  // source pixels, labels filled, descending score
  StageTimes times;
  bool failed = false;  // a stage failed for this frame (counted; detections empty)
  std::string failure;  // why, when failed
  // With tracking (PipelineSettings::tracking), filled in frame order by the tracking step:
  // this frame's tracks (Track::detection_index points into `detections`; predicted tracks of
  // briefly lost objects have none), the events this frame caused, and the counts so far
  // (owned by the tracking step; valid only during Sink::consume). Empty / null without tracking.
  std::vector<track::Track> tracks;
  std::vector<track::Event> events;
  const track::CountsSnapshot* counts = nullptr;
};

}  // namespace detflow
