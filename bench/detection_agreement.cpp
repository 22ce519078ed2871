#include "detflow/bench/detection_agreement.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace detflow::bench {
namespace {

// detmatch.py's IoU: boxes are taken as given (no clipping of inverted boxes).
double box_iou(const Detection& a, const Detection& b) {
  const double overlap_x = std::max(0.0, static_cast<double>(std::min(a.x2, b.x2)) - std::max(a.x1, b.x1));
  const double overlap_y = std::max(0.0, static_cast<double>(std::min(a.y2, b.y2)) - std::max(a.y1, b.y1));
  const double intersection = overlap_x * overlap_y;
  const double area_a = static_cast<double>(a.x2 - a.x1) * (a.y2 - a.y1);
  const double area_b = static_cast<double>(b.x2 - b.x1) * (b.y2 - b.y1);
  const double union_area = area_a + area_b - intersection;
  return union_area > 0 ? intersection / union_area : 0.0;
}

}  // namespace

Agreement compare_detections(const DetectionsPerFrame& candidate, const DetectionsPerFrame& reference,
                             double iou_threshold) {
  Agreement agreement;
  double score_diff_sum = 0;
  std::vector<const Detection*> ordered;
  std::vector<bool> used;
  for (std::size_t frame = 0; frame < reference.size(); ++frame) {
    const auto& references = reference[frame];
    ++agreement.frames_compared;
    ordered.clear();
    if (frame < candidate.size()) {
      for (const auto& detection : candidate[frame]) ordered.push_back(&detection);
    } else {
      ++agreement.frames_missing;
    }
    std::stable_sort(ordered.begin(), ordered.end(),
                     [](const Detection* a, const Detection* b) { return a->score > b->score; });
    used.assign(references.size(), false);
    for (const Detection* detection : ordered) {
      double best = iou_threshold;
      std::ptrdiff_t best_index = -1;
      for (std::size_t index = 0; index < references.size(); ++index) {
        if (used[index] || references[index].class_id != detection->class_id) continue;
        const double overlap = box_iou(*detection, references[index]);
        if (overlap >= best) {
          best = overlap;
          best_index = static_cast<std::ptrdiff_t>(index);
        }
      }
      if (best_index >= 0) {
        used[static_cast<std::size_t>(best_index)] = true;
        ++agreement.true_positives;
        score_diff_sum += std::abs(detection->score - references[static_cast<std::size_t>(best_index)].score);
      } else {
        ++agreement.false_positives;
      }
    }
    agreement.false_negatives += std::count(used.begin(), used.end(), false);
  }
  const double tp = static_cast<double>(agreement.true_positives);
  const double fp = static_cast<double>(agreement.false_positives);
  const double fn = static_cast<double>(agreement.false_negatives);
  agreement.precision = tp + fp > 0 ? tp / (tp + fp) : 1.0;
  agreement.recall = tp + fn > 0 ? tp / (tp + fn) : 1.0;
  const double sum = agreement.precision + agreement.recall;
  agreement.f1 = sum > 0 ? 2 * agreement.precision * agreement.recall / sum : 0.0;
  agreement.mean_abs_score_diff = agreement.true_positives > 0 ? score_diff_sum / tp : 0.0;
  return agreement;
}

nlohmann::json to_json(const Agreement& agreement) {
  return {{"frames_compared", agreement.frames_compared},
          {"frames_missing", agreement.frames_missing},
          {"true_positives", agreement.true_positives},
          {"false_positives", agreement.false_positives},
          {"false_negatives", agreement.false_negatives},
          {"precision", agreement.precision},
          {"recall", agreement.recall},
          {"f1", agreement.f1},
          {"mean_abs_score_diff", agreement.mean_abs_score_diff}};
}

nlohmann::json detections_to_json(const DetectionsPerFrame& detections) {
  nlohmann::json frames = nlohmann::json::array();
  for (const auto& frame : detections) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& detection : frame) {
      rows.push_back({detection.x1, detection.y1, detection.x2, detection.y2, detection.score, detection.class_id});
    }
    frames.push_back(std::move(rows));
  }
  return frames;
}

DetectionsPerFrame detections_from_json(const nlohmann::json& json) {
  DetectionsPerFrame detections;
  detections.reserve(json.size());
  for (const auto& rows : json) {
    auto& frame = detections.emplace_back();
    frame.reserve(rows.size());
    for (const auto& row : rows) {
      Detection detection;
      detection.x1 = row.at(0).get<float>();
      detection.y1 = row.at(1).get<float>();
      detection.x2 = row.at(2).get<float>();
      detection.y2 = row.at(3).get<float>();
      detection.score = row.at(4).get<float>();
      detection.class_id = row.at(5).get<int>();
      frame.push_back(detection);
    }
  }
  return detections;
}

}  // namespace detflow::bench
