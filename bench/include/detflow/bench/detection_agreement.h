// detflow/bench/detection_agreement.h — do two runs detect the same objects?
//
// The matching of ../shared/tools/detmatch.py: frames are paired by index; within a frame
// the candidate's detections are taken by descending score, each matched to the unused
// reference detection of the same class with the highest IoU >= iou_threshold (the last of
// equal ones). Precision, recall and F1 count matched pairs over all frames; the mean
// absolute score difference is over matched pairs.
// Plain functions on values; safe from any thread.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "detflow/post/detection.h"

namespace detflow::bench {

// One run's detections, one vector per frame, in frame order.
using DetectionsPerFrame = std::vector<std::vector<Detection>>;

struct Agreement {
  std::int64_t frames_compared = 0;
  std::int64_t frames_missing = 0;  // frames the reference has and the candidate lacks
  std::int64_t true_positives = 0, false_positives = 0, false_negatives = 0;
  double precision = 1, recall = 1, f1 = 1;
  double mean_abs_score_diff = 0;
};

Agreement compare_detections(const DetectionsPerFrame& candidate, const DetectionsPerFrame& reference,
                             double iou_threshold = 0.7);

nlohmann::json to_json(const Agreement& agreement);

// Compact transport between processes: [[x1, y1, x2, y2, score, class], ...] per frame.
nlohmann::json detections_to_json(const DetectionsPerFrame& detections);
DetectionsPerFrame detections_from_json(const nlohmann::json& json);

}  // namespace detflow::bench
