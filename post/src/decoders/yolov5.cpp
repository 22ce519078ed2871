#include "detflow/post/decoders/yolov5.h"

#include <algorithm>

#include "../decoder_support.h"
#include "detflow/error.h"

namespace detflow {

namespace {

constexpr std::string_view family_label = "yolov5 decoder";
constexpr int anchors_per_cell = 3;

// YOLOv5's default anchors (w,h pixels) for strides 8, 16 and 32.
const std::vector<std::vector<float>>& default_anchors() {
  static const std::vector<std::vector<float>> anchors{
      {10, 13, 16, 30, 33, 23}, {30, 61, 62, 45, 59, 119}, {116, 90, 156, 198, 373, 326}};
  return anchors;
}

struct RawHeadShape {
  bool valid = false;
  bool channels_last = true;
  std::int64_t grid_height = 0;
  std::int64_t grid_width = 0;
  std::int64_t channels = 0;  // 5 + C
};

// [3, H, W, 5+C] or [3*(5+C), H, W] after dropping the batch dim.
RawHeadShape read_raw_head(const TensorInfo& info) {
  const auto dims = detail::layout_dims(info);
  if (!detail::is_fixed(dims)) return {};
  RawHeadShape shape;
  if (dims.size() == 4 && dims[0] == anchors_per_cell) {
    shape.channels_last = true;
    shape.grid_height = dims[1];
    shape.grid_width = dims[2];
    shape.channels = dims[3];
  } else if (dims.size() == 3 && dims[0] % anchors_per_cell == 0) {
    shape.channels_last = false;
    shape.channels = dims[0] / anchors_per_cell;
    shape.grid_height = dims[1];
    shape.grid_width = dims[2];
  } else {
    return {};
  }
  shape.valid = shape.channels >= 6;
  return shape;
}

bool is_raw_layout(const DecoderContext& context) {
  return context.outputs.size() == 3 && std::all_of(context.outputs.begin(), context.outputs.end(),
                                                    [](const TensorInfo& info) { return read_raw_head(info).valid; });
}

std::string outputs_text(const DecoderContext& context) {
  std::string text;
  for (const TensorInfo& info : context.outputs) text += (text.empty() ? "" : ", ") + detail::shape_text(info);
  return text.empty() ? "(none)" : text;
}

}  // namespace

Yolov5Decoder::Yolov5Decoder(const DecoderContext& context) {
  for (const TensorInfo& output : context.outputs) detail::require_float_output(output, family_label);
  if (is_raw_layout(context)) {
    if (context.input_height <= 0) {
      throw Error(std::string(family_label) + ": input height " + std::to_string(context.input_height) +
                  " is invalid: raw heads need the input size to find their strides");
    }
    for (std::size_t index = 0; index < context.outputs.size(); ++index) {
      const RawHeadShape shape = read_raw_head(context.outputs[index]);
      Head head;
      head.output_index = index;
      head.channels_last = shape.channels_last;
      head.grid_width = static_cast<int>(shape.grid_width);
      head.grid_height = static_cast<int>(shape.grid_height);
      head.stride = context.input_height / head.grid_height;
      if (head.stride * head.grid_height != context.input_height) {
        throw Error(std::string(family_label) + ": head " + detail::shape_text(context.outputs[index]) +
                    " has a grid height that does not divide the input height " + std::to_string(context.input_height));
      }
      const int classes = static_cast<int>(shape.channels) - 5;
      if (num_classes_ != 0 && classes != num_classes_) {
        throw Error(std::string(family_label) + ": heads " + outputs_text(context) +
                    " disagree on the class count: expected 3 heads of 5+C channels");
      }
      num_classes_ = classes;
      heads_.push_back(head);
    }
    std::sort(heads_.begin(), heads_.end(), [](const Head& a, const Head& b) { return a.stride < b.stride; });
    const auto& anchors = context.config.anchors.empty() ? default_anchors() : context.config.anchors;
    if (anchors.size() != heads_.size()) {
      throw Error(std::string(family_label) + ": " + std::to_string(anchors.size()) +
                  " anchor sets configured for 3 heads: expected one set of 3 w,h pairs per stride");
    }
    for (std::size_t level = 0; level < heads_.size(); ++level) {
      if (anchors[level].size() != 2 * anchors_per_cell) {
        throw Error(std::string(family_label) + ": anchor set " + std::to_string(level) + " has " +
                    std::to_string(anchors[level].size()) + " values: expected 3 w,h pairs (6 values)");
      }
      heads_[level].anchor_sizes = anchors[level];
    }
  } else {
    const auto dims = context.outputs.empty() ? std::vector<std::int64_t>{} : detail::layout_dims(context.outputs[0]);
    if (context.outputs.size() != 1 || dims.size() != 2 || !detail::is_fixed(dims) || dims[1] < 6) {
      throw Error(std::string(family_label) + ": outputs " + outputs_text(context) +
                  " do not fit: expected one [1, N, 5+C] or three raw heads [1, 3, H/s, W/s, 5+C]");
    }
    rows_ = static_cast<std::size_t>(dims[0]);
    num_classes_ = static_cast<int>(dims[1]) - 5;
  }
  if (context.config.num_classes > 0 && context.config.num_classes != num_classes_) {
    throw Error(std::string(family_label) + ": num_classes " + std::to_string(context.config.num_classes) +
                " does not match outputs " + outputs_text(context) + ": expected " + std::to_string(num_classes_));
  }
}

std::optional<std::string> Yolov5Decoder::match(const DecoderContext& context) {
  if (is_raw_layout(context)) {
    const RawHeadShape shape = read_raw_head(context.outputs[0]);
    return "three outputs " + outputs_text(context) + ": raw YOLOv5 heads, 3 anchors x (5 + " +
           std::to_string(shape.channels - 5) + ") channels per grid cell";
  }
  if (context.outputs.size() != 1) return std::nullopt;
  const auto dims = detail::layout_dims(context.outputs[0]);
  if (dims.size() != 2 || !detail::is_fixed(dims) || dims[1] < 6 || dims[0] <= dims[1]) return std::nullopt;
  // P5 models use strides 8/16/32; the P6 variants (yolov5n6 ...) add 64.
  const std::vector<std::vector<int>> stride_sets = context.config.strides.empty()
                                                        ? std::vector<std::vector<int>>{{8, 16, 32}, {8, 16, 32, 64}}
                                                        : std::vector<std::vector<int>>{context.config.strides};
  for (const std::vector<int>& strides : stride_sets) {
    const std::int64_t cells = detail::grid_cell_count(context.input_width, context.input_height, strides, false);
    if (cells == 0 || dims[0] != anchors_per_cell * cells) continue;
    std::string stride_text;
    for (const int stride : strides) {
      if (!stride_text.empty()) stride_text += '/';
      stride_text += std::to_string(stride);
    }
    return "one output " + detail::shape_text(context.outputs[0]) + ": " + std::to_string(dims[0]) +
           " rows = 3 anchors x " + std::to_string(cells) + " grid cells (strides " + stride_text + "), 5 + " +
           std::to_string(dims[1] - 5) + " columns with objectness (YOLOv5 layout)";
  }
  return std::nullopt;
}

void Yolov5Decoder::decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
                           std::vector<Detection>& detections) const {
  detail::candidate_scratch().clear();
  if (!heads_.empty()) {
    decode_raw(outputs, options);
  } else {
    detail::expect_output_count(outputs, 1, family_label);
    const detail::ClassGate gate(options, num_classes_);
    std::vector<detail::Candidate>& candidates = detail::candidate_scratch();
    const auto classes = static_cast<std::size_t>(num_classes_);
    const std::size_t columns = classes + 5;
    detail::with_float_data(outputs[0], rows_ * columns, family_label, [&](const auto* data) {
      const float minimum = gate.minimum();
      for (std::size_t row_index = 0; row_index < rows_; ++row_index) {
        const auto* row = data + row_index * columns;
        // Class scores are at most 1, so obj x class < threshold whenever obj is.
        const float objectness = detail::to_float(row[4]);
        if (objectness < minimum) continue;
        const auto [best, best_class] = detail::best_class(row + 5, classes);
        const float score = objectness * best;
        if (!gate.passes(best_class, score)) continue;
        const float cx = detail::to_float(row[0]), cy = detail::to_float(row[1]);
        const float half_w = detail::to_float(row[2]) * 0.5f, half_h = detail::to_float(row[3]) * 0.5f;
        candidates.push_back({cx - half_w, cy - half_h, cx + half_w, cy + half_h, score, best_class});
      }
    });
  }
  detail::finish_detections(detail::candidate_scratch(), geometry, options, detections);
}

