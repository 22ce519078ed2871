// detflow/pre/preprocess.h — one pass from a BGR frame to an engine input tensor.
//
// Preprocessor owns its scratch buffers and reuses them, so steady-state calls allocate
// nothing. It builds no resized or float image: a cv::Mat frame is resized bilinearly
// straight into the tensor, row by row (two horizontally resized source rows at a time),
// converted, normalised, colour-swapped and laid out (NCHW or NHWC) in the same pass,
// padding included (float32: SIMD gain/offset, except NHWC frames that need no resize;
// float16 and uint8: per-channel tables of the 256 normalised levels). The resize
// reproduces cv::resize(INTER_LINEAR) of OpenCV 4.x on 8-bit images bit for bit (its
// 11-bit fixed-point weights and rounding), so the tensor equals cv::resize +
// cv::copyMakeBorder + the normalisation. A frame whose resized size equals its own size
// is not resized. The cv::UMat path resizes with cv::resize on the device into an 8-bit
// scratch image, then converts on the host.
// Thread-safety: one Preprocessor per thread (it keeps scratch state); copies get their
// own scratch. The spec is const.
// Units: pixels; scale and padding map input-tensor pixels to source pixels (Geometry).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>

#include "detflow/tensor.h"

namespace detflow {

namespace detail {
// Internal to Preprocessor (not part of the API): the fused resize's tables for one frame
// size and resized size, as cv::resize(INTER_LINEAR) computes them for 8-bit images.
struct LinearResizeTables {
  int source_width = 0;
  int source_height = 0;
  int width = 0;  // resized size
  int height = 0;
  int vector_columns = 0;                       // leading columns whose source pair can be read 8 bytes at once
  std::vector<int> column_offset;               // per column: byte offset of the left source pixel
  std::vector<std::int16_t> column_weight;      // per column: the two source pixels' weights (sum 2048)
  std::vector<std::int8_t> column_weight_high;  // the same pairs as weight / 64 (for byte multiply-adds)
  std::vector<std::int8_t> column_weight_low;   // and weight % 64
  std::vector<int> row_source;                  // per row: the two source rows (clamped to the frame)
  std::vector<std::int16_t> row_weight;         // per row: the two source rows' weights
};
}  // namespace detail

enum class ResizeMode : std::uint8_t {
  letterbox_center,    // Ultralytics: keep aspect, pad both sides (left/top = round(pad/2 - 0.1))
  letterbox_top_left,  // YOLOX: keep aspect, image at top-left, pad right and bottom
  stretch,             // plain resize to the input size (NanoDet, SSD/BlazeFace)
};
enum class ColorOrder : std::uint8_t { bgr, rgb };
enum class Layout : std::uint8_t { nchw, nhwc };

struct PreprocessSpec {
  int width = 640;   // input tensor width in pixels
  int height = 640;  // input tensor height in pixels
  ResizeMode resize = ResizeMode::letterbox_center;
  ColorOrder color = ColorOrder::rgb;
  Layout layout = Layout::nchw;
  ElementType type = ElementType::float32;  // float32, float16 or uint8
  double pad_value = 114.0;                 // 8-bit value of padded pixels, before normalisation
  // value = (pixel * scale - mean[c]) / std[c], channels in the tensor's colour order.
  double scale = 1.0 / 255.0;
  std::array<double, 3> mean{0.0, 0.0, 0.0};
  std::array<double, 3> std{1.0, 1.0, 1.0};
};

// Maps between input-tensor pixels and source-frame pixels:
//   source_x = (input_x - pad_left) / scale_x,  source_y = (input_y - pad_top) / scale_y.
struct Geometry {
  int source_width = 0;
  int source_height = 0;
  int input_width = 0;
  int input_height = 0;
  int resized_width = 0;  // size of the resized image inside the input (the rest is padding)
  int resized_height = 0;
  double scale_x = 1.0;  // input pixels per source pixel (equal to scale_y for letterbox)
  double scale_y = 1.0;
  double pad_left = 0.0;  // input pixels
  double pad_top = 0.0;

