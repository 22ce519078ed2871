#include "decoder_support.h"

#include <algorithm>
#include <array>
#include <numeric>
#include <sstream>

#include "detflow/error.h"
#include "detflow/post/labels.h"

namespace detflow::detail {

namespace {

bool class_selected(const PostprocessOptions& options, int class_id) {
  return options.class_filter.empty() ||
         std::find(options.class_filter.begin(), options.class_filter.end(), class_id) != options.class_filter.end();
}

std::vector<float>& gate_storage() {
  thread_local std::vector<float> storage;
  return storage;
}

}  // namespace

ClassGate::ClassGate(const PostprocessOptions& options, int num_classes)
    : options_(options), thresholds_(gate_storage()), minimum_(std::numeric_limits<float>::infinity()) {
  thresholds_.assign(static_cast<std::size_t>(std::max(num_classes, 0)), std::numeric_limits<float>::infinity());
  for (int class_id = 0; class_id < num_classes; ++class_id) {
    if (!class_selected(options, class_id)) continue;
    const float threshold = options.threshold_for(class_id);
    thresholds_[static_cast<std::size_t>(class_id)] = threshold;
    minimum_ = std::min(minimum_, threshold);
  }
  // Class ids the table does not cover (decoders whose class count is unknown, such as
  // end-to-end outputs) are judged one by one; the minimum must not exclude them.
  if (num_classes <= 0) {
    minimum_ = options.score_threshold;
    for (float threshold : options.class_score_thresholds) {
      if (threshold >= 0) minimum_ = std::min(minimum_, threshold);
    }
  }
}

float ClassGate::threshold_outside_table(int class_id) const {
  if (!class_selected(options_, class_id)) return std::numeric_limits<float>::infinity();
  return options_.threshold_for(class_id);
}

std::vector<Candidate>& candidate_scratch() {
  thread_local std::vector<Candidate> candidates;
  return candidates;
}

std::vector<float>& float_scratch(std::size_t slot, std::size_t size) {
  // A fixed number of slots: references to earlier slots stay valid while later ones grow.
  thread_local std::array<std::vector<float>, float_scratch_slots> buffers;
  std::vector<float>& buffer = buffers.at(slot);
  if (buffer.size() < size) buffer.resize(size);
  return buffer;
}

float logit(float probability) {
  if (probability <= 0.0f) return -std::numeric_limits<float>::infinity();
  if (probability >= 1.0f) return std::numeric_limits<float>::infinity();
  return std::log(probability / (1.0f - probability));
}

void greedy_nms(std::span<const Candidate> candidates, const PostprocessOptions& options,
                std::vector<std::uint32_t>& keep) {
  keep.clear();
  const std::size_t count = candidates.size();
  const std::size_t cap = options.max_detections > 0 ? static_cast<std::size_t>(options.max_detections)
                                                     : std::numeric_limits<std::size_t>::max();
  thread_local std::vector<std::uint32_t> order;
  order.resize(count);
  std::iota(order.begin(), order.end(), 0u);
  // Index as tie-break: deterministic like a stable sort, without its temporary buffer.
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    if (candidates[a].score != candidates[b].score) return candidates[a].score > candidates[b].score;
    return a < b;
  });
  if (!options.nms) {
    keep.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(std::min(count, cap)));
    return;
  }

  // Kept boxes are bucketed by class so a candidate is only compared with boxes it can
  // suppress; agnostic NMS (or class ids too large for a table) uses one bucket and
  // compares class ids explicitly where needed.
  int largest_class = -1;
  bool negative_class = false;
  for (const Candidate& candidate : candidates) {
    largest_class = std::max(largest_class, candidate.class_id);
    negative_class = negative_class || candidate.class_id < 0;
  }
  constexpr int max_bucketed_class = 1 << 16;
  const bool bucketed = !options.class_agnostic && !negative_class && largest_class < max_bucketed_class;
  const bool compare_classes = !options.class_agnostic && !bucketed;

  struct KeptBox {
    float x1, y1, x2, y2, area;
    int class_id;
  };
  thread_local std::vector<std::vector<KeptBox>> buckets;
  const std::size_t bucket_count = bucketed ? static_cast<std::size_t>(largest_class + 1) : 1;
  if (buckets.size() < bucket_count) buckets.resize(bucket_count);
  for (std::size_t bucket = 0; bucket < bucket_count; ++bucket) buckets[bucket].clear();

  const float threshold = options.iou_threshold;
  for (const std::uint32_t index : order) {
    const Candidate& box = candidates[index];
    const float width = box.x2 - box.x1;
    const float height = box.y2 - box.y1;
    const float area = width > 0 && height > 0 ? width * height : 0.0f;
    std::vector<KeptBox>& bucket = buckets[bucketed ? static_cast<std::size_t>(box.class_id) : 0];
    bool suppressed = false;
    for (const KeptBox& kept : bucket) {
      if (compare_classes && kept.class_id != box.class_id) continue;
      const float overlap_width = std::min(box.x2, kept.x2) - std::max(box.x1, kept.x1);
      const float overlap_height = std::min(box.y2, kept.y2) - std::max(box.y1, kept.y1);
      if (overlap_width <= 0 || overlap_height <= 0) continue;
      const float intersection = overlap_width * overlap_height;
      const float union_area = area + kept.area - intersection;
      // IoU > threshold, without the division.
      if (union_area > 0 && intersection > threshold * union_area) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    bucket.push_back({box.x1, box.y1, box.x2, box.y2, area, box.class_id});
    keep.push_back(index);
    if (keep.size() >= cap) break;
  }
}

