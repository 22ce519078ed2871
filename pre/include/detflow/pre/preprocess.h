// detflow/pre/preprocess.h — one pass from a BGR frame to an engine input tensor.
//
// Preprocessor owns its scratch buffers (a resized 8-bit image of the input size at most)
// and reuses them, so steady-state calls allocate nothing. It never builds a full-size
// float image: the frame is resized in 8 bits and converted, normalised, colour-swapped
// and laid out (NCHW or NHWC) in one loop straight into the tensor.
// Thread-safety: one Preprocessor per thread (it keeps scratch state); the spec is const.
// Units: pixels; scale and padding map input-tensor pixels to source pixels (Geometry).
#pragma once

#include <array>
#include <cstdint>

#include <opencv2/core.hpp>

#include "detflow/tensor.h"

namespace detflow {

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
Geometry compute_geometry(const PreprocessSpec& spec, int source_width, int source_height);

class Preprocessor {
 public:
  explicit Preprocessor(const PreprocessSpec& spec);

  const PreprocessSpec& spec() const { return spec_; }

  // Shapes `tensor` for `batch` frames ([N, 3, H, W] or [N, H, W, 3]) of spec().type.
  void prepare(Tensor& tensor, int batch = 1) const;

  // Writes one frame (8-bit BGR, CV_8UC3, any size; also CV_8UC1/CV_8UC4, converted) into
  // slot `batch_index` of a tensor shaped by prepare(). Returns the frame's geometry.
  // Throws detflow::Error for an empty frame or an unsupported pixel type.
  Geometry run(const cv::Mat& frame, Tensor& tensor, int batch_index = 0);
  // OpenCL path: resizes on the device, then converts on the host into the tensor.
  Geometry run(const cv::UMat& frame, Tensor& tensor, int batch_index = 0);

 private:
  PreprocessSpec spec_;
  cv::Mat resized_;  // scratch, input size at most
  cv::UMat resized_device_;
};

}  // namespace detflow
