// detflow/post/detection.h — one detected object and the thresholds that select them.
#pragma once

#include <limits>
#include <string>
#include <vector>

namespace detflow {

// A box in source-frame pixels (x1, y1 top-left; x2, y2 bottom-right; clipped to the
// frame), its score in [0, 1], its class index and the class's label.
struct Detection {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float score = 0;
  int class_id = 0;
  std::string label;

  float width() const { return x2 - x1; }
  float height() const { return y2 - y1; }
  float area() const { return width() > 0 && height() > 0 ? width() * height() : 0.0f; }
};

// Intersection over union of two boxes; 0 when either is empty.
float intersection_over_union(const Detection& a, const Detection& b);

// What survives decoding. Defaults are overwritten by the family's defaults (see
// decoder.h) and then by the user's configuration.
struct PostprocessOptions {
  float score_threshold = 0.25f;  // keep score >= this (applied before sorting)
  float iou_threshold = 0.45f;    // NMS suppresses IoU > this
  int max_detections = 300;       // cap after NMS; <= 0 means no cap
  bool nms = true;                // false for end-to-end (NMS-free) models
  bool class_agnostic = false;    // NMS across classes
  // Per-class score thresholds (index = class id); a value < 0 or a missing entry uses
  // score_threshold.
  std::vector<float> class_score_thresholds;
  // Classes to keep (class ids); empty keeps all.
  std::vector<int> class_filter;

  // Effective threshold and filter for one class.
  float threshold_for(int class_id) const {
    float threshold = score_threshold;
    if (class_id >= 0 && static_cast<std::size_t>(class_id) < class_score_thresholds.size() &&
        class_score_thresholds[static_cast<std::size_t>(class_id)] >= 0) {
      threshold = class_score_thresholds[static_cast<std::size_t>(class_id)];
    }
    return threshold;
  }
};

}  // namespace detflow
