#include "detection_match.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace detflow::test {

namespace {
double box_iou(const MatchBox& a, const MatchBox& b) {
  const double overlap_x = std::max(0.0, double(std::min(a.x2, b.x2)) - std::max(a.x1, b.x1));
  const double overlap_y = std::max(0.0, double(std::min(a.y2, b.y2)) - std::max(a.y1, b.y1));
  const double intersection = overlap_x * overlap_y;
  const double united = double(a.x2 - a.x1) * (a.y2 - a.y1) + double(b.x2 - b.x1) * (b.y2 - b.y1) - intersection;
  return united > 0 ? intersection / united : 0.0;
}
}  // namespace

std::string MatchResult::to_string() const {
  std::ostringstream text;
  text << "frames " << frames_reference << " (missing " << frames_missing << "), tp " << true_positives << ", fp "
       << false_positives << ", fn " << false_negatives << ", precision " << precision << ", recall " << recall
       << ", F1 " << f1 << ", mean |score diff| " << mean_abs_score_diff;
  return text.str();
}

namespace {

// A whole number in [minimum, maximum]; anything else (a float, out of range, not a number) is
// a malformed file. Converting first and checking after would be undefined behaviour.
template <typename Integer>
Integer integer_of(const nlohmann::json& value, const char* what) {
  if (value.is_number_integer() || value.is_number_unsigned()) {
    if (value.is_number_unsigned()
            ? value.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<Integer>::max())
            : value.get<std::int64_t>() >= std::numeric_limits<Integer>::min() &&
                  value.get<std::int64_t>() <= std::numeric_limits<Integer>::max()) {
      return static_cast<Integer>(value.get<std::int64_t>());
    }
  }
  throw std::runtime_error(std::string(what) + " " + value.dump() + " is not a whole number in range");
}

// A finite number that fits a float.
float float_of(const nlohmann::json& value, const char* what) {
  if (value.is_number()) {
    const double number = value.get<double>();
    if (std::isfinite(number) && std::fabs(number) <= std::numeric_limits<float>::max()) {
      return static_cast<float>(number);
    }
  }
  throw std::runtime_error(std::string(what) + " " + value.dump() + " is not a finite number in float range");
}

}  // namespace

DetectionStream read_detection_stream(const std::filesystem::path& path) {
  std::ifstream input(path);
  if (!input) throw std::runtime_error("cannot read " + path.string());
  DetectionStream stream;
  std::string line;
  while (std::getline(input, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto record = nlohmann::json::parse(line);
    auto& detections = stream[integer_of<long>(record.at("frame"), "frame")];
    for (const auto& item : record.at("detections")) {
      const auto& box = item.at("box");
      detections.push_back({float_of(box.at(0), "box"), float_of(box.at(1), "box"), float_of(box.at(2), "box"),
                            float_of(box.at(3), "box"), float_of(item.at("score"), "score"),
                            integer_of<int>(item.at("class"), "class")});
    }
  }
  return stream;
}

MatchResult match_detections(const DetectionStream& candidate, const DetectionStream& reference, double iou_threshold) {
  MatchResult result;
  double score_diff_sum = 0;
  for (const auto& [frame, reference_boxes] : reference) {
    ++result.frames_reference;
    std::vector<MatchBox> candidate_boxes;
    if (const auto found = candidate.find(frame); found != candidate.end()) {
      candidate_boxes = found->second;
    } else {
      ++result.frames_missing;
    }
    std::stable_sort(candidate_boxes.begin(), candidate_boxes.end(),
                     [](const MatchBox& a, const MatchBox& b) { return a.score > b.score; });
    std::vector<bool> used(reference_boxes.size(), false);
    for (const auto& box : candidate_boxes) {
      double best = iou_threshold;
      long best_index = -1;
      for (std::size_t index = 0; index < reference_boxes.size(); ++index) {
        if (used[index] || reference_boxes[index].class_id != box.class_id) continue;
        const double overlap = box_iou(box, reference_boxes[index]);
        if (overlap >= best) {
          best = overlap;
          best_index = static_cast<long>(index);
        }
      }
      if (best_index >= 0) {
        used[static_cast<std::size_t>(best_index)] = true;
        ++result.true_positives;
        score_diff_sum += std::abs(box.score - reference_boxes[static_cast<std::size_t>(best_index)].score);
      } else {
        ++result.false_positives;
      }
    }
    result.false_negatives += std::count(used.begin(), used.end(), false);
  }
  const auto tp = double(result.true_positives);
  result.precision = tp + result.false_positives > 0 ? tp / (tp + result.false_positives) : 1.0;
  result.recall = tp + result.false_negatives > 0 ? tp / (tp + result.false_negatives) : 1.0;
  result.f1 = result.precision + result.recall > 0
                  ? 2 * result.precision * result.recall / (result.precision + result.recall)
                  : 0.0;
  result.mean_abs_score_diff = result.true_positives > 0 ? score_diff_sum / tp : 0.0;
  return result;
}

}  // namespace detflow::test
