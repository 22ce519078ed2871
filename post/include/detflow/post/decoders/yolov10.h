// detflow/post/decoders/yolov10.h — end-to-end (NMS-free) outputs: YOLOv10, YOLO26, and
// Ultralytics exports with nms=True.
//
// One output, one row per final detection, K rows (300 by default):
//
//             0    1    2    3    4      5
//   det 0   [ x1   y1   x2   y2   score  class ]   corners in input pixels,
//   det 1   [ ...                              ]   class index as a float;
//   ...                                            rows below the threshold are padding
//   det K-1 [ ...                              ]   [1, K, 6]
//
// The family default is options.nms = false; NMS still runs when a user asks for it.
#pragma once

#include <optional>
#include <string>

#include "detflow/post/decoder.h"

namespace detflow {

class Yolov10Decoder final : public Decoder {
 public:
  // Throws detflow::Error unless output 0 is a float/float16 [1, K, 6].
  explicit Yolov10Decoder(const DecoderContext& context);
  static std::optional<std::string> match(const DecoderContext& context);

  std::string_view family() const override { return "yolov10"; }
  // From DecoderConfig::num_classes or the metadata names; 0 when unknown.
  int num_classes() const override { return num_classes_; }
  void decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
              std::vector<Detection>& detections) const override;

 private:
  int num_classes_ = 0;
  std::size_t rows_ = 0;
};

}  // namespace detflow
