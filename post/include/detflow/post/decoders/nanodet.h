// detflow/post/decoders/nanodet.h — NanoDet (GFL head with distribution boxes).
//
// NanoDet-m: two outputs per stride s in 8/16/32, N_s = ceil(H/s) * ceil(W/s) cells,
// row-major (gy outer, gx inner), R = reg_max + 1 bins (8 for reg_max 7):
//
//   class tensor [1, N_s, C] (or [N_s, C])       box tensor [1, N_s, 4R] (or [N_s, 4R])
//   cell 0   [ c0 c1 ... cC-1 ]  sigmoid          cell 0   [ left: p0..pR-1 | top: ... |
//   ...                          applied                     right: ... | bottom: ... ]
//   cell N_s-1                                    logits of a distribution over 0..R-1
//
// The tensors are matched by shape, never by name (exported names do not match their
// contents). The class tensor is the one with DecoderConfig::num_classes columns when
// that is set; otherwise the box tensor is the one with 32 columns (reg_max 7), else the
// one whose column count alone is a multiple of 4, else the second in output order.
//
// NanoDet-Plus: one output [1, N, C + 4R] over strides 8/16/32/64, each row classes then
// distributions (R = 8 unless DecoderConfig::num_classes says otherwise).
//
// Decode: d = stride * sum_i i * softmax(p)_i per side; centre = ((gx + o) * s, (gy + o) * s)
// with o the cell offset (DecoderConfig::cell_offset: 0.5 NanoDet-m, 0 NanoDet-Plus);
// box = (cx - d_left, cy - d_top, cx + d_right, cy + d_bottom), clamped to the input.
// score = best class score.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "detflow/post/decoder.h"

namespace detflow {

class NanodetDecoder final : public Decoder {
 public:
  explicit NanodetDecoder(const DecoderContext& context);
  static std::optional<std::string> match(const DecoderContext& context);

  std::string_view family() const override { return "nanodet"; }
  int num_classes() const override { return num_classes_; }
  int reg_max() const { return bins_ - 1; }
  void decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
              std::vector<Detection>& detections) const override;

 private:
  struct Level {
    int stride = 0;
    int grid_width = 0;
    int grid_height = 0;
    std::size_t class_output = 0;  // output index holding this level's class scores
    std::size_t box_output = 0;    // output index holding this level's distributions
    std::size_t first_row = 0;     // first row of the level in those tensors
  };
  int num_classes_ = 0;
  int bins_ = 8;                // reg_max + 1
  bool single_output_ = false;  // NanoDet-Plus
  float cell_offset_ = 0.5f;
  int input_width_ = 0;
  int input_height_ = 0;
  std::size_t output_count_ = 0;
  std::vector<std::size_t> output_elements_;  // expected element count per used output
  std::vector<Level> levels_;
};

}  // namespace detflow
