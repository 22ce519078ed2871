#include "detflow/post/output_sanity.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <sstream>

namespace detflow {

namespace {

std::string number_text(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

std::string output_name(const Tensor& tensor, std::size_t index) {
  return tensor.name.empty() ? "output " + std::to_string(index) : "'" + tensor.name + "'";
}

bool is_float(const Tensor& tensor) {
  return tensor.type() == ElementType::float32 || tensor.type() == ElementType::float16;
}

float element(const Tensor& tensor, std::size_t index) {
  return tensor.type() == ElementType::float16 ? half_to_float(tensor.data<std::uint16_t>()[index])
                                               : tensor.data<float>()[index];
}

// Operators that put integers between the weights and the outputs.
bool has_quantisation(const ModelInfo& model) {
  return std::any_of(model.operator_histogram.begin(), model.operator_histogram.end(), [](const auto& entry) {
    const std::string& op = entry.first;
    return op.find("QuantizeLinear") != std::string::npos || op.find("DequantizeLinear") != std::string::npos ||
           op.find("QLinear") != std::string::npos || op.find("QGemm") != std::string::npos;
  });
}

// The spacing of a dequantised output's values: the smallest gap between distinct values
// of an evenly spread sample. Dequantised values are (q - zero_point) x scale, so every gap
// is a multiple of the scale and the smallest one found is the scale itself.
struct ValueSteps {
  std::size_t distinct = 0;
  float step = 0.0f;  // 0 when fewer than two distinct values
};

ValueSteps value_steps(const Tensor& tensor) {
  constexpr std::size_t sample_size = 65536;
  const std::size_t count = tensor.element_count();
  const std::size_t stride = std::max<std::size_t>(1, count / sample_size);
  std::vector<float> sample;
  sample.reserve(std::min(count, sample_size + 1));
  for (std::size_t index = 0; index < count; index += stride) {
    const float value = element(tensor, index);
    if (std::isfinite(value)) sample.push_back(value);
  }
  std::sort(sample.begin(), sample.end());
  sample.erase(std::unique(sample.begin(), sample.end()), sample.end());
  ValueSteps steps;
  steps.distinct = sample.size();
  for (std::size_t index = 1; index < sample.size(); ++index) {
    const float gap = sample[index] - sample[index - 1];
    if (steps.step == 0.0f || gap < steps.step) steps.step = gap;
  }
  return steps;
}

}  // namespace

OutputSanity::OutputSanity(const ModelInfo& model, std::string family)
    : OutputSanity(model, std::move(family), Settings{}) {}

OutputSanity::OutputSanity(const ModelInfo& model, std::string family, Settings settings)
    : family_(std::move(family)), settings_(settings), quantised_model_(has_quantisation(model)) {
  if (settings_.frames_to_watch <= 0) watching_.store(false);
}

void OutputSanity::observe(std::span<const Tensor> outputs, std::span<const Detection> detections,
                           const Geometry& geometry) {
  if (!watching_.load(std::memory_order_acquire)) return;
  const std::lock_guard lock(mutex_);
  if (frames_seen_ >= settings_.frames_to_watch) return;
  ++frames_seen_;
  const bool last_frame = frames_seen_ == settings_.frames_to_watch;
  check_finite(outputs);
  check_scores(outputs, detections);
  check_degenerate(detections, geometry, last_frame);
  if (last_frame) watching_.store(false, std::memory_order_release);
}

std::vector<std::string> OutputSanity::warnings() const {
  const std::lock_guard lock(mutex_);
  return warnings_;
}

void OutputSanity::warn(std::string line) {
  spdlog::warn("{}", line);
  warnings_.push_back(std::move(line));
}

void OutputSanity::check_finite(std::span<const Tensor> outputs) {
  if (warned_non_finite_) return;
  for (std::size_t index = 0; index < outputs.size(); ++index) {
    const Tensor& tensor = outputs[index];
    if (!is_float(tensor)) continue;
    std::size_t nan_count = 0;
    std::size_t infinite_count = 0;
    const std::size_t count = tensor.element_count();
    for (std::size_t element_index = 0; element_index < count; ++element_index) {
      const float value = element(tensor, element_index);
      nan_count += std::isnan(value) ? 1 : 0;
      infinite_count += std::isinf(value) ? 1 : 0;
    }
    if (nan_count + infinite_count == 0) continue;
    warned_non_finite_ = true;
    warn(family_ + ": output " + output_name(tensor, index) + " holds " + std::to_string(nan_count) + " NaN and " +
         std::to_string(infinite_count) + " infinite values of " + std::to_string(count) + " on frame " +
         std::to_string(frames_seen_) +
         ": the engine computes this model wrongly or a float16 graph overflows; try another engine "
         "(engine.backend onnxruntime, engine.target cpu) or a float32 export");
    return;
  }
}

void OutputSanity::check_scores(std::span<const Tensor> outputs, std::span<const Detection> detections) {
  if (warned_scores_) return;
  // The score furthest outside [0, 1], if any (NaN counts as outside).
  std::optional<float> worst;
  float worst_excess = 0.0f;
  for (const Detection& detection : detections) {
    const float score = detection.score;
    const float excess = std::isnan(score) ? std::numeric_limits<float>::infinity() : std::max(score - 1.0f, -score);
    if (excess > 0.0f && (!worst || excess > worst_excess)) {
      worst = score;
      worst_excess = excess;
    }
  }
  if (!worst) return;
  warned_scores_ = true;

  // Dequantised outputs: name their steps; an excess within a step is the rounding of the
  // quantised range rather than logits.
  std::string steps_text;
  float largest_step = 0.0f;
  constexpr std::size_t eight_bit_levels = 256;
  for (std::size_t index = 0; index < outputs.size(); ++index) {
    if (!is_float(outputs[index])) continue;
    const ValueSteps steps = value_steps(outputs[index]);
    const bool looks_quantised = steps.distinct <= eight_bit_levels && outputs[index].element_count() >= 1024;
    if (steps.step <= 0.0f || !(quantised_model_ || looks_quantised)) continue;
    largest_step = std::max(largest_step, steps.step);
    steps_text += (steps_text.empty() ? "" : ", ") + std::string("output ") + output_name(outputs[index], index) +
                  " is quantised with a step (scale) of " + number_text(steps.step) + " (" +
                  std::to_string(steps.distinct) + " distinct values)";
  }
  std::string line = family_ + ": detection score " + number_text(*worst) + " on frame " +
                     std::to_string(frames_seen_) + " is outside [0, 1]";
  if (largest_step > 0.0f && worst_excess <= 1.5f * largest_step) {
    line += ": within one quantisation step of the range (" + steps_text +
            "): the dequantised scores overshoot [0, 1] by rounding, so scores are only as fine as that step";
  } else {
    line +=
        ": the score outputs are probably logits, not probabilities (an export without the final sigmoid, or "
        "not a " +
        family_ + " model: set model.family)";
    if (!steps_text.empty()) line += "; " + steps_text;
  }
  warn(std::move(line));
}

void OutputSanity::check_degenerate(std::span<const Detection> detections, const Geometry& geometry, bool last_frame) {
  if (degenerate_judged_) return;
  const double extent = settings_.degenerate_extent;
  for (const Detection& detection : detections) {
    const double width = (detection.x2 - detection.x1) * geometry.scale_x;
    const double height = (detection.y2 - detection.y1) * geometry.scale_y;
    if (width > extent && height > extent) {
      degenerate_judged_ = true;  // one healthy box: the decoder's units are right
      return;
    }
    if (degenerate_count_ == 0) degenerate_example_ = detection;
    ++degenerate_count_;
  }
  if (degenerate_count_ == 0) return;
  if (degenerate_count_ < settings_.min_degenerate_detections && !last_frame) return;
  degenerate_judged_ = true;
  const Detection& example = degenerate_example_;
  warn(family_ + ": all " + std::to_string(degenerate_count_) + " detections of the first " +
       std::to_string(frames_seen_) + " frames are at most " + number_text(extent) +
       " input pixels wide or high (e.g. [" + number_text(example.x1) + ", " + number_text(example.y1) + ", " +
       number_text(example.x2) + ", " + number_text(example.y2) +
       "] in source pixels): the boxes are not in input pixels, likely an undecoded head (yolov5: set model.head "
       "raw) or normalised coordinates; check model.family");
}

}  // namespace detflow
