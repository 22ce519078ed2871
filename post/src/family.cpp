// The family registry: the only place that knows family names and their reference
// defaults. Auto-detection asks each family in the order below and takes the first that
// recognises the outputs; the order puts the most specific layouts first:
//   1. ssd      two outputs over exactly the anchor count of DecoderConfig::Ssd
//   2. nanodet  2 outputs per stride paired by row count, or one row per cell of 4 strides
//   3. yolov10  one [1, K, 6] output that is end-to-end by metadata or not a grid count
//   4. yolov5   three raw heads, or one [1, N, 5+C] with N = 3 x grid cells (A x cells with
//               configured anchors); whether that output still needs the grid/anchor decode
//               is decided by the decoder on the first frame's values (see yolov5.h)
//   5. yolov8   one [1, 4+C, N] (channel-major), or [1, N, 4+C] with Ultralytics metadata
//   6. yolox    one [1, N, 5+C] with N = grid cells of strides 8/16/32
// YOLOv5 and YOLOX share the row layout [1, N, 85]; N tells them apart (25200 = 3 x 8400
// at 640 for YOLOv5, 3549 at 416 for YOLOX).
#include <algorithm>

#include "detflow/error.h"
#include "detflow/post/decoder.h"
#include "detflow/post/decoders/nanodet.h"
#include "detflow/post/decoders/ssd.h"
#include "detflow/post/decoders/yolov10.h"
#include "detflow/post/decoders/yolov5.h"
#include "detflow/post/decoders/yolov8.h"
#include "detflow/post/decoders/yolox.h"

