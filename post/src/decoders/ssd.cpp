#include "detflow/post/decoders/ssd.h"

#include <algorithm>
#include <cmath>

#include "../decoder_support.h"
#include "detflow/error.h"

namespace detflow {

namespace {

constexpr std::string_view family_label = "ssd decoder";

double layer_scale(double min_scale, double max_scale, std::size_t stride_index, std::size_t stride_count) {
  if (stride_count == 1) return (min_scale + max_scale) * 0.5;
  return min_scale +
         (max_scale - min_scale) * static_cast<double>(stride_index) / (static_cast<double>(stride_count) - 1.0);
}

struct SsdOutputs {
  std::size_t box_output = 0;
  std::size_t score_output = 1;
  std::int64_t anchors = 0;
  std::int64_t box_columns = 0;
  std::int64_t classes = 0;
};

// Two [A, X] tensors with the same A; the wider one (at least 4 columns) holds the boxes.
std::optional<SsdOutputs> read_outputs(const DecoderContext& context) {
  if (context.outputs.size() != 2) return std::nullopt;
  const auto first = detail::layout_dims(context.outputs[0]);
  const auto second = detail::layout_dims(context.outputs[1]);
  if (first.size() != 2 || second.size() != 2 || !detail::is_fixed(first) || !detail::is_fixed(second) ||
      first[0] != second[0] || first[1] == second[1]) {
    return std::nullopt;
  }
  SsdOutputs outputs;
  const bool first_is_box = first[1] > second[1];
  outputs.box_output = first_is_box ? 0 : 1;
  outputs.score_output = first_is_box ? 1 : 0;
  outputs.anchors = first[0];
  outputs.box_columns = std::max(first[1], second[1]);
  outputs.classes = std::min(first[1], second[1]);
  if (outputs.box_columns < 4) return std::nullopt;
  return outputs;
}

}  // namespace

std::vector<SsdDecoder::Anchor> SsdDecoder::generate_anchors(const DecoderConfig::Ssd& options, int input_width,
                                                             int input_height) {
  const std::size_t stride_count = options.strides.size();
  if (input_width <= 0 || input_height <= 0 || options.num_layers <= 0 ||
      static_cast<std::size_t>(options.num_layers) != stride_count || options.aspect_ratios.empty() ||
      std::any_of(options.strides.begin(), options.strides.end(), [](int stride) { return stride <= 0; })) {
    throw Error(std::string(family_label) + ": SSD anchor options (num_layers " + std::to_string(options.num_layers) +
                ", " + std::to_string(stride_count) + " strides, input " + std::to_string(input_width) + "x" +
                std::to_string(input_height) +
                ") are inconsistent: expected one positive stride per layer, aspect ratios and a positive input size");
  }
  std::vector<Anchor> anchors;
  std::size_t layer = 0;
  while (layer < stride_count) {
    std::vector<double> aspect_ratios;
    std::vector<double> scales;
    // Consecutive layers with the same stride share one feature map; their anchors are
    // interleaved per cell, in layer order.
    std::size_t last_same_stride = layer;
    while (last_same_stride < stride_count && options.strides[last_same_stride] == options.strides[layer]) {
      const double scale = layer_scale(options.min_scale, options.max_scale, last_same_stride, stride_count);
      if (last_same_stride == 0 && options.reduce_boxes_in_lowest_layer) {
        aspect_ratios.insert(aspect_ratios.end(), {1.0, 2.0, 0.5});
        scales.insert(scales.end(), {0.1, scale, scale});
      } else {
        for (const double aspect_ratio : options.aspect_ratios) {
          aspect_ratios.push_back(aspect_ratio);
          scales.push_back(scale);
        }
        if (options.interpolated_scale_aspect_ratio > 0.0) {
          const double next_scale =
              last_same_stride == stride_count - 1
                  ? 1.0
                  : layer_scale(options.min_scale, options.max_scale, last_same_stride + 1, stride_count);
          scales.push_back(std::sqrt(scale * next_scale));
          aspect_ratios.push_back(options.interpolated_scale_aspect_ratio);
        }
      }
      ++last_same_stride;
    }
    const int stride = options.strides[layer];
    const int feature_width = static_cast<int>(std::ceil(static_cast<double>(input_width) / stride));
    const int feature_height = static_cast<int>(std::ceil(static_cast<double>(input_height) / stride));
    for (int y = 0; y < feature_height; ++y) {
      for (int x = 0; x < feature_width; ++x) {
        for (std::size_t index = 0; index < aspect_ratios.size(); ++index) {
          Anchor anchor;
          anchor.x_center = static_cast<float>((x + options.anchor_offset_x) / feature_width);
          anchor.y_center = static_cast<float>((y + options.anchor_offset_y) / feature_height);
          if (options.fixed_anchor_size) {
            anchor.width = 1.0f;
            anchor.height = 1.0f;
          } else {
            const double ratio_root = std::sqrt(aspect_ratios[index]);
            anchor.width = static_cast<float>(scales[index] * ratio_root);
            anchor.height = static_cast<float>(scales[index] / ratio_root);
          }
          anchors.push_back(anchor);
        }
      }
    }
    layer = last_same_stride;
  }
  return anchors;
}

SsdDecoder::SsdDecoder(const DecoderContext& context)
    : input_width_(context.input_width), input_height_(context.input_height), options_(context.config.ssd) {
  const auto outputs = read_outputs(context);
  if (!outputs) {
    std::string shapes;
    for (const TensorInfo& info : context.outputs) shapes += (shapes.empty() ? "" : ", ") + detail::shape_text(info);
    throw Error(std::string(family_label) + ": outputs " + (shapes.empty() ? "(none)" : shapes) +
                " do not fit: expected boxes [1, A, 4+2K] and scores [1, A, C] over the same A anchors");
  }
  for (const TensorInfo& output : context.outputs) detail::require_float_output(output, family_label);
  anchors_ = generate_anchors(options_, input_width_, input_height_);
  if (static_cast<std::int64_t>(anchors_.size()) != outputs->anchors) {
    throw Error(std::string(family_label) + ": the SSD anchor options give " + std::to_string(anchors_.size()) +
                " anchors at input " + std::to_string(input_width_) + "x" + std::to_string(input_height_) +
                " but the outputs have " + std::to_string(outputs->anchors) +
                ": set the model's anchor options (strides, num_layers, aspect ratios)");
  }
  box_output_ = outputs->box_output;
  score_output_ = outputs->score_output;
  box_columns_ = static_cast<std::size_t>(outputs->box_columns);
  num_classes_ = static_cast<int>(outputs->classes);
  if (context.config.num_classes > 0 && context.config.num_classes != num_classes_) {
    throw Error(std::string(family_label) + ": num_classes " + std::to_string(context.config.num_classes) +
                " does not match the score tensor's " + std::to_string(num_classes_) + " columns");
  }
}

std::optional<std::string> SsdDecoder::match(const DecoderContext& context) {
  const auto outputs = read_outputs(context);
  if (!outputs || context.input_width <= 0 || context.input_height <= 0) return std::nullopt;
  std::size_t anchor_count = 0;
  try {
    anchor_count = generate_anchors(context.config.ssd, context.input_width, context.input_height).size();
  } catch (const Error&) {
    return std::nullopt;
  }
  if (static_cast<std::int64_t>(anchor_count) != outputs->anchors) return std::nullopt;
  return "two outputs " + detail::shape_text(context.outputs[outputs->box_output]) + " boxes and " +
         detail::shape_text(context.outputs[outputs->score_output]) + " scores over " + std::to_string(anchor_count) +
         " SSD anchors generated for " + std::to_string(context.input_width) + "x" +
         std::to_string(context.input_height) + " (MediaPipe/BlazeFace layout)";
}

void SsdDecoder::decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
                        std::vector<Detection>& detections) const {
  detail::expect_output_count(outputs, output_count_, family_label);
  const detail::ClassGate gate(options, num_classes_);
  std::vector<detail::Candidate>& candidates = detail::candidate_scratch();
  candidates.clear();
  const std::size_t anchor_count = anchors_.size();
  const auto classes = static_cast<std::size_t>(num_classes_);
  const auto clipping = static_cast<float>(options_.score_clipping);
  const auto x_scale = static_cast<float>(options_.x_scale), y_scale = static_cast<float>(options_.y_scale);
  const auto w_scale = static_cast<float>(options_.w_scale), h_scale = static_cast<float>(options_.h_scale);
  const auto input_width = static_cast<float>(input_width_), input_height = static_cast<float>(input_height_);
  const Tensor& box_tensor = outputs[box_output_];
  const Tensor& score_tensor = outputs[score_output_];
  detail::with_float_data(score_tensor, anchor_count * classes, family_label, [&](const auto* scores) {
    detail::with_float_data(box_tensor, anchor_count * box_columns_, family_label, [&](const auto* boxes) {
      for (std::size_t index = 0; index < anchor_count; ++index) {
        // Clipping and the sigmoid are monotonic: the best logit gives the best score.
        const auto* row = scores + index * classes;
        const auto [best, best_class] = detail::best_class(row, classes);
        float score = best;
        if (clipping > 0) score = std::clamp(score, -clipping, clipping);
        if (options_.apply_sigmoid) score = detail::sigmoid(score);
        if (!gate.passes(best_class, score)) continue;
        const Anchor& anchor = anchors_[index];
        const auto* box = boxes + index * box_columns_;
        const float x_center = detail::to_float(box[0]) / x_scale * anchor.width + anchor.x_center;
        const float y_center = detail::to_float(box[1]) / y_scale * anchor.height + anchor.y_center;
        const float half_w = detail::to_float(box[2]) / w_scale * anchor.width * 0.5f;
        const float half_h = detail::to_float(box[3]) / h_scale * anchor.height * 0.5f;
        candidates.push_back({(x_center - half_w) * input_width, (y_center - half_h) * input_height,
                              (x_center + half_w) * input_width, (y_center + half_h) * input_height, score,
                              best_class});
      }
    });
  });
  detail::finish_detections(candidates, geometry, options, detections);
}

}  // namespace detflow
