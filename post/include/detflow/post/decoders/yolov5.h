// detflow/post/decoders/yolov5.h — anchor-based YOLOv5 (also YOLOv7-style) heads.
//
// 1. Decoded export (YOLOv5's default), one output, one row per anchor box, C classes:
//
//             0    1    2   3   4     5 ...  4+C
//   box 0   [ cx   cy   w   h   obj   c0 ... cC-1 ]   cx, cy, w, h in input pixels;
//   box 1   [ ...                               ]   obj and class scores sigmoid
//   ...                                              already applied
//   box N-1 [ ...                               ]   [1, N, 5+C], N = A x grid cells (P6: strides to 64)
//                                                    (25200 at 640: 3 x (80^2 + 40^2 + 20^2))
//
// 2. Undecoded single output (YOLOv5-Lite and several edge exports): the same [1, N, 5+C]
//    with sigmoid applied to every column but without the grid/anchor step, so the box
//    columns hold sig(tx) sig(ty) sig(tw) sig(th), all in [0, 1]. Rows are in YOLOv5's
//    export order (Detect.forward: view(bs, na, no, ny, nx).permute(0, 1, 3, 4, 2), then
//    cat over levels):
//
//      stride 8                         stride 16          stride 32
//    | anchor 0      | anchor 1 | a 2 | a 0 | a 1 | a 2 | a 0 | a 1 | a 2 |
//    | (gy 0, gx 0), (0, 1) ... (H/8-1, W/8-1) | ...
//      row = first_row(level) + anchor x cells(level) + gy x (W/s) + gx
//
//    The shape does not tell (1) from (2). Unless DecoderConfig::boxes_decoded says which,
//    the first decode() looks at the values once: every box value in [0, 1] with an input
//    of at least 64 pixels a side (decoded boxes would then all be under one pixel) means
//    (2); the decision is logged (info) and kept for the decoder's life. Strides:
//    DecoderConfig::strides when set, else 8/16/32, else 8/16/32/64, the first that makes
//    N a whole number A of anchors per cell; A must match the anchors (DecoderConfig::
//    anchors split evenly among the strides, else YOLOv5's defaults, which have A = 3).
//
// 3. Raw-head export (no decode step), three outputs, one per stride s in 8/16/32:
//
//   [1, 3, H/s, W/s, 5+C]  or  [1, 3*(5+C), H/s, W/s]
//    |  |    |     `- channel: tx ty tw th tobj t0 ... tC-1 (logits)
//    |  |    `- grid cell (gy, gx)
//    |  `- anchor a of this stride
//
// Grid decode ((2) and (3), after the sigmoid that (3) still needs):
//   xy = (2*sig(txy) - 0.5 + grid) * s,  wh = (2*sig(twh))^2 * anchor_a  (pixels;
//   default anchors P3 10,13 16,30 33,23; P4 30,61 62,45 59,119; P5 116,90 156,198 373,326;
//   P6 models: 19,27 44,40 38,94; 96,68 86,152 180,137; 140,301 303,264 238,542;
//   436,615 739,380 925,792).
// score = obj x best class score (YOLOv5's NMS without multi-label).
//
// Thread-safety: decode() may run concurrently; the one-time decision of (1) vs (2) is
// taken under a mutex by whichever call comes first, and read atomically afterwards.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "detflow/post/decoder.h"

namespace detflow {

class Yolov5Decoder final : public Decoder {
 public:
  // Throws detflow::Error when the outputs fit no layout above, or when the configuration
  // (boxes_decoded, anchors, strides) contradicts them.
  explicit Yolov5Decoder(const DecoderContext& context);
  static std::optional<std::string> match(const DecoderContext& context);

  std::string_view family() const override { return "yolov5"; }
  int num_classes() const override { return num_classes_; }
  void decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
              std::vector<Detection>& detections) const override;

  // Whether the boxes are read as input pixels (true) or decoded from the grid (false);
  // std::nullopt while a single output's head has not been looked at (before the first
  // decode() in automatic mode).
  std::optional<bool> boxes_decoded() const;

 private:
  // One stride level: a head tensor of its own (raw heads) or a block of rows of the
  // single output (undecoded single output).
  struct Level {
    std::size_t output_index = 0;
    std::size_t first_row = 0;  // single output: rows of the earlier levels
    int stride = 0;
    int grid_width = 0;
    int grid_height = 0;
    bool channels_last = true;        // [A, H, W, 5+C] rather than [A*(5+C), H, W]
    std::vector<float> anchor_sizes;  // w,h pairs in pixels, one per anchor of a cell
  };
  enum class HeadState : int { undecided, pixels, grid };

  HeadState decide_head(const Tensor& output) const;
  std::string grid_text() const;

  int num_classes_ = 0;
  int input_width_ = 0;
  int input_height_ = 0;
  std::size_t rows_ = 0;       // single output: rows
  bool single_output_ = true;  // false: three raw head tensors (logits)
  std::vector<Level> levels_;  // grid decode plan; empty when the rows fit no grid
  mutable std::atomic<HeadState> head_state_{HeadState::undecided};
  mutable std::mutex decision_mutex_;
};

}  // namespace detflow