void finish_detections(std::span<const Candidate> candidates, const Geometry& geometry,
                       const PostprocessOptions& options, std::vector<Detection>& detections) {
  detections.clear();
  thread_local std::vector<std::uint32_t> keep;
  greedy_nms(candidates, options, keep);
  const auto width = static_cast<float>(geometry.source_width);
  const auto height = static_cast<float>(geometry.source_height);
  detections.resize(keep.size());
  for (std::size_t i = 0; i < keep.size(); ++i) {
    const Candidate& candidate = candidates[keep[i]];
    const cv::Point2d top_left = geometry.to_source({candidate.x1, candidate.y1});
    const cv::Point2d bottom_right = geometry.to_source({candidate.x2, candidate.y2});
    Detection& detection = detections[i];
    detection.x1 = std::clamp(static_cast<float>(top_left.x), 0.0f, width);
    detection.y1 = std::clamp(static_cast<float>(top_left.y), 0.0f, height);
    detection.x2 = std::clamp(static_cast<float>(bottom_right.x), 0.0f, width);
    detection.y2 = std::clamp(static_cast<float>(bottom_right.y), 0.0f, height);
    detection.score = candidate.score;
    detection.class_id = candidate.class_id;
    detection.label.clear();
  }
}

void expect_output_count(std::span<const Tensor> outputs, std::size_t expected, std::string_view what) {
  if (outputs.size() < expected) {
    throw std::runtime_error(std::string(what) + ": got " + std::to_string(outputs.size()) +
                             " output tensors, the decoder was built for " + std::to_string(expected));
  }
}

std::vector<std::int64_t> layout_dims(const TensorInfo& info) {
  std::vector<std::int64_t> dims = info.fixed_shape();
  std::size_t leading = 0;
  while (dims.size() - leading > 2 && dims[leading] == 1) ++leading;
  dims.erase(dims.begin(), dims.begin() + static_cast<std::ptrdiff_t>(leading));
  return dims;
}

bool is_fixed(const std::vector<std::int64_t>& dims) {
  return !dims.empty() && std::all_of(dims.begin(), dims.end(), [](std::int64_t dim) { return dim > 0; });
}

std::size_t element_count(const std::vector<std::int64_t>& dims) {
  std::size_t count = 1;
  for (std::int64_t dim : dims) count *= static_cast<std::size_t>(std::max<std::int64_t>(dim, 0));
  return count;
}

std::string dims_text(const std::vector<std::int64_t>& dims) {
  std::ostringstream text;
  text << '[';
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) text << ", ";
    if (dims[i] >= 0) {
      text << dims[i];
    } else {
      text << '?';
    }
  }
  text << ']';
  return text.str();
}

std::string shape_text(const TensorInfo& info) { return dims_text(info.fixed_shape()); }

void require_float_output(const TensorInfo& info, std::string_view family) {
  if (info.type != ElementType::float32 && info.type != ElementType::float16) {
    throw Error(std::string(family) + " decoder: output '" + info.name + "' has element type '" +
                (info.type_name.empty() ? std::string(element_type_name(info.type)) : info.type_name) +
                "': expected float or float16");
  }
}

std::int64_t grid_cell_count(int input_width, int input_height, std::span<const int> strides, bool round_up) {
  std::int64_t cells = 0;
  for (const int stride : strides) {
    if (stride <= 0) return 0;
    const std::int64_t columns = round_up ? (input_width + stride - 1) / stride : input_width / stride;
    const std::int64_t rows = round_up ? (input_height + stride - 1) / stride : input_height / stride;
    cells += columns * rows;
  }
  return cells;
}

std::vector<int> strides_or(const std::vector<int>& configured, std::vector<int> fallback) {
  return configured.empty() ? fallback : configured;
}

std::optional<std::string> metadata(const ModelInfo* model, const std::string& key) {
  if (model == nullptr) return std::nullopt;
  const auto found = model->metadata.find(key);
  if (found == model->metadata.end()) return std::nullopt;
  return found->second;
}

bool has_ultralytics_metadata(const ModelInfo* model) {
  if (model == nullptr) return false;
  const auto author = metadata(model, "author");
  if (author && author->find("Ultralytics") != std::string::npos) return true;
  return metadata(model, "names").has_value() && metadata(model, "stride").has_value();
}

int metadata_class_count(const ModelInfo* model) {
  const auto names = metadata(model, "names");
  if (!names) return 0;
  return static_cast<int>(parse_names_metadata(*names).size());
}

}  // namespace detflow::detail
