#include "detflow/post/decoders/nanodet.h"

#include <algorithm>
#include <cmath>

#include "../decoder_support.h"
#include "detflow/error.h"

namespace detflow {

namespace {

constexpr std::string_view family_label = "nanodet decoder";
constexpr std::int64_t default_box_columns = 32;  // 4 sides x (reg_max 7 + 1) bins

std::int64_t cells_for(const DecoderContext& context, int stride) {
  const std::int64_t columns = (context.input_width + stride - 1) / stride;
  const std::int64_t rows = (context.input_height + stride - 1) / stride;
  return columns * rows;
}

// For NanoDet-m's separate heads: per stride, the (class, box) output indices, or nothing.
struct HeadPair {
  std::size_t class_output;
  std::size_t box_output;
};

std::optional<std::vector<HeadPair>> find_head_pairs(const DecoderContext& context, const std::vector<int>& strides) {
  if (context.outputs.size() != 2 * strides.size() || context.input_width <= 0 || context.input_height <= 0) {
    return std::nullopt;
  }
  std::vector<std::vector<std::int64_t>> dims;
  for (const TensorInfo& info : context.outputs) {
    dims.push_back(detail::layout_dims(info));
    if (dims.back().size() != 2 || !detail::is_fixed(dims.back())) return std::nullopt;
  }
  std::vector<HeadPair> pairs;
  for (const int stride : strides) {
    const std::int64_t cells = cells_for(context, stride);
    std::vector<std::size_t> candidates;
    for (std::size_t index = 0; index < dims.size(); ++index) {
      if (dims[index][0] == cells) candidates.push_back(index);
    }
    if (candidates.size() != 2) return std::nullopt;
    const std::size_t first = candidates[0];
    const std::size_t second = candidates[1];
    const std::int64_t first_columns = dims[first][1];
    const std::int64_t second_columns = dims[second][1];
    bool first_is_box = false;
    if (context.config.num_classes > 0 &&
        (first_columns == context.config.num_classes) != (second_columns == context.config.num_classes)) {
      first_is_box = second_columns == context.config.num_classes;
    } else if ((first_columns == default_box_columns) != (second_columns == default_box_columns)) {
      first_is_box = first_columns == default_box_columns;
    } else if ((first_columns % 4 == 0) != (second_columns % 4 == 0)) {
      first_is_box = first_columns % 4 == 0;
    }  // else: NanoDet exports the class tensor first
    pairs.push_back(first_is_box ? HeadPair{second, first} : HeadPair{first, second});
  }
  return pairs;
}

}  // namespace

NanodetDecoder::NanodetDecoder(const DecoderContext& context)
    : input_width_(context.input_width), input_height_(context.input_height) {
  for (const TensorInfo& output : context.outputs) detail::require_float_output(output, family_label);
  const std::vector<int> separate_strides = detail::strides_or(context.config.strides, {8, 16, 32});
  if (const auto pairs = find_head_pairs(context, separate_strides)) {
    single_output_ = false;
    cell_offset_ = static_cast<float>(context.config.cell_offset.value_or(0.5));
    output_count_ = context.outputs.size();
    output_elements_.resize(output_count_);
    for (std::size_t level = 0; level < pairs->size(); ++level) {
      const HeadPair& pair = (*pairs)[level];
      const auto class_dims = detail::layout_dims(context.outputs[pair.class_output]);
      const auto box_dims = detail::layout_dims(context.outputs[pair.box_output]);
      const auto classes = static_cast<int>(class_dims[1]);
      if (box_dims[1] % 4 != 0 || box_dims[1] < 8 ||
          (level > 0 && (classes != num_classes_ || box_dims[1] != 4 * bins_))) {
        throw Error(std::string(family_label) + ": head tensors " +
                    detail::shape_text(context.outputs[pair.class_output]) + " and " +
                    detail::shape_text(context.outputs[pair.box_output]) +
                    " do not fit: expected [N_s, C] class and [N_s, 4*(reg_max+1)] box tensors with the same C and "
                    "reg_max per stride");
      }
      num_classes_ = classes;
      bins_ = static_cast<int>(box_dims[1] / 4);
      const int stride = separate_strides[level];
      levels_.push_back({stride, (input_width_ + stride - 1) / stride, (input_height_ + stride - 1) / stride,
                         pair.class_output, pair.box_output, 0});
      output_elements_[pair.class_output] = detail::element_count(class_dims);
      output_elements_[pair.box_output] = detail::element_count(box_dims);
    }
  } else {
    const auto dims =
        context.outputs.size() == 1 ? detail::layout_dims(context.outputs[0]) : std::vector<std::int64_t>{};
    const std::vector<int> strides = detail::strides_or(context.config.strides, {8, 16, 32, 64});
    const std::int64_t cells = detail::grid_cell_count(input_width_, input_height_, strides, true);
    const std::int64_t box_columns =
        dims.size() == 2 && context.config.num_classes > 0 ? dims[1] - context.config.num_classes : default_box_columns;
    if (dims.size() != 2 || !detail::is_fixed(dims) || cells == 0 || dims[0] != cells || box_columns % 4 != 0 ||
        box_columns < 8 || dims[1] - box_columns < 1) {
      std::string shapes;
      for (const TensorInfo& info : context.outputs) shapes += (shapes.empty() ? "" : ", ") + detail::shape_text(info);
      throw Error(std::string(family_label) + ": outputs " + (shapes.empty() ? "(none)" : shapes) +
                  " do not fit: expected a [N_s, C] class and [N_s, 4*(reg_max+1)] box tensor per stride 8/16/32 "
                  "(N_s = ceil(H/s)*ceil(W/s)) or one NanoDet-Plus output [1, N, C + 4*(reg_max+1)]");
    }
    single_output_ = true;
    cell_offset_ = static_cast<float>(context.config.cell_offset.value_or(0.0));
    num_classes_ = static_cast<int>(dims[1] - box_columns);
    bins_ = static_cast<int>(box_columns / 4);
    output_count_ = 1;
    output_elements_ = {detail::element_count(dims)};
    std::size_t first_row = 0;
    for (const int stride : strides) {
      Level level{stride, (input_width_ + stride - 1) / stride, (input_height_ + stride - 1) / stride, 0, 0, first_row};
      first_row += static_cast<std::size_t>(level.grid_width) * static_cast<std::size_t>(level.grid_height);
      levels_.push_back(level);
    }
  }
  if (context.config.num_classes > 0 && context.config.num_classes != num_classes_) {
    throw Error(std::string(family_label) + ": num_classes " + std::to_string(context.config.num_classes) +
                " does not match the class tensors' " + std::to_string(num_classes_) + " columns");
  }
}

std::optional<std::string> NanodetDecoder::match(const DecoderContext& context) {
  const std::vector<int> separate_strides = detail::strides_or(context.config.strides, {8, 16, 32});
  if (const auto pairs = find_head_pairs(context, separate_strides)) {
    const auto class_dims = detail::layout_dims(context.outputs[(*pairs)[0].class_output]);
    const auto box_dims = detail::layout_dims(context.outputs[(*pairs)[0].box_output]);
    if (box_dims[1] % 4 != 0 || box_dims[1] < 8) return std::nullopt;
    return std::to_string(context.outputs.size()) +
           " outputs paired by shape: per stride 8/16/32 a class tensor [N_s, " + std::to_string(class_dims[1]) +
           "] and a box distribution tensor [N_s, " + std::to_string(box_dims[1]) + "] (reg_max " +
           std::to_string(box_dims[1] / 4 - 1) + "), N_s = " + std::to_string(cells_for(context, separate_strides[0])) +
           "... (NanoDet-m layout)";
  }
  if (context.outputs.size() != 1) return std::nullopt;
  const auto dims = detail::layout_dims(context.outputs[0]);
  const std::vector<int> strides = detail::strides_or(context.config.strides, {8, 16, 32, 64});
  const std::int64_t cells = detail::grid_cell_count(context.input_width, context.input_height, strides, true);
  if (dims.size() != 2 || !detail::is_fixed(dims) || cells == 0 || dims[0] != cells || dims[1] <= default_box_columns) {
    return std::nullopt;
  }
  return "one output " + detail::shape_text(context.outputs[0]) + ": " + std::to_string(cells) +
         " rows = grid cells of strides 8/16/32/64, " + std::to_string(dims[1] - default_box_columns) +
         " class + 32 distribution columns (NanoDet-Plus layout)";
}

void NanodetDecoder::decode(std::span<const Tensor> outputs, const Geometry& geometry,
                            const PostprocessOptions& options, std::vector<Detection>& detections) const {
  detail::expect_output_count(outputs, output_count_, family_label);
  const detail::ClassGate gate(options, num_classes_);
  std::vector<detail::Candidate>& candidates = detail::candidate_scratch();
  candidates.clear();
  const auto classes = static_cast<std::size_t>(num_classes_);
  const auto bins = static_cast<std::size_t>(bins_);
  const std::size_t class_row_width = single_output_ ? classes + 4 * bins : classes;
  const std::size_t box_row_width = single_output_ ? classes + 4 * bins : 4 * bins;
  const std::size_t box_column = single_output_ ? classes : 0;
  const float minimum = gate.minimum();
  const auto input_width = static_cast<float>(input_width_);
  const auto input_height = static_cast<float>(input_height_);

  for (const Level& level : levels_) {
    const Tensor& class_tensor = outputs[level.class_output];
    const Tensor& box_tensor = outputs[level.box_output];
    detail::with_float_data(class_tensor, output_elements_[level.class_output], family_label, [&](const auto* scores) {
      detail::with_float_data(box_tensor, output_elements_[level.box_output], family_label, [&](const auto* boxes) {
        const auto cells = static_cast<std::size_t>(level.grid_width) * static_cast<std::size_t>(level.grid_height);
        const auto stride = static_cast<float>(level.stride);
        for (std::size_t cell = 0; cell < cells; ++cell) {
          const auto* class_row = scores + (level.first_row + cell) * class_row_width;
          const auto [best, best_class] = detail::best_class(class_row, classes);
          if (best < minimum || !gate.passes(best_class, best)) continue;
          const auto* distribution = boxes + (level.first_row + cell) * box_row_width + box_column;
          float distances[4];
          for (std::size_t side = 0; side < 4; ++side) {
            const auto* logits = distribution + side * bins;
            float largest = detail::to_float(logits[0]);
            for (std::size_t bin = 1; bin < bins; ++bin) largest = std::max(largest, detail::to_float(logits[bin]));
            float total = 0.0f;
            float weighted = 0.0f;
            for (std::size_t bin = 0; bin < bins; ++bin) {
              const float weight = std::exp(detail::to_float(logits[bin]) - largest);
              total += weight;
              weighted += weight * static_cast<float>(bin);
            }
            distances[side] = weighted / total * stride;
          }
          const float cx =
              (static_cast<float>(cell % static_cast<std::size_t>(level.grid_width)) + cell_offset_) * stride;
          const float cy =
              (static_cast<float>(cell / static_cast<std::size_t>(level.grid_width)) + cell_offset_) * stride;
          candidates.push_back({std::max(cx - distances[0], 0.0f), std::max(cy - distances[1], 0.0f),
                                std::min(cx + distances[2], input_width), std::min(cy + distances[3], input_height),
                                best, best_class});
        }
      });
    });
  }
  detail::finish_detections(candidates, geometry, options, detections);
}

}  // namespace detflow
