// Letterbox of a 768x576 frame into an f32 NCHW tensor: detflow's Preprocessor (resize in
// 8 bits, then one pass converting, padding and laying out) against the usual chain of
// cv::resize, cv::copyMakeBorder and cv::dnn::blobFromImage.
#include <cmath>

#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "detflow/pre/preprocess.h"
#include "micro_support.h"

namespace detflow::bench::micro {
namespace {

void detflow_letterbox(benchmark::State& state, PreprocessSpec spec) {
  const cv::Mat& frame = test_frame();
  Preprocessor preprocessor(spec);
  Tensor tensor;
  preprocessor.prepare(tensor);
  for (auto _ : state) {
    const Geometry geometry = preprocessor.run(frame, tensor);
    benchmark::DoNotOptimize(geometry);
    benchmark::DoNotOptimize(tensor.bytes());
  }
}

void opencv_letterbox(benchmark::State& state, PreprocessSpec spec) {
  const cv::Mat& frame = test_frame();
  cv::Mat resized, padded, blob;
  for (auto _ : state) {
    const double ratio =
        std::min(static_cast<double>(spec.width) / frame.cols, static_cast<double>(spec.height) / frame.rows);
    const int width = cvRound(frame.cols * ratio);
    const int height = cvRound(frame.rows * ratio);
    cv::resize(frame, resized, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
    int top = 0, left = 0, bottom = spec.height - height, right = spec.width - width;
    if (spec.resize == ResizeMode::letterbox_center) {
      top = cvRound((spec.height - height) / 2.0 - 0.1);
      left = cvRound((spec.width - width) / 2.0 - 0.1);
      bottom = spec.height - height - top;
      right = spec.width - width - left;
    }
    cv::copyMakeBorder(resized, padded, top, bottom, left, right, cv::BORDER_CONSTANT, cv::Scalar::all(spec.pad_value));
    blob = cv::dnn::blobFromImage(padded, spec.scale, cv::Size(), cv::Scalar(), spec.color == ColorOrder::rgb, false,
                                  CV_32F);
    benchmark::DoNotOptimize(blob.data);
  }
}

}  // namespace

void register_letterbox_benchmarks() {
  PreprocessSpec yolox;  // YOLOX-nano: 416, image at the top-left, BGR, 0..255
  yolox.width = yolox.height = 416;
  yolox.resize = ResizeMode::letterbox_top_left;
  yolox.color = ColorOrder::bgr;
  yolox.scale = 1.0;
  register_pair(
      "letterbox", "cv::resize+copyMakeBorder+blobFromImage (768x576 -> 416x416 f32 NCHW, BGR)",
      [yolox](benchmark::State& state) { detflow_letterbox(state, yolox); },
      [yolox](benchmark::State& state) { opencv_letterbox(state, yolox); });

  PreprocessSpec ultralytics;  // YOLOv8: 640, centred, RGB, /255
  ultralytics.width = ultralytics.height = 640;
  register_pair(
      "letterbox_640_rgb", "cv::resize+copyMakeBorder+blobFromImage (768x576 -> 640x640 f32 NCHW, RGB /255)",
      [ultralytics](benchmark::State& state) { detflow_letterbox(state, ultralytics); },
      [ultralytics](benchmark::State& state) { opencv_letterbox(state, ultralytics); });
}

}  // namespace detflow::bench::micro
