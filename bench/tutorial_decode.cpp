#include "detflow/bench/tutorial_decode.h"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include <opencv2/dnn.hpp>

namespace detflow::bench::tutorial {
namespace {

void require(bool condition, const char* family, const OutputView& output) {
  if (condition) return;
  std::ostringstream message;
  message << "tutorial decode: output";
  for (std::size_t axis = 0; axis < output.shape.size(); ++axis)
    message << (axis == 0 ? " " : "x") << output.shape[axis];
  message << " does not have the " << family << " layout";
  throw std::runtime_error(message.str());
}

}  // namespace

void Candidates::clear() {
  boxes.clear();
  scores.clear();
  class_ids.clear();
}

void Candidates::add_centre_box(double centre_x, double centre_y, double width, double height, float score,
                                int class_id) {
  boxes.emplace_back(centre_x - 0.5 * width, centre_y - 0.5 * height, width, height);
  scores.push_back(score);
  class_ids.push_back(class_id);
}

void decode_yolox(const OutputView& output, int input_width, int input_height, float score_threshold,
                  Candidates& candidates) {
  require(output.shape.size() == 3 && output.shape[2] > 5, "yolox", output);
  const auto rows = static_cast<int>(output.shape[1]);
  const auto columns = static_cast<int>(output.shape[2]);
  const int classes = columns - 5;
  int row = 0;
  for (const int stride : {8, 16, 32}) {
    const int grid_width = input_width / stride;
    const int grid_height = input_height / stride;
    for (int grid_y = 0; grid_y < grid_height; ++grid_y) {
      for (int grid_x = 0; grid_x < grid_width; ++grid_x, ++row) {
        require(row < rows, "yolox", output);
        const float* values = output.data + static_cast<std::ptrdiff_t>(row) * columns;
        const float objectness = values[4];
        int best_class = 0;
        float best_score = 0;
        for (int class_id = 0; class_id < classes; ++class_id) {
          const float score = objectness * values[5 + class_id];
          if (score > best_score) {
            best_score = score;
            best_class = class_id;
          }
        }
        if (best_score < score_threshold) continue;
        candidates.add_centre_box((values[0] + grid_x) * stride, (values[1] + grid_y) * stride,
                                  std::exp(values[2]) * stride, std::exp(values[3]) * stride, best_score, best_class);
      }
    }
  }
}

void decode_yolov8(const OutputView& output, float score_threshold, Candidates& candidates, cv::Mat& transposed) {
  require(output.shape.size() == 3, "yolov8", output);
  auto rows = static_cast<int>(output.shape[1]);
  auto columns = static_cast<int>(output.shape[2]);
  const float* data = output.data;
  if (rows < columns) {  // channel-major export: [1, 4+C, N]
    const cv::Mat channel_major(rows, columns, CV_32F, const_cast<float*>(data));
    cv::transpose(channel_major, transposed);
    data = transposed.ptr<float>();
    std::swap(rows, columns);
  }
  require(columns > 4, "yolov8", output);
  for (int row = 0; row < rows; ++row) {
    const float* values = data + static_cast<std::ptrdiff_t>(row) * columns;
    const cv::Mat class_scores(1, columns - 4, CV_32F, const_cast<float*>(values + 4));
    double best_score = 0;
    cv::Point best_class;
    cv::minMaxLoc(class_scores, nullptr, &best_score, nullptr, &best_class);
    if (best_score < score_threshold) continue;
    candidates.add_centre_box(values[0], values[1], values[2], values[3], static_cast<float>(best_score), best_class.x);
  }
}

void decode_yolov5(const OutputView& output, float score_threshold, Candidates& candidates) {
  require(output.shape.size() == 3 && output.shape[2] > 5, "yolov5", output);
  const auto rows = static_cast<int>(output.shape[1]);
  const auto columns = static_cast<int>(output.shape[2]);
  for (int row = 0; row < rows; ++row) {
    const float* values = output.data + static_cast<std::ptrdiff_t>(row) * columns;
    const float objectness = values[4];
    if (objectness < score_threshold) continue;
    const cv::Mat class_scores(1, columns - 5, CV_32F, const_cast<float*>(values + 5));
    double best_score = 0;
    cv::Point best_class;
    cv::minMaxLoc(class_scores, nullptr, &best_score, nullptr, &best_class);
    const auto score = static_cast<float>(objectness * best_score);
    if (score < score_threshold) continue;
    candidates.add_centre_box(values[0], values[1], values[2], values[3], score, best_class.x);
  }
}

void decode_yolov10(const OutputView& output, float score_threshold, Candidates& candidates) {
  require(output.shape.size() == 3 && output.shape[2] == 6, "yolov10", output);
  const auto rows = static_cast<int>(output.shape[1]);
  for (int row = 0; row < rows; ++row) {
    const float* values = output.data + static_cast<std::ptrdiff_t>(row) * 6;
    if (values[4] < score_threshold) continue;
    candidates.boxes.emplace_back(values[0], values[1], values[2] - values[0], values[3] - values[1]);
    candidates.scores.push_back(values[4]);
    candidates.class_ids.push_back(static_cast<int>(values[5]));
  }
}

void class_aware_nms(const Candidates& candidates, float score_threshold, float iou_threshold, int max_detections,
                     std::vector<cv::Rect2d>& shifted, std::vector<int>& kept) {
  // Boxes of different classes never overlap once each class sits at its own offset.
  constexpr double class_offset = 7680.0;
  shifted.resize(candidates.boxes.size());
  for (std::size_t index = 0; index < candidates.boxes.size(); ++index) {
    const double shift = class_offset * candidates.class_ids[index];
    shifted[index] = candidates.boxes[index] + cv::Point2d(shift, shift);
  }
  kept.clear();
  cv::dnn::NMSBoxes(shifted, candidates.scores, score_threshold, iou_threshold, kept);
  if (max_detections > 0 && kept.size() > static_cast<std::size_t>(max_detections)) {
    kept.resize(static_cast<std::size_t>(max_detections));
  }
}

}  // namespace detflow::bench::tutorial
