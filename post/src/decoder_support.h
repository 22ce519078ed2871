// decoder_support.h — private helpers shared by the decoders (not installed, not public).
//
// Candidates live in input-tensor pixels until NMS has run (as the reference
// implementations do); only the survivors are mapped to source pixels and clipped.
// Scratch buffers are thread_local so that const decoders can run concurrently without
// allocating per frame in steady state.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "detflow/inference/model_info.h"
#include "detflow/post/detection.h"
#include "detflow/pre/preprocess.h"
#include "detflow/tensor.h"

namespace detflow::detail {

// A scored box in input-tensor pixels (x1, y1 top-left; x2, y2 bottom-right).
struct Candidate {
  float x1, y1, x2, y2;
  float score;
  int class_id;
};

// The per-class score thresholds and class filter of PostprocessOptions as one table:
// a class passes when score >= threshold(class); filtered-out classes get +infinity.
// `minimum` is the lowest threshold of any class, used to reject rows before the
// expensive part of decoding.
class ClassGate {
 public:
  ClassGate(const PostprocessOptions& options, int num_classes);
  float minimum() const { return minimum_; }
  bool passes(int class_id, float score) const {
    if (class_id >= 0 && static_cast<std::size_t>(class_id) < thresholds_.size()) {
      return score >= thresholds_[static_cast<std::size_t>(class_id)];
    }
    return score >= threshold_outside_table(class_id);
  }

 private:
  float threshold_outside_table(int class_id) const;
  const PostprocessOptions& options_;
  std::vector<float>& thresholds_;  // thread_local storage
  float minimum_;
};

// Thread-local candidate list (not cleared: a decoder clears it when it starts a frame).
std::vector<Candidate>& candidate_scratch();
// Thread-local float buffer `slot` (< float_scratch_slots) of at least `size` elements.
inline constexpr std::size_t float_scratch_slots = 4;
std::vector<float>& float_scratch(std::size_t slot, std::size_t size);

// Greedy NMS (see nms.h) over candidates; `keep` receives the surviving indices in output
// order (score descending, ties by index).
void greedy_nms(std::span<const Candidate> candidates, const PostprocessOptions& options,
                std::vector<std::uint32_t>& keep);

// NMS, then the survivors mapped to source pixels, clipped, appended to the cleared
// `detections`.
void finish_detections(std::span<const Candidate> candidates, const Geometry& geometry,
                       const PostprocessOptions& options, std::vector<Detection>& detections);

inline float to_float(float value) { return value; }
inline float to_float(std::uint16_t value) { return half_to_float(value); }
inline float sigmoid(float value) { return 1.0f / (1.0f + std::exp(-value)); }
// The highest of `count` class values spaced `step` elements apart and its index; the
// lowest index wins ties, as argmax does. Works on f32 and f16 (bits) rows alike.
struct BestClass {
  float value;
  int class_id;
};
template <typename Element>
BestClass best_class(const Element* first, std::size_t count, std::size_t step = 1) {
  BestClass best{to_float(first[0]), 0};
  for (std::size_t index = 1; index < count; ++index) {
    const float value = to_float(first[index * step]);
    if (value > best.value) best = {value, static_cast<int>(index)};
  }
  return best;
}

// The logit whose sigmoid is `probability` (+/-infinity at 0 and 1).
float logit(float probability);

// Calls `function(const float*)` or `function(const std::uint16_t*)` (f16 bits) with the
// tensor's data. Throws std::runtime_error (a per-frame failure) for other types or a
// tensor whose element count differs from `expected_elements`.
template <typename Function>
void with_float_data(const Tensor& tensor, std::size_t expected_elements, std::string_view what, Function&& function) {
  if (tensor.element_count() != expected_elements) {
    throw std::runtime_error(std::string(what) + ": output tensor has " + std::to_string(tensor.element_count()) +
                             " elements, the decoder was built for " + std::to_string(expected_elements));
  }
  if (tensor.type() == ElementType::float32) {
    function(tensor.data<float>());
  } else if (tensor.type() == ElementType::float16) {
    function(tensor.data<std::uint16_t>());
  } else {
    throw std::runtime_error(std::string(what) + ": output tensor of type '" +
                             std::string(element_type_name(tensor.type())) + "' is not float or float16");
  }
}

void expect_output_count(std::span<const Tensor> outputs, std::size_t expected, std::string_view what);

// ---- layout inspection (construction and auto-detection) ----

// The shape without leading 1s (batch), keeping at least two dims; -1 for symbolic dims.
std::vector<std::int64_t> layout_dims(const TensorInfo& info);
bool is_fixed(const std::vector<std::int64_t>& dims);
std::size_t element_count(const std::vector<std::int64_t>& dims);
// "[1, 84, 8400]" from the declared shape.
std::string shape_text(const TensorInfo& info);
std::string dims_text(const std::vector<std::int64_t>& dims);
// Output type must be float or float16; throws detflow::Error otherwise.
void require_float_output(const TensorInfo& info, std::string_view family);

// Number of grid cells over strides: sum of (H / s) * (W / s), rounded down (YOLO) or up
// (NanoDet, SSD).
std::int64_t grid_cell_count(int input_width, int input_height, std::span<const int> strides, bool round_up);
std::vector<int> strides_or(const std::vector<int>& configured, std::vector<int> fallback);

// Ultralytics writes metadata such as author/task/names/stride; YOLOv5's own export
// writes names and stride only.
bool has_ultralytics_metadata(const ModelInfo* model);
std::optional<std::string> metadata(const ModelInfo* model, const std::string& key);
// Number of classes in the metadata `names`, 0 when absent.
int metadata_class_count(const ModelInfo* model);

}  // namespace detflow::detail
