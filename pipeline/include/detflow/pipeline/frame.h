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
#include "detflow/track/analytics.h"
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

// The end-of-stream result: with tracking, after the last frame and before the sinks finish,
// the sinks receive one more result whose `frame` is null. It carries the events of the end of
// the run (track_end of every live track, the zone exits they cause) and the final counts; it
// has no detections and no tracks. Sinks that draw or write one record per frame skip it
// (a null `frame` means "no picture"), event sinks write its events.
struct FrameResult {
  FramePtr frame;                     // null only for the end-of-stream result
  std::vector<Detection> detections;  // source pixels, labels filled, descending score
  StageTimes times;
  bool failed = false;  // a stage failed for this frame (counted; detections empty)
  std::string failure;  // why, when failed
  // False on frames that PipelineSettings::detection_interval skips: preprocessing, inference
  // and postprocessing did not run, `detections` is empty and every track is predicted.
  bool detector_ran = true;
  // With tracking (PipelineSettings::tracking), filled in frame order by the tracking step:
  // this frame's tracks (Track::detection_index points into `detections`; predicted tracks of
  // briefly lost objects, and every track on a frame the detector skipped, have none), the
  // events this frame caused, and the counts so far (owned by the tracking step; valid only
  // during Sink::consume). Empty / null without tracking.
  std::vector<track::Track> tracks;
  std::vector<track::Event> events;
  const track::CountsSnapshot* counts = nullptr;
  // With tracking: the configured lines and zones (to draw them). Owned by the Pipeline and
  // constant, so valid for the Pipeline's lifetime; null without tracking.
  const track::AnalyticsSettings* analytics = nullptr;
};

}  // namespace detflow
