// detflow/post/decoders/ssd.h — SSD-style anchor decoders with MediaPipe semantics
// (BlazeFace and other MediaPipe detectors).
//
// Two outputs over A anchors, matched by shape (same A, the wider one holds the boxes):
//
//   boxes  [1, A, 4 + 2K]                         scores [1, A, C]
//   anchor 0 [ x y w h | kx0 ky0 ... kxK-1 kyK-1 ]  anchor 0 [ logit c0 ... cC-1 ]
//   ...                                             ...
//   BlazeFace short range: A = 896, K = 6 keypoints (16 columns), C = 1.
//
// Anchors: MediaPipe SsdAnchorsCalculator over DecoderConfig::Ssd at the input size
// (layers of equal stride merged, feature map = ceil(input / stride), centre =
// ((x + offset_x) / fw, (y + offset_y) / fh), unit size when fixed_anchor_size).
// Boxes (TensorsToDetections): x = x / x_scale * anchor_w + anchor_x, y likewise,
// w = w / w_scale * anchor_w, h = h / h_scale * anchor_h, all normalised to the input.
// Scores: logits clipped to +/-score_clipping, then sigmoid (apply_sigmoid). Keypoints are
// not decoded (Detection carries none). NMS is greedy (MediaPipe uses weighted NMS).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "detflow/post/decoder.h"

namespace detflow {

class SsdDecoder final : public Decoder {
 public:
  struct Anchor {
    float x_center, y_center, width, height;  // normalised to the input size
  };

  explicit SsdDecoder(const DecoderContext& context);
  static std::optional<std::string> match(const DecoderContext& context);
  // MediaPipe SsdAnchorsCalculator; throws detflow::Error for inconsistent options.
  static std::vector<Anchor> generate_anchors(const DecoderConfig::Ssd& options, int input_width, int input_height);

  std::string_view family() const override { return "ssd"; }
  int num_classes() const override { return num_classes_; }
  const std::vector<Anchor>& anchors() const { return anchors_; }
  void decode(std::span<const Tensor> outputs, const Geometry& geometry, const PostprocessOptions& options,
              std::vector<Detection>& detections) const override;

 private:
  int num_classes_ = 1;
  std::size_t box_output_ = 0;
  std::size_t score_output_ = 1;
  std::size_t box_columns_ = 16;
  std::size_t output_count_ = 2;
  int input_width_ = 0;
  int input_height_ = 0;
  DecoderConfig::Ssd options_;
  std::vector<Anchor> anchors_;
};

}  // namespace detflow
