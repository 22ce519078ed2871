#include "detflow/post/nms.h"

#include <algorithm>

#include "decoder_support.h"

namespace detflow {

float intersection_over_union(const Detection& a, const Detection& b) {
  const float area_a = a.area();
  const float area_b = b.area();
  if (area_a <= 0 || area_b <= 0) return 0.0f;
  const float overlap_width = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  const float overlap_height = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  if (overlap_width <= 0 || overlap_height <= 0) return 0.0f;
  const float intersection = overlap_width * overlap_height;
  return intersection / (area_a + area_b - intersection);
}

void non_maximum_suppression(std::vector<Detection>& candidates, const PostprocessOptions& options) {
  thread_local std::vector<detail::Candidate> boxes;
  thread_local std::vector<std::uint32_t> keep;
  boxes.clear();
  boxes.reserve(candidates.size());
  for (const Detection& detection : candidates) {
    boxes.push_back({detection.x1, detection.y1, detection.x2, detection.y2, detection.score, detection.class_id});
  }
  detail::greedy_nms(boxes, options, keep);
  // Survivors are moved, in output order, into a thread-local vector that then trades
  // buffers with `candidates`: both keep their capacity for the next call.
  thread_local std::vector<Detection> kept;
  kept.clear();
  for (const std::uint32_t index : keep) kept.push_back(std::move(candidates[index]));
  candidates.swap(kept);
}

}  // namespace detflow
