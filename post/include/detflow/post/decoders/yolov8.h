// detflow/post/decoders/yolov8.h — anchor-free YOLO heads without objectness: YOLOv8,
// YOLO11, YOLOv9 (and YOLOv5u) exports.
//
// One output, channel-major (the default export), C classes, N anchors (8400 at 640):
//
//                 anchor 0   anchor 1   ...   anchor N-1
//            +------------------------------------------+
//   row 0    | cx         cx               cx          |  box centre and size in
//   row 1    | cy         cy               cy          |  input-tensor pixels
//   row 2    | w          w                w           |
//   row 3    | h          h                h           |
//   row 4    | score c0   score c0         score c0    |  class scores, sigmoid
//   ...      | ...                                     |  already applied,
//   row 3+C  | score cC-1 ...              score cC-1  |  no objectness
//            +------------------------------------------+  [1, 4+C, N]
//
// or transposed, one row per anchor: [1, N, 4+C] = cx cy w h c0 ... cC-1.
// score = best class score. The channel-major decode scans each class row contiguously,
// keeping a running per-anchor maximum, and computes boxes only for anchors whose best
// score passes the threshold.
#pragma once

#include <optional>
#include <string>

#include "detflow/post/decoder.h"

namespace detflow {

class Yolov8Decoder final : public Decoder {
 public:
  // Throws detflow::Error unless output 0 is a float/float16 [1, 4+C, N] or [1, N, 4+C].
  explicit Yolov8Decoder(const DecoderContext& context);
  // A reason when the outputs look like this family (see family.cpp for the priority).
  static std::optional<std::string> match(const DecoderContext& context);

  std::string_view family() const override { return "yolov8"; }
  int num_classes() const override { return num_classes_; }
  void decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
              std::vector<Detection>& detections) const override;

 private:
  int num_classes_ = 0;
  std::size_t anchors_ = 0;
  bool channel_major_ = true;  // [4+C, N] rather than [N, 4+C]
};

}  // namespace detflow
