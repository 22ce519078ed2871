#include "detflow/post/decoders/yolov10.h"

#include <cmath>

#include "../decoder_support.h"
#include "detflow/error.h"

namespace detflow {

namespace {

constexpr std::string_view family_label = "yolov10 decoder";
constexpr std::int64_t columns = 6;

}  // namespace

Yolov10Decoder::Yolov10Decoder(const DecoderContext& context) {
  const auto dims = context.outputs.empty() ? std::vector<std::int64_t>{} : detail::layout_dims(context.outputs[0]);
  if (dims.size() != 2 || !detail::is_fixed(dims) || dims[1] != columns) {
    throw Error(std::string(family_label) + ": output " +
                (context.outputs.empty() ? std::string("(none)") : detail::shape_text(context.outputs[0])) +
                " does not fit: expected [1, K, 6] rows of x1, y1, x2, y2, score, class");
  }
  detail::require_float_output(context.outputs[0], family_label);
  rows_ = static_cast<std::size_t>(dims[0]);
  num_classes_ =
      context.config.num_classes > 0 ? context.config.num_classes : detail::metadata_class_count(context.model);
}

std::optional<std::string> Yolov10Decoder::match(const DecoderContext& context) {
  if (context.outputs.size() != 1) return std::nullopt;
  const auto dims = detail::layout_dims(context.outputs[0]);
  if (dims.size() != 2 || !detail::is_fixed(dims) || dims[1] != columns) return std::nullopt;
  const std::string shape = detail::shape_text(context.outputs[0]);
  const auto end_to_end = detail::metadata(context.model, "end2end");
  const auto head = detail::metadata(context.model, "head");
  if ((end_to_end && *end_to_end == "True") || (head && *head == "v10Detect")) {
    return "one output " + shape + " and end-to-end metadata: rows of x1, y1, x2, y2, score, class (NMS-free)";
  }
  // A one-class YOLOv5/YOLOX output also has 6 columns, but one row per grid cell.
  const std::vector<int> strides = detail::strides_or(context.config.strides, {8, 16, 32});
  const std::int64_t cells = detail::grid_cell_count(context.input_width, context.input_height, strides, false);
  if (dims[0] == cells || dims[0] == 3 * cells) return std::nullopt;
  return "one output " + shape + ": " + std::to_string(dims[0]) +
         " rows of x1, y1, x2, y2, score, class, not a grid cell count (end-to-end, NMS-free)";
}

void Yolov10Decoder::decode(std::span<const Tensor> outputs, const Geometry& geometry,
                            const PostprocessOptions& options, std::vector<Detection>& detections) const {
  detail::expect_output_count(outputs, 1, family_label);
  const detail::ClassGate gate(options, num_classes_);
  std::vector<detail::Candidate>& candidates = detail::candidate_scratch();
  candidates.clear();
  detail::with_float_data(outputs[0], rows_ * columns, family_label, [&](const auto* data) {
    const float minimum = gate.minimum();
    for (std::size_t row_index = 0; row_index < rows_; ++row_index) {
      const auto* row = data + row_index * columns;
      const float score = detail::to_float(row[4]);
      if (score < minimum) continue;
      const float class_value = detail::to_float(row[5]);
      if (!std::isfinite(class_value)) continue;
      const auto class_id = static_cast<int>(std::lround(class_value));
      if (!gate.passes(class_id, score)) continue;
      candidates.push_back({detail::to_float(row[0]), detail::to_float(row[1]), detail::to_float(row[2]),
                            detail::to_float(row[3]), score, class_id});
    }
  });
  detail::finish_detections(candidates, geometry, options, detections);
}

}  // namespace detflow
