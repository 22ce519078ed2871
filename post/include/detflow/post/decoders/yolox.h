// detflow/post/decoders/yolox.h — YOLOX (anchor-free, with objectness).
//
// One output, one row per grid cell, cells of stride 8 first, then 16, then 32, each
// stride row-major (gy outer, gx inner); N = sum over s of (H/s) * (W/s), 3549 at 416:
//
//               0    1    2       3       4     5 ...  4+C
//   cell 0    [ x    y    log w   log h   obj   c0 ... cC-1 ]   obj and class scores
//   ...                                                         sigmoid already applied
//   cell N-1  [ ...                                         ]   [1, N, 5+C]
//
// Raw export (YOLOX's default): cx = (x + gx) * s, cy = (y + gy) * s, w = exp(log w) * s,
// h = exp(log h) * s. Decoded export (decode_in_inference): cx, cy, w, h in input pixels.
// See DecoderConfig::boxes_decoded for how the two are told apart.
// score = obj x best class score.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "detflow/post/decoder.h"

namespace detflow {

class YoloxDecoder final : public Decoder {
 public:
  // Throws detflow::Error unless output 0 is a float/float16 [1, N, 5+C] (and, for raw
  // boxes, N equals the grid cell count at the input size).
  explicit YoloxDecoder(const DecoderContext& context);
  static std::optional<std::string> match(const DecoderContext& context);

  std::string_view family() const override { return "yolox"; }
  int num_classes() const override { return num_classes_; }
  bool boxes_decoded() const { return boxes_decoded_; }
  void decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
              std::vector<Detection>& detections) const override;

 private:
  struct Cell {
    float x, y, stride;
  };
  int num_classes_ = 0;
  std::size_t rows_ = 0;
  bool boxes_decoded_ = false;
  std::vector<Cell> cells_;  // raw boxes: the grid cell of each row
};

}  // namespace detflow
