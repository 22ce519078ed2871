#include "detflow/post/decoders/yolox.h"

#include <cmath>

#include "../decoder_support.h"
#include "detflow/error.h"

namespace detflow {

namespace {

constexpr std::string_view family_label = "yolox decoder";

std::int64_t yolox_cells(const DecoderContext& context) {
  const std::vector<int> strides = detail::strides_or(context.config.strides, {8, 16, 32});
  return detail::grid_cell_count(context.input_width, context.input_height, strides, false);
}

}  // namespace

YoloxDecoder::YoloxDecoder(const DecoderContext& context) {
  const auto dims = context.outputs.empty() ? std::vector<std::int64_t>{} : detail::layout_dims(context.outputs[0]);
  if (dims.size() != 2 || !detail::is_fixed(dims) || dims[1] < 6) {
    throw Error(std::string(family_label) + ": output " +
                (context.outputs.empty() ? std::string("(none)") : detail::shape_text(context.outputs[0])) +
                " does not fit: expected [1, N, 5+C]");
  }
  detail::require_float_output(context.outputs[0], family_label);
  rows_ = static_cast<std::size_t>(dims[0]);
  num_classes_ = static_cast<int>(dims[1]) - 5;
  if (context.config.num_classes > 0 && context.config.num_classes != num_classes_) {
    throw Error(std::string(family_label) + ": num_classes " + std::to_string(context.config.num_classes) +
                " does not match output " + detail::shape_text(context.outputs[0]) + ": expected " +
                std::to_string(num_classes_));
  }
  const std::int64_t cells = yolox_cells(context);
  boxes_decoded_ = context.config.boxes_decoded.value_or(dims[0] != cells);
  if (boxes_decoded_) return;
  if (dims[0] != cells) {
    throw Error(std::string(family_label) + ": output " + detail::shape_text(context.outputs[0]) + " has " +
                std::to_string(dims[0]) + " rows but raw boxes need one per grid cell: expected " +
                std::to_string(cells) + " for input " + std::to_string(context.input_width) + "x" +
                std::to_string(context.input_height) + " (or set boxes_decoded)");
  }
  cells_.reserve(rows_);
  for (const int stride : detail::strides_or(context.config.strides, {8, 16, 32})) {
    const int columns = context.input_width / stride;
    const int rows = context.input_height / stride;
    for (int y = 0; y < rows; ++y) {
      for (int x = 0; x < columns; ++x) {
        cells_.push_back({static_cast<float>(x), static_cast<float>(y), static_cast<float>(stride)});
      }
    }
  }
}

std::optional<std::string> YoloxDecoder::match(const DecoderContext& context) {
  if (context.outputs.size() != 1) return std::nullopt;
  const auto dims = detail::layout_dims(context.outputs[0]);
  if (dims.size() != 2 || !detail::is_fixed(dims) || dims[1] < 6) return std::nullopt;
  const std::int64_t cells = yolox_cells(context);
  if (cells == 0 || dims[0] != cells) return std::nullopt;
  return "one output " + detail::shape_text(context.outputs[0]) + ": " + std::to_string(dims[0]) +
         " rows = one per grid cell of strides 8/16/32 at " + std::to_string(context.input_width) + "x" +
         std::to_string(context.input_height) + ", 5 + " + std::to_string(dims[1] - 5) +
         " columns with objectness (YOLOX layout)";
}

void YoloxDecoder::decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
                          std::vector<Detection>& detections) const {
  detail::expect_output_count(outputs, 1, family_label);
  const detail::ClassGate gate(options, num_classes_);
  std::vector<detail::Candidate>& candidates = detail::candidate_scratch();
  candidates.clear();
  const auto classes = static_cast<std::size_t>(num_classes_);
  const std::size_t columns = classes + 5;
  detail::with_float_data(outputs[0], rows_ * columns, family_label, [&](const auto* data) {
    const float minimum = gate.minimum();
    for (std::size_t row_index = 0; row_index < rows_; ++row_index) {
      const auto* row = data + row_index * columns;
      const float objectness = detail::to_float(row[4]);
      if (objectness < minimum) continue;  // class scores are at most 1
      const auto [best, best_class] = detail::best_class(row + 5, classes);
      const float score = objectness * best;
      if (!gate.passes(best_class, score)) continue;
      float cx = detail::to_float(row[0]);
      float cy = detail::to_float(row[1]);
      float width = detail::to_float(row[2]);
      float height = detail::to_float(row[3]);
      if (!boxes_decoded_) {
        const Cell& cell = cells_[row_index];
        cx = (cx + cell.x) * cell.stride;
        cy = (cy + cell.y) * cell.stride;
        width = std::exp(width) * cell.stride;
        height = std::exp(height) * cell.stride;
      }
      candidates.push_back(
          {cx - width * 0.5f, cy - height * 0.5f, cx + width * 0.5f, cy + height * 0.5f, score, best_class});
    }
  });
  detail::finish_detections(candidates, geometry, options, detections);
}

}  // namespace detflow
