// detflow/bench/tutorial_decode.h — output decoding the way tutorials write it, shared by
// the hand-written loop and the microbenchmarks' baselines.
//
// Each function is a plain loop over every anchor (and every class) of one output,
// collecting candidates above the score threshold into parallel vectors (boxes in input
// pixels as cv::Rect2d, scores, class ids); class-aware NMS is one cv::dnn::NMSBoxes call
// on boxes shifted by a large per-class offset (Ultralytics' trick). They are baselines:
// clear, not fast. Stateless; safe from any thread on distinct Candidates.
#pragma once

#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>

namespace detflow::bench::tutorial {

// One model output as float32 values with its shape (not owned).
struct OutputView {
  const float* data = nullptr;
  std::vector<std::int64_t> shape;
};

struct Candidates {
  std::vector<cv::Rect2d> boxes;  // input pixels
  std::vector<float> scores;
  std::vector<int> class_ids;
  void clear();
  void add_centre_box(double centre_x, double centre_y, double width, double height, float score, int class_id);
};

// YOLOX [1, N, 5+C]: grids of strides 8, 16, 32 at the input size; score = objectness x
// best class score.
void decode_yolox(const OutputView& output, int input_width, int input_height, float score_threshold,
                  Candidates& candidates);
// YOLOv8 [1, 4+C, N] (transposed to [N, 4+C] first, as Ultralytics' C++ example does) or
// [1, N, 4+C]; score = best class score found with cv::minMaxLoc.
void decode_yolov8(const OutputView& output, float score_threshold, Candidates& candidates, cv::Mat& transposed);
// YOLOv5 decoded [1, N, 5+C]: rows with objectness below the threshold skipped, then
// objectness x best class score.
void decode_yolov5(const OutputView& output, float score_threshold, Candidates& candidates);
// End-to-end [1, K, 6]: x1, y1, x2, y2, score, class.
void decode_yolov10(const OutputView& output, float score_threshold, Candidates& candidates);

// Class-aware NMS with one cv::dnn::NMSBoxes call; `kept` receives candidate indices by
// descending score, at most max_detections (<= 0: no cap). `shifted` is scratch.
void class_aware_nms(const Candidates& candidates, float score_threshold, float iou_threshold, int max_detections,
                     std::vector<cv::Rect2d>& shifted, std::vector<int>& kept);

}  // namespace detflow::bench::tutorial
