#include "detflow/post/decoders/yolov5.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "../decoder_support.h"
#include "detflow/error.h"

namespace detflow {

namespace {

constexpr std::string_view family_label = "yolov5 decoder";
constexpr std::size_t raw_head_anchors = 3;
// Decoded boxes that all fit in one pixel are no detector's output on an input this large,
// so values all in [0, 1] can only be the undecoded head. Smaller inputs are left to the
// configuration (DecoderConfig::boxes_decoded).
constexpr int min_input_side_for_value_check = 64;

// YOLOv5's default anchors (w,h pixels), smallest stride first: P5 models (strides
// 8/16/32) and P6 models (8/16/32/64), 3 per stride. Empty for other level counts.
const std::vector<float>& default_anchors(std::size_t levels) {
  static const std::vector<float> p5{10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326};
  static const std::vector<float> p6{19,  27,  44,  40,  38,  94,  96,  68,  86,  152, 180, 137,
                                     140, 301, 303, 264, 238, 542, 436, 615, 739, 380, 925, 792};
  static const std::vector<float> none;
  if (levels == 3) return p5;
  if (levels == 4) return p6;
  return none;
}

std::string number_text(float value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

std::string strides_text(const std::vector<int>& strides, char separator) {
  std::ostringstream text;
  for (std::size_t index = 0; index < strides.size(); ++index) {
    if (index > 0) text << separator;
    text << strides[index];
  }
  return text.str();
}

// "[10, 13, 16, 30]": the configured anchors as the user wrote them.
std::string anchors_list_text(const std::vector<float>& anchors) {
  std::ostringstream text;
  text << '[';
  for (std::size_t index = 0; index < anchors.size(); ++index) text << (index > 0 ? ", " : "") << anchors[index];
  text << ']';
  return text.str();
}

// Configured anchors must be positive w,h pairs; the per-level split is checked by the
// callers, which know the level count.
void check_anchor_values(const std::vector<float>& anchors) {
  if (anchors.size() % 2 != 0) {
    throw Error(std::string(family_label) + ": model.anchors " + anchors_list_text(anchors) + " has " +
                std::to_string(anchors.size()) + " numbers: expected w,h pairs (an even count)");
  }
  for (const float value : anchors) {
    if (!(value > 0.0f) || !std::isfinite(value)) {
      throw Error(std::string(family_label) + ": model.anchors " + anchors_list_text(anchors) + " holds " +
                  number_text(value) + ": expected positive sizes in input pixels");
    }
  }
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
  if (dims.size() == 4 && dims[0] == static_cast<std::int64_t>(raw_head_anchors)) {
    shape.channels_last = true;
    shape.grid_height = dims[1];
    shape.grid_width = dims[2];
    shape.channels = dims[3];
  } else if (dims.size() == 3 && dims[0] % static_cast<std::int64_t>(raw_head_anchors) == 0) {
    shape.channels_last = false;
    shape.channels = dims[0] / static_cast<std::int64_t>(raw_head_anchors);
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

// P5 models use strides 8/16/32; the P6 variants (yolov5n6 ...) add 64.
std::vector<std::vector<int>> candidate_stride_sets(const DecoderConfig& config) {
  if (!config.strides.empty()) return {config.strides};
  return {{8, 16, 32}, {8, 16, 32, 64}};
}

// How the rows of one [1, N, 5+C] output lie on the grid: N = A x cells of `strides`.
struct GridPlan {
  std::vector<int> strides;
  std::size_t anchors_per_cell = 0;
  std::vector<float> anchors;  // A w,h pairs per stride, smallest stride first
};

std::optional<GridPlan> plan_single_output(const DecoderContext& context, std::size_t rows, std::string& why_not) {
  why_not.clear();
  const std::vector<float>& configured = context.config.anchors;
  if (!configured.empty()) check_anchor_values(configured);
  for (const std::vector<int>& strides : candidate_stride_sets(context.config)) {
    const std::int64_t cells = detail::grid_cell_count(context.input_width, context.input_height, strides, false);
    const std::string where = "strides " + strides_text(strides, '/') + " at " + std::to_string(context.input_width) +
                              "x" + std::to_string(context.input_height);
    // A stride set that fits the rows explains more than one that does not: keep its reason.
    if (cells <= 0 || rows % static_cast<std::size_t>(cells) != 0) {
      if (!why_not.empty()) continue;
      why_not = std::to_string(rows) + " rows are not a whole number of anchors per grid cell (" + where + ": " +
                std::to_string(cells) + " cells)";
      continue;
    }
    GridPlan plan;
    plan.strides = strides;
    plan.anchors_per_cell = rows / static_cast<std::size_t>(cells);
    plan.anchors = configured.empty() ? default_anchors(strides.size()) : configured;
    const std::size_t pairs = plan.anchors.size() / 2;
    if (configured.empty() && plan.anchors.empty()) {
      why_not = "YOLOv5 has no default anchors for " + std::to_string(strides.size()) + " strides (" + where +
                "): set model.anchors";
      continue;
    }
    if (pairs % strides.size() != 0 || pairs / strides.size() != plan.anchors_per_cell) {
      why_not = std::to_string(rows) + " rows are " + std::to_string(plan.anchors_per_cell) + " anchors per cell (" +
                where + ") but " + (configured.empty() ? "YOLOv5's default anchors" : "model.anchors") + " " +
                anchors_list_text(plan.anchors) + " give " + std::to_string(pairs) + " w,h pairs: expected " +
                std::to_string(plan.anchors_per_cell * strides.size()) + " (" + std::to_string(plan.anchors_per_cell) +
                " per stride)";
      continue;
    }
    return plan;
  }
  return std::nullopt;
}

// One level's rows through YOLOv5's Detect.forward box decode, for each (anchor, cell)
// whose score passes. `Logits`: the values still need the sigmoid (raw heads); otherwise
// the graph applied it (undecoded single output). Channel k of (anchor, cell) sits at
// base + k * step in either tensor layout.
template <bool Logits, typename Element, typename LevelType>
void decode_level(const Element* data, const LevelType& level, std::size_t classes, const detail::ClassGate& gate,
                  std::vector<detail::Candidate>& candidates) {
  const auto activate = [](float value) {
    if constexpr (Logits) {
      return detail::sigmoid(value);
    } else {
      return value;
    }
  };
  const std::size_t channels = classes + 5;
  const auto cells = static_cast<std::size_t>(level.grid_width) * static_cast<std::size_t>(level.grid_height);
  const std::size_t step = level.channels_last ? 1 : cells;
  const auto stride = static_cast<float>(level.stride);
  // sig(obj) x sig(class) < threshold whenever sig(obj) is: compare before the sigmoid.
  const float minimum = Logits ? detail::logit(gate.minimum()) : gate.minimum();
  const std::size_t anchors = level.anchor_sizes.size() / 2;
  for (std::size_t anchor = 0; anchor < anchors; ++anchor) {
    const float anchor_width = level.anchor_sizes[2 * anchor];
    const float anchor_height = level.anchor_sizes[2 * anchor + 1];
    for (std::size_t cell = 0; cell < cells; ++cell) {
      const std::size_t base =
          level.channels_last ? (anchor * cells + cell) * channels : anchor * channels * cells + cell;
      const float objectness = detail::to_float(data[base + 4 * step]);
      if (objectness < minimum) continue;
      const auto [best_value, best_class] = detail::best_class(data + base + 5 * step, classes, step);
      const float score = activate(objectness) * activate(best_value);
      if (!gate.passes(best_class, score)) continue;
      const auto grid_x = static_cast<float>(cell % static_cast<std::size_t>(level.grid_width));
      const auto grid_y = static_cast<float>(cell / static_cast<std::size_t>(level.grid_width));
      const float cx = (2.0f * activate(detail::to_float(data[base])) - 0.5f + grid_x) * stride;
      const float cy = (2.0f * activate(detail::to_float(data[base + step])) - 0.5f + grid_y) * stride;
      const float width_factor = 2.0f * activate(detail::to_float(data[base + 2 * step]));
      const float height_factor = 2.0f * activate(detail::to_float(data[base + 3 * step]));
      const float half_w = width_factor * width_factor * anchor_width * 0.5f;
      const float half_h = height_factor * height_factor * anchor_height * 0.5f;
      candidates.push_back({cx - half_w, cy - half_h, cx + half_w, cy + half_h, score, best_class});
    }
  }
}

}  // namespace

Yolov5Decoder::Yolov5Decoder(const DecoderContext& context)
    : input_width_(context.input_width), input_height_(context.input_height) {
  for (const TensorInfo& output : context.outputs) detail::require_float_output(output, family_label);
  const std::optional<bool>& forced_decoded = context.config.boxes_decoded;
  if (is_raw_layout(context)) {
    single_output_ = false;
    if (forced_decoded.value_or(false)) {
      throw Error(std::string(family_label) + ": model.head decoded does not fit three raw head outputs " +
                  outputs_text(context) + ": expected auto or raw");
    }
    if (context.input_height <= 0) {
      throw Error(std::string(family_label) + ": input height " + std::to_string(context.input_height) +
                  " is invalid: raw heads need the input size to find their strides");
    }
    for (std::size_t index = 0; index < context.outputs.size(); ++index) {
      const RawHeadShape shape = read_raw_head(context.outputs[index]);
      Level level;
      level.output_index = index;
      level.channels_last = shape.channels_last;
      level.grid_width = static_cast<int>(shape.grid_width);
      level.grid_height = static_cast<int>(shape.grid_height);
      level.stride = context.input_height / level.grid_height;
      if (level.stride * level.grid_height != context.input_height) {
        throw Error(std::string(family_label) + ": head " + detail::shape_text(context.outputs[index]) +
                    " has a grid height that does not divide the input height " + std::to_string(context.input_height));
      }
      const int classes = static_cast<int>(shape.channels) - 5;
      if (num_classes_ != 0 && classes != num_classes_) {
        throw Error(std::string(family_label) + ": heads " + outputs_text(context) +
                    " disagree on the class count: expected 3 heads of 5+C channels");
      }
      num_classes_ = classes;
      levels_.push_back(level);
    }
    std::sort(levels_.begin(), levels_.end(), [](const Level& a, const Level& b) { return a.stride < b.stride; });
    const std::vector<float>& configured = context.config.anchors;
    if (!configured.empty()) check_anchor_values(configured);
    const std::vector<float>& anchors = configured.empty() ? default_anchors(levels_.size()) : configured;
    const std::size_t values_per_level = 2 * raw_head_anchors;
    if (anchors.size() != values_per_level * levels_.size()) {
      throw Error(std::string(family_label) + ": model.anchors " + anchors_list_text(anchors) + " has " +
                  std::to_string(anchors.size()) + " numbers for 3 raw heads: expected 3 w,h pairs per head (" +
                  std::to_string(values_per_level * levels_.size()) + " numbers)");
    }
    for (std::size_t level = 0; level < levels_.size(); ++level) {
      levels_[level].anchor_sizes.assign(anchors.begin() + static_cast<std::ptrdiff_t>(level * values_per_level),
                                         anchors.begin() + static_cast<std::ptrdiff_t>((level + 1) * values_per_level));
    }
    head_state_.store(HeadState::grid);
  } else {
    const auto dims = context.outputs.empty() ? std::vector<std::int64_t>{} : detail::layout_dims(context.outputs[0]);
    if (context.outputs.size() != 1 || dims.size() != 2 || !detail::is_fixed(dims) || dims[1] < 6) {
      throw Error(std::string(family_label) + ": outputs " + outputs_text(context) +
                  " do not fit: expected one [1, N, 5+C] or three raw heads [1, 3, H/s, W/s, 5+C]");
    }
    rows_ = static_cast<std::size_t>(dims[0]);
    num_classes_ = static_cast<int>(dims[1]) - 5;

    std::string why_not;
    const std::optional<GridPlan> plan = plan_single_output(context, rows_, why_not);
    if (plan) {
      std::size_t first_row = 0;
      const std::size_t values_per_level = 2 * plan->anchors_per_cell;
      for (std::size_t index = 0; index < plan->strides.size(); ++index) {
        Level level;
        level.stride = plan->strides[index];
        level.grid_width = context.input_width / level.stride;
        level.grid_height = context.input_height / level.stride;
        level.first_row = first_row;
        level.anchor_sizes.assign(plan->anchors.begin() + static_cast<std::ptrdiff_t>(index * values_per_level),
                                  plan->anchors.begin() + static_cast<std::ptrdiff_t>((index + 1) * values_per_level));
        first_row += plan->anchors_per_cell * static_cast<std::size_t>(level.grid_width) *
                     static_cast<std::size_t>(level.grid_height);
        levels_.push_back(std::move(level));
      }
    }
    if (forced_decoded.has_value()) {
      if (!*forced_decoded && !plan) {
        throw Error(std::string(family_label) + ": model.head raw needs the grid of output " +
                    detail::shape_text(context.outputs[0]) + ", but " + why_not);
      }
      head_state_.store(*forced_decoded ? HeadState::pixels : HeadState::grid);
    } else if (!plan) {
      // Configured anchors that fit nothing are a configuration mistake, not a decoded head.
      if (!context.config.anchors.empty()) {
        throw Error(std::string(family_label) + ": model.anchors do not fit output " +
                    detail::shape_text(context.outputs[0]) + ": " + why_not);
      }
      head_state_.store(HeadState::pixels);
    } else if (std::min(context.input_width, context.input_height) < min_input_side_for_value_check) {
      head_state_.store(HeadState::pixels);
    }
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
  for (const std::vector<int>& strides : candidate_stride_sets(context.config)) {
    const std::int64_t cells = detail::grid_cell_count(context.input_width, context.input_height, strides, false);
    // Configured anchors say how many boxes a cell has; YOLOv5 itself always uses 3.
    const std::size_t configured_pairs = context.config.anchors.size() / 2;
    const std::int64_t per_cell = configured_pairs > 0 && configured_pairs % strides.size() == 0
                                      ? static_cast<std::int64_t>(configured_pairs / strides.size())
                                      : static_cast<std::int64_t>(raw_head_anchors);
    if (cells == 0 || dims[0] != per_cell * cells) continue;
    return "one output " + detail::shape_text(context.outputs[0]) + ": " + std::to_string(dims[0]) +
           " rows = " + std::to_string(per_cell) + " anchors x " + std::to_string(cells) + " grid cells (strides " +
           strides_text(strides, '/') + "), 5 + " + std::to_string(dims[1] - 5) +
           " columns with objectness (YOLOv5 layout)";
  }
  return std::nullopt;
}

std::optional<bool> Yolov5Decoder::boxes_decoded() const {
  switch (head_state_.load(std::memory_order_acquire)) {
    case HeadState::pixels:
      return true;
    case HeadState::grid:
      return false;
    case HeadState::undecided:
      break;
  }
  return std::nullopt;
}

std::string Yolov5Decoder::grid_text() const {
  std::vector<int> strides;
  for (const Level& level : levels_) strides.push_back(level.stride);
  const std::size_t per_cell = levels_.empty() ? 0 : levels_.front().anchor_sizes.size() / 2;
  std::ostringstream text;
  text << "strides " << strides_text(strides, ',') << ", " << per_cell << " anchors per cell";
  for (std::size_t index = 0; index < levels_.size(); ++index) {
    text << (index == 0 ? ": " : "; ");
    const std::vector<float>& sizes = levels_[index].anchor_sizes;
    for (std::size_t pair = 0; pair + 1 < sizes.size(); pair += 2) {
      text << (pair > 0 ? " " : "") << sizes[pair] << ',' << sizes[pair + 1];
    }
  }
  return text.str();
}

Yolov5Decoder::HeadState Yolov5Decoder::decide_head(const Tensor& output) const {
  const std::lock_guard lock(decision_mutex_);
  HeadState state = head_state_.load(std::memory_order_acquire);
  if (state != HeadState::undecided) return state;  // another thread decided meanwhile
  const std::size_t columns = static_cast<std::size_t>(num_classes_) + 5;
  // The first box value outside [0, 1] (NaN included), if any: one is enough for pixels.
  std::optional<std::pair<std::size_t, float>> outside;
  detail::with_float_data(output, rows_ * columns, family_label, [&](const auto* data) {
    for (std::size_t row = 0; row < rows_ && !outside; ++row) {
      for (std::size_t column = 0; column < 4; ++column) {
        const float value = detail::to_float(data[row * columns + column]);
        if (!(value >= 0.0f && value <= 1.0f)) {
          outside = std::pair{row, value};
          break;
        }
      }
    }
  });
  if (outside) {
    spdlog::info("yolov5: output box value {} (row {}) with a {}x{} input: boxes already decoded to input pixels",
                 outside->second, outside->first, input_width_, input_height_);
    state = HeadState::pixels;
  } else {
    spdlog::info(
        "yolov5: output values of the box columns all in [0, 1] with a {}x{} input: decoding grid and "
        "anchors ({}); set model.head to decoded or raw to skip this check",
        input_width_, input_height_, grid_text());
    state = HeadState::grid;
  }
  head_state_.store(state, std::memory_order_release);
  return state;
}

void Yolov5Decoder::decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
                           std::vector<Detection>& detections) const {
  std::vector<detail::Candidate>& candidates = detail::candidate_scratch();
  candidates.clear();
  const detail::ClassGate gate(options, num_classes_);
  const auto classes = static_cast<std::size_t>(num_classes_);
  const std::size_t columns = classes + 5;
  if (!single_output_) {
    detail::expect_output_count(outputs, levels_.size(), family_label);
    for (const Level& level : levels_) {
      const std::size_t expected = level.anchor_sizes.size() / 2 * static_cast<std::size_t>(level.grid_width) *
                                   static_cast<std::size_t>(level.grid_height) * columns;
      detail::with_float_data(outputs[level.output_index], expected, family_label,
                              [&](const auto* data) { decode_level<true>(data, level, classes, gate, candidates); });
    }
  } else {
    detail::expect_output_count(outputs, 1, family_label);
    HeadState state = head_state_.load(std::memory_order_acquire);
    if (state == HeadState::undecided) state = decide_head(outputs[0]);
    detail::with_float_data(outputs[0], rows_ * columns, family_label, [&](const auto* data) {
      if (state == HeadState::grid) {
        for (const Level& level : levels_) {
          decode_level<false>(data + level.first_row * columns, level, classes, gate, candidates);
        }
        return;
      }
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
  detail::finish_detections(candidates, geometry, options, detections);
}

}  // namespace detflow