namespace detflow {

namespace {

// Ultralytics predict defaults: letterbox centred, RGB /255, pad 114, conf 0.25, IoU 0.7,
// at most 300 boxes.
FamilyDefaults ultralytics_defaults() {
  FamilyDefaults defaults;
  defaults.preprocess.resize = ResizeMode::letterbox_center;
  defaults.preprocess.color = ColorOrder::rgb;
  defaults.preprocess.scale = 1.0 / 255.0;
  defaults.preprocess.pad_value = 114.0;
  defaults.postprocess.score_threshold = 0.25f;
  defaults.postprocess.iou_threshold = 0.7f;
  defaults.postprocess.max_detections = 300;
  return defaults;
}

// YOLOv5's detect.py: as Ultralytics, but NMS IoU 0.45 and at most 1000 boxes.
FamilyDefaults yolov5_defaults() {
  FamilyDefaults defaults = ultralytics_defaults();
  defaults.postprocess.iou_threshold = 0.45f;
  defaults.postprocess.max_detections = 1000;
  return defaults;
}

FamilyDefaults yolov10_defaults() {
  FamilyDefaults defaults = ultralytics_defaults();
  defaults.postprocess.nms = false;
  return defaults;
}

// YOLOX demo: image at the top-left, pad 114, BGR 0..255, conf 0.25, IoU 0.45.
FamilyDefaults yolox_defaults() {
  FamilyDefaults defaults;
  defaults.preprocess.resize = ResizeMode::letterbox_top_left;
  defaults.preprocess.color = ColorOrder::bgr;
  defaults.preprocess.scale = 1.0;
  defaults.preprocess.pad_value = 114.0;
  defaults.postprocess.score_threshold = 0.25f;
  defaults.postprocess.iou_threshold = 0.45f;
  defaults.postprocess.max_detections = 300;
  return defaults;
}

// NanoDet: plain resize, BGR, ImageNet mean/std in 0..255 units; its demo draws boxes
// scoring >= 0.35, its test config runs NMS at IoU 0.6 keeping 100 boxes.
FamilyDefaults nanodet_defaults() {
  FamilyDefaults defaults;
  defaults.preprocess.resize = ResizeMode::stretch;
  defaults.preprocess.color = ColorOrder::bgr;
  defaults.preprocess.scale = 1.0;
  defaults.preprocess.mean = {103.53, 116.28, 123.675};
  defaults.preprocess.std = {57.375, 57.12, 58.395};
  defaults.postprocess.score_threshold = 0.35f;
  defaults.postprocess.iou_threshold = 0.6f;
  defaults.postprocess.max_detections = 100;
  return defaults;
}

// MediaPipe face detection (BlazeFace short range): plain resize, RGB in [-1, 1], NHWC,
// min score 0.5, suppression at IoU 0.3.
FamilyDefaults ssd_defaults() {
  FamilyDefaults defaults;
  defaults.preprocess.resize = ResizeMode::stretch;
  defaults.preprocess.color = ColorOrder::rgb;
  defaults.preprocess.layout = Layout::nhwc;
  defaults.preprocess.scale = 1.0 / 127.5;
  defaults.preprocess.mean = {1.0, 1.0, 1.0};
  defaults.preprocess.std = {1.0, 1.0, 1.0};
  defaults.preprocess.pad_value = 0.0;
  defaults.postprocess.score_threshold = 0.5f;
  defaults.postprocess.iou_threshold = 0.3f;
  defaults.postprocess.max_detections = 100;
  return defaults;
}

template <typename DecoderType>
FamilyDescription describe(std::string name, std::string summary, FamilyDefaults defaults) {
  return FamilyDescription{
      std::move(name), std::move(summary), std::move(defaults),
      [](const DecoderContext& context) { return DecoderType::match(context); },
      [](const DecoderContext& context) -> std::unique_ptr<Decoder> { return std::make_unique<DecoderType>(context); }};
}

std::string family_names() {
  std::string names;
  for (const FamilyDescription& family : registered_families()) names += (names.empty() ? "" : ", ") + family.name;
  return names;
}

std::string outputs_text(const DecoderContext& context) {
  std::string text;
  for (const TensorInfo& output : context.outputs) text += (text.empty() ? "" : ", ") + output.to_string();
  return text.empty() ? "(no outputs)" : text;
}

}  // namespace

const std::vector<FamilyDescription>& registered_families() {
  static const std::vector<FamilyDescription> families{
      describe<SsdDecoder>(
          "ssd", "SSD-style anchors with MediaPipe semantics (BlazeFace): boxes [1, A, 4+2K], scores [1, A, C]",
          ssd_defaults()),
      describe<NanodetDecoder>("nanodet", "NanoDet-m / NanoDet-Plus: class scores and box distributions per stride",
                               nanodet_defaults()),
      describe<Yolov10Decoder>("yolov10", "end-to-end YOLOv10/YOLO26: [1, K, 6] x1, y1, x2, y2, score, class; no NMS",
                               yolov10_defaults()),
      describe<Yolov5Decoder>(
          "yolov5", "YOLOv5: [1, N, 5+C] with objectness (decoded, or sigmoid only), or three raw anchor heads",
          yolov5_defaults()),
      describe<Yolov8Decoder>("yolov8", "YOLOv8/YOLO11/YOLOv9: [1, 4+C, N] boxes and class scores, no objectness",
                              ultralytics_defaults()),
      describe<YoloxDecoder>("yolox", "YOLOX: [1, N, 5+C] grid offsets with objectness, strides 8/16/32",
                             yolox_defaults()),
  };
  return families;
}

FamilyChoice choose_family(const DecoderContext& context, std::string_view forced) {
  const auto& families = registered_families();
  if (forced != "auto") {
    const auto found = std::find_if(families.begin(), families.end(),
                                    [&](const FamilyDescription& family) { return family.name == forced; });
    if (found == families.end()) {
      throw Error("model family '" + std::string(forced) + "' is unknown: expected auto or one of " + family_names());
    }
    return {&*found, "forced by configuration (model.family = " + found->name + ")"};
  }
  for (const FamilyDescription& family : families) {
    if (auto reason = family.matches(context)) return {&family, std::move(*reason)};
  }
  throw Error("no registered family recognises the model outputs " + outputs_text(context) + " at input " +
              std::to_string(context.input_width) + "x" + std::to_string(context.input_height) +
              ": registered families are " + family_names() + "; set model.family (or --family) to force one");
}

}  // namespace detflow
