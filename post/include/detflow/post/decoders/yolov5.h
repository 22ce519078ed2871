// detflow/post/decoders/yolov5.h — anchor-based YOLOv5 (also YOLOv7-style) heads.
//
// Decoded export (the default), one output, one row per anchor box, C classes:
//
//             0    1    2   3   4     5 ...  4+C
//   box 0   [ cx   cy   w   h   obj   c0 ... cC-1 ]   cx, cy, w, h in input pixels;
//   box 1   [ ...                               ]   obj and class scores sigmoid
//   ...                                              already applied
//   box N-1 [ ...                               ]   [1, N, 5+C], N = 3 x grid cells (P6: strides to 64)
//                                                    (25200 at 640: 3 x (80^2 + 40^2 + 20^2))
//
// Raw-head export (no decode step), three outputs, one per stride s in 8/16/32:
//
//   [1, 3, H/s, W/s, 5+C]  or  [1, 3*(5+C), H/s, W/s]
//    |  |    |     `- channel: tx ty tw th tobj t0 ... tC-1 (logits)
//    |  |    `- grid cell (gy, gx)
//    |  `- anchor a of this stride
//
//   sigmoid of everything, then xy = (2*sig(txy) - 0.5 + grid) * s,
//   wh = (2*sig(twh))^2 * anchor_a (pixels; DecoderConfig::anchors, default P3 10,13 16,30
//   33,23; P4 30,61 62,45 59,119; P5 116,90 156,198 373,326).
// score = obj x best class score (YOLOv5's NMS without multi-label).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "detflow/post/decoder.h"

namespace detflow {

class Yolov5Decoder final : public Decoder {
 public:
  // Throws detflow::Error when the outputs fit neither layout.
  explicit Yolov5Decoder(const DecoderContext& context);
  static std::optional<std::string> match(const DecoderContext& context);

  std::string_view family() const override { return "yolov5"; }
  int num_classes() const override { return num_classes_; }
  void decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
              std::vector<Detection>& detections) const override;

 private:
  struct Head {
    std::size_t output_index = 0;
    int stride = 0;
    int grid_width = 0;
    int grid_height = 0;
    bool channels_last = true;        // [3, H, W, 5+C] rather than [3*(5+C), H, W]
    std::vector<float> anchor_sizes;  // w,h pairs in pixels, 3 anchors
  };
  void decode_raw(std::span<const Tensor> outputs, const PostprocessOptions& options) const;

  int num_classes_ = 0;
  std::size_t rows_ = 0;     // decoded layout: boxes
  std::vector<Head> heads_;  // raw layout: one per stride; empty for the decoded layout
};

}  // namespace detflow
