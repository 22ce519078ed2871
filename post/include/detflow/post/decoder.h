// detflow/post/decoder.h — the Decoder interface and the family registry.
//
// A Decoder turns one model's raw output tensors into Detections in source pixels. Each
// family (yolov5, yolov8, yolov10, yolox, nanodet, ssd) is one class in its own header
// that draws the tensor layout it expects, registered by name in family.cpp — the only
// place that knows family names. Decoders are immutable after construction:
// decode() is const and safe to call from several threads at once.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "detflow/inference/model_info.h"
#include "detflow/post/detection.h"
#include "detflow/pre/preprocess.h"
#include "detflow/tensor.h"

namespace detflow {

// Family-specific settings from configuration; every field has a usable default.
struct DecoderConfig {
  std::vector<int> strides;  // empty: the family's default (8, 16, 32; NanoDet-Plus 8..64)
  // yolov5 anchors: w,h pairs in input pixels, smallest stride first, split evenly among
  // the strides (so the pair count must be a multiple of the stride count). Empty: YOLOv5's
  // defaults (P5: 3 pairs per stride 8/16/32; P6: 3 per stride 8/16/32/64).
  std::vector<float> anchors;
  int num_classes = 0;  // 0: inferred from the output shapes
  // Whether a single-output head's boxes are already in input pixels (true) or still
  // need the grid decode (false). Unset: decided per family --
  //   yolox: raw when the row count equals the grid count of strides 8/16/32 at the input
  //     size (YOLOX's export default, decode_in_inference off), decoded otherwise.
  //   yolov5: one [1, N, 5+C] output is decoded (pixels) unless, on the first frame, every
  //     box value lies in [0, 1] (sigmoid applied, grid/anchor decode left out, as
  //     YOLOv5-Lite and several edge exports ship it). Three raw head tensors are always raw.
  std::optional<bool> boxes_decoded;
  // nanodet: grid cell offset of the box centre in cells. Unset: 0.5 (cell centre) for
  // NanoDet-m's separate class/box heads, 0 (cell origin) for NanoDet-Plus's single output,
  // as in each model's reference code.
  std::optional<double> cell_offset;
  // SSD anchors (MediaPipe SsdAnchorsCalculator options); defaults are BlazeFace front.
  struct Ssd {
    int num_layers = 4;
    double min_scale = 0.1484375;
    double max_scale = 0.75;
    double anchor_offset_x = 0.5;
    double anchor_offset_y = 0.5;
    std::vector<int> strides{8, 16, 16, 16};
    std::vector<double> aspect_ratios{1.0};
    bool fixed_anchor_size = true;
    bool reduce_boxes_in_lowest_layer = false;
    double interpolated_scale_aspect_ratio = 1.0;
    double x_scale = 128, y_scale = 128, w_scale = 128, h_scale = 128;  // box coder scales
    bool apply_sigmoid = true;
    double score_clipping = 100.0;
  } ssd;
};

// What a decoder is built for: the model, its outputs with the shapes the engine runs,
// and the input size the preprocessing produces.
struct DecoderContext {
  const ModelInfo* model = nullptr;  // not owned; outlives the call to create()
  std::vector<TensorInfo> outputs;   // as Engine::outputs() reports them (fixed shapes)
  int input_width = 0;
  int input_height = 0;
  DecoderConfig config;
};

// Built from a DecoderContext by the registry (or directly, see decoders/*.h); the
// constructor validates the layout and throws detflow::Error when it does not fit.
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual std::string_view family() const = 0;
  virtual int num_classes() const = 0;
  // Clears `detections`, then fills it with this frame's detections in source pixels
  // (clipped to the frame), after thresholds, class filter and NMS per `options`,
  // sorted by descending score. `outputs` are in the model's output order; f16 tensors
  // are accepted. `label` is left empty (see labels.h). Throws std::runtime_error (a
  // per-frame failure, not detflow::Error) when the tensors do not have the element
  // count and type the decoder was built for.
  virtual void decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
                      std::vector<Detection>& detections) const = 0;
};

// Reference defaults of a family (its model card): preprocessing and thresholds.
struct FamilyDefaults {
  PreprocessSpec preprocess;  // width/height are replaced by the engine's input size
  PostprocessOptions postprocess;
};

struct FamilyDescription {
  std::string name;     // registry key, e.g. "yolov8"
  std::string summary;  // one line for help texts and errors
  FamilyDefaults defaults;
  // Returns a reason when the layout fits this family, std::nullopt otherwise.
  std::function<std::optional<std::string>(const DecoderContext&)> matches;
  // Builds the decoder; throws detflow::Error when the layout does not fit.
  std::function<std::unique_ptr<Decoder>(const DecoderContext&)> create;
};

// All registered families, in auto-detection priority order.
const std::vector<FamilyDescription>& registered_families();

struct FamilyChoice {
  const FamilyDescription* family = nullptr;
  std::string reason;  // e.g. "one output [1, 84, 8400]: 4 box rows + 80 classes (YOLOv8 layout)"
};

// `forced` is "auto" or a family name. Throws detflow::Error for an unknown name or when
// no family fits (the message lists the registered families and how to force one).
FamilyChoice choose_family(const DecoderContext& context, std::string_view forced = "auto");

}  // namespace detflow
