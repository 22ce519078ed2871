// detection_match.h — agreement between two detection streams, as
// ../shared/tools/detmatch.py computes it.
//
// Frames are matched by index; within a frame, candidates are taken by descending score
// and greedily matched to the unused reference box of the same class with the highest
// IoU >= iou_threshold. F1, precision and recall count matched pairs; the mean absolute
// score difference is over matched pairs. Plain values; no shared state.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace detflow::test {

struct MatchBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float score = 0;
  int class_id = 0;
};

// frame index -> detections of that frame
using DetectionStream = std::map<long, std::vector<MatchBox>>;

struct MatchResult {
  long frames_reference = 0;
  long frames_missing = 0;  // in the reference, absent from the candidate
  long true_positives = 0, false_positives = 0, false_negatives = 0;
  double precision = 1, recall = 1, f1 = 1;
  double mean_abs_score_diff = 0;
  std::string to_string() const;
};

// Reads JSON Lines with {"frame": n, "detections": [{"box": [..4], "score", "class"}]}.
DetectionStream read_detection_stream(const std::filesystem::path& path);

MatchResult match_detections(const DetectionStream& candidate, const DetectionStream& reference,
                             double iou_threshold = 0.7);

}  // namespace detflow::test
