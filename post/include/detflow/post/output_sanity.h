// detflow/post/output_sanity.h — a watch over the first frames' outputs and detections
// that warns once, in one log line naming the likely cause, when a model's outputs look
// wrong. Users cannot check boxes by eye on every model; this catches the silent failures
// (an undecoded head taken for a decoded one, logits taken for scores, an engine that
// computes NaN) on the first frames of a run.
//
// Conditions, each warned (spdlog warn) at most once per OutputSanity:
//   non-finite  NaN or Inf in a float output (float32/float16) of a watched frame.
//   scores      a detection score outside [0, 1]: the score columns are not probabilities
//               (logits without the final sigmoid, or the wrong family). When the model is
//               quantised (QuantizeLinear/DequantizeLinear/QLinear* operators), the warning
//               names each output's quantisation step as read from its values, and says
//               when the excess is within one step (rounding of the dequantised range).
//   degenerate  every detection of the watched frames is at most `degenerate_extent` input
//               pixels wide or high (zero and negative sizes included): boxes that are not
//               in input pixels (an undecoded head, normalised coordinates). Judged once
//               `min_degenerate_detections` such detections were seen and none healthy, or
//               at the end of the watch when at least one was.
// Cost: the first `frames_to_watch` frames scan their outputs once (a few milliseconds for
// a 25200 x 85 output); afterwards observe() is one atomic load.
//
// Thread-safety: observe() and warnings() may be called concurrently (one mutex while
// watching).
#pragma once

#include <atomic>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "detflow/inference/model_info.h"
#include "detflow/post/detection.h"
#include "detflow/pre/preprocess.h"
#include "detflow/tensor.h"

namespace detflow {

class OutputSanity {
 public:
  struct Settings {
    int frames_to_watch = 5;
    float degenerate_extent = 2.0f;  // input pixels
    int min_degenerate_detections = 3;
  };

  // `model` is read during construction only (its operators tell whether it is
  // quantised); `family` names the decoder in the warnings.
  OutputSanity(const ModelInfo& model, std::string family);
  OutputSanity(const ModelInfo& model, std::string family, Settings settings);

  // One decoded frame: its raw outputs (model order, names as the engine reports them)
  // and its detections in source pixels with the geometry that mapped them.
  void observe(std::span<const Tensor> outputs, std::span<const Detection> detections, const Geometry& geometry);

  // The warnings issued so far, in order.
  std::vector<std::string> warnings() const;
  bool watching() const { return watching_.load(std::memory_order_acquire); }

 private:
  void warn(std::string line);
  void check_finite(std::span<const Tensor> outputs);
  void check_scores(std::span<const Tensor> outputs, std::span<const Detection> detections);
  void check_degenerate(std::span<const Detection> detections, const Geometry& geometry, bool last_frame);

  std::string family_;
  Settings settings_;
  bool quantised_model_ = false;
  std::atomic<bool> watching_{true};
  mutable std::mutex mutex_;
  // Guarded by mutex_:
  int frames_seen_ = 0;
  bool warned_non_finite_ = false;
  bool warned_scores_ = false;
  bool degenerate_judged_ = false;  // warned, or a healthy box seen
  int degenerate_count_ = 0;
  Detection degenerate_example_;
  std::vector<std::string> warnings_;
};

}  // namespace detflow