void Yolov5Decoder::decode_raw(std::span<const Tensor> outputs, const PostprocessOptions& options) const {
  detail::expect_output_count(outputs, 3, family_label);
  const detail::ClassGate gate(options, num_classes_);
  std::vector<detail::Candidate>& candidates = detail::candidate_scratch();
  const float minimum_logit = detail::logit(gate.minimum());
  const auto classes = static_cast<std::size_t>(num_classes_);
  const std::size_t channels = classes + 5;
  for (const Head& head : heads_) {
    const auto cells = static_cast<std::size_t>(head.grid_width) * static_cast<std::size_t>(head.grid_height);
    const std::size_t expected = anchors_per_cell * cells * channels;
    detail::with_float_data(outputs[head.output_index], expected, family_label, [&](const auto* data) {
      // Channel k of (anchor, cell) sits at base + k * step in either layout.
      const std::size_t step = head.channels_last ? 1 : cells;
      const auto stride = static_cast<float>(head.stride);
      for (std::size_t anchor = 0; anchor < anchors_per_cell; ++anchor) {
        const float anchor_width = head.anchor_sizes[2 * anchor];
        const float anchor_height = head.anchor_sizes[2 * anchor + 1];
        for (std::size_t cell = 0; cell < cells; ++cell) {
          const std::size_t base =
              head.channels_last ? (anchor * cells + cell) * channels : anchor * channels * cells + cell;
          // sigmoid(obj) x sigmoid(class) < threshold whenever sigmoid(obj) is: compare logits.
          const float objectness_logit = detail::to_float(data[base + 4 * step]);
          if (objectness_logit < minimum_logit) continue;
          const auto [best_logit, best_class] = detail::best_class(data + base + 5 * step, classes, step);
          const float score = detail::sigmoid(objectness_logit) * detail::sigmoid(best_logit);
          if (!gate.passes(best_class, score)) continue;
          const auto grid_x = static_cast<float>(cell % static_cast<std::size_t>(head.grid_width));
          const auto grid_y = static_cast<float>(cell / static_cast<std::size_t>(head.grid_width));
          const float cx = (2.0f * detail::sigmoid(detail::to_float(data[base])) - 0.5f + grid_x) * stride;
          const float cy = (2.0f * detail::sigmoid(detail::to_float(data[base + step])) - 0.5f + grid_y) * stride;
          const float width_factor = 2.0f * detail::sigmoid(detail::to_float(data[base + 2 * step]));
          const float height_factor = 2.0f * detail::sigmoid(detail::to_float(data[base + 3 * step]));
          const float half_w = width_factor * width_factor * anchor_width * 0.5f;
          const float half_h = height_factor * height_factor * anchor_height * 0.5f;
          candidates.push_back({cx - half_w, cy - half_h, cx + half_w, cy + half_h, score, best_class});
        }
      }
    });
  }
}

}  // namespace detflow