  cv::Point2d to_source(cv::Point2d input_point) const {
    return {(input_point.x - pad_left) / scale_x, (input_point.y - pad_top) / scale_y};
  }
  cv::Point2d to_input(cv::Point2d source_point) const {
    return {source_point.x * scale_x + pad_left, source_point.y * scale_y + pad_top};
  }
};

// The geometry a spec gives a frame of the given size (no pixels touched).
//   letterbox: r = min(W_in / w, H_in / h); resized = round(w * r) x round(h * r) (Python's
//     round, half to even); scale_x = scale_y = r. Centred: pad_left = round((W_in -
//     resized_w) / 2 - 0.1), pad_top likewise (Ultralytics). Top-left: no left/top padding.
//   stretch: resized = input size, scale_x = W_in / w, scale_y = H_in / h, no padding.
// Throws detflow::Error for a non-positive source or input size.
Geometry compute_geometry(const PreprocessSpec& spec, int source_width, int source_height);

class Preprocessor {
 public:
  // Throws detflow::Error for a non-positive input size, a std value of 0, or an element
  // type other than float32, float16 and uint8.
  explicit Preprocessor(const PreprocessSpec& spec);
  // A copy gets its own scratch buffers (so copies may run on different threads).
  Preprocessor(const Preprocessor& other) : Preprocessor(other.spec_) {}
  Preprocessor& operator=(const Preprocessor& other) {
    if (this != &other) *this = Preprocessor(other.spec_);
    return *this;
  }
  Preprocessor(Preprocessor&&) noexcept = default;
  Preprocessor& operator=(Preprocessor&&) noexcept = default;

  const PreprocessSpec& spec() const { return spec_; }

  // Shapes `tensor` for `batch` frames ([N, 3, H, W] or [N, H, W, 3]) of spec().type.
  void prepare(Tensor& tensor, int batch = 1) const;

  // Writes one frame (8-bit BGR, CV_8UC3, any size; also CV_8UC1/CV_8UC4, converted) into
  // slot `batch_index` of a tensor shaped by prepare(). Returns the frame's geometry.
  // Throws detflow::Error for an empty frame, an unsupported pixel type, a tensor that
  // prepare() did not shape for this spec, or a batch_index outside the tensor.
  // uint8 tensors receive the normalised value rounded and saturated to 0..255.
  Geometry run(const cv::Mat& frame, Tensor& tensor, int batch_index = 0);
  // OpenCL path: resizes on the device, then converts on the host into the tensor.
  Geometry run(const cv::UMat& frame, Tensor& tensor, int batch_index = 0);

 private:
  void check_slot(const Tensor& tensor, int batch_index) const;
  // Converts the 8-bit BGR image `resized` (the geometry's resized size, placed at its
  // padding offsets) and the padding into slot `batch_index` of `tensor`.
  void write_tensor(const cv::Mat& resized, const Geometry& geometry, Tensor& tensor, int batch_index) const;
  // Resizes the 8-bit BGR `frame` to the geometry's resized size and writes it, with the
  // padding, into slot `batch_index` of `tensor` in one pass (no resized image).
  void write_resized(const cv::Mat& frame, const Geometry& geometry, Tensor& tensor, int batch_index);

  PreprocessSpec spec_;
  // Normalised value of each 8-bit level, per tensor channel (already in tensor colour
  // order): value_table_[channel * 256 + level]. One table per supported element type.
  std::vector<float> value_table_f32_;
  std::vector<std::uint16_t> value_table_f16_;
  std::vector<std::uint8_t> value_table_u8_;
  std::array<float, 3> channel_gain_{};       // value = level * gain + offset (float32 fast path)
  std::array<float, 3> channel_offset_{};     // per tensor channel
  std::array<int, 3> source_channel_{};       // BGR channel feeding each tensor channel
  cv::Mat resized_storage_;                   // UMat path: input-size 8-bit scratch; resized images are views into it
  detail::LinearResizeTables resize_tables_;  // for the last frame size (rebuilt when it changes)
  std::vector<std::int16_t> resize_rows_;     // two horizontally resized source rows, one plane per channel
  std::vector<std::uint8_t> level_row_;       // one resized row's 8-bit levels, one plane per channel
  cv::Mat converted_;                         // CV_8UC1/CV_8UC4 frames converted to BGR
  cv::UMat resized_device_;
  cv::UMat converted_device_;
};

}  // namespace detflow
