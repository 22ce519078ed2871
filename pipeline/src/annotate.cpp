#include "detflow/pipeline/annotate.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include <opencv2/imgproc.hpp>

namespace detflow {

namespace {

// Twenty well-separated colours (BGR), the same hues Ultralytics uses, so outputs look
// familiar next to other tools.
constexpr std::array<std::array<unsigned char, 3>, 20> palette{{
    {56, 56, 255},  {151, 157, 255}, {31, 112, 255}, {29, 178, 255}, {49, 210, 207},  {10, 249, 72},  {23, 204, 146},
    {134, 219, 61}, {52, 147, 26},   {187, 212, 0},  {168, 153, 44}, {255, 194, 0},   {147, 69, 52},  {255, 115, 100},
    {236, 24, 0},   {255, 56, 132},  {133, 0, 82},   {255, 56, 203}, {200, 149, 255}, {199, 55, 255},
}};

constexpr int font_face = cv::FONT_HERSHEY_SIMPLEX;

int clamp_to(int value, int low, int high) { return std::max(low, std::min(value, high)); }

// Dark text on light colours and light text on dark ones keeps captions readable.
cv::Scalar text_colour_on(const cv::Scalar& background) {
  const double luminance = 0.114 * background[0] + 0.587 * background[1] + 0.299 * background[2];
  return luminance > 150 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255);
}

}  // namespace

cv::Scalar class_colour(int class_id) {
  const auto& colour = palette[static_cast<std::size_t>(std::max(class_id, 0)) % palette.size()];
  return {static_cast<double>(colour[0]), static_cast<double>(colour[1]), static_cast<double>(colour[2])};
}

std::string detection_caption(const Detection& detection, const AnnotationStyle& style) {
  std::string caption = detection.label.empty() ? "class_" + std::to_string(detection.class_id) : detection.label;
  if (style.show_score) {
    char score[16];
    std::snprintf(score, sizeof score, " %.2f", static_cast<double>(detection.score));
    caption += score;
  }
  return caption;
}

void draw_detections(cv::Mat& canvas, std::span<const Detection> detections, const AnnotationStyle& style) {
  if (canvas.empty()) return;
  const int width = canvas.cols;
  const int height = canvas.rows;
  const int thickness = std::max(1, style.line_thickness);
  const int text_thickness = std::max(1, thickness / 2);
  for (const Detection& detection : detections) {
    // NaN or infinite coordinates would make OpenCV draw across the whole image.
    if (!std::isfinite(detection.x1) || !std::isfinite(detection.y1) || !std::isfinite(detection.x2) ||
        !std::isfinite(detection.y2)) {
      continue;
    }
    if (detection.x2 < 0 || detection.y2 < 0 || detection.x1 >= static_cast<float>(width) ||
        detection.y1 >= static_cast<float>(height)) {
      continue;  // entirely outside: clamping would draw a misleading sliver on the edge
    }
    const int x1 = clamp_to(static_cast<int>(std::lround(detection.x1)), 0, width - 1);
    const int y1 = clamp_to(static_cast<int>(std::lround(detection.y1)), 0, height - 1);
    const int x2 = clamp_to(static_cast<int>(std::lround(detection.x2)), 0, width - 1);
    const int y2 = clamp_to(static_cast<int>(std::lround(detection.y2)), 0, height - 1);
    if (x2 < x1 || y2 < y1) continue;
    const cv::Scalar colour = class_colour(detection.class_id);
    // Axis-aligned edges barely show anti-aliasing, which costs several times more to draw;
    // text keeps it, where it shows.
    cv::rectangle(canvas, cv::Point(x1, y1), cv::Point(x2, y2), colour, thickness, cv::LINE_8);
    if (!style.show_label) continue;

    const std::string caption = detection_caption(detection, style);
    int baseline = 0;
    const cv::Size text_size = cv::getTextSize(caption, font_face, style.font_scale, text_thickness, &baseline);
    const int box_height = text_size.height + baseline + 4;
    // Above the box when there is room, else just inside its top edge; never off-canvas.
    int top = y1 - box_height;
    if (top < 0) top = std::min(y1, height - box_height);
    top = std::max(top, 0);
    const int left = clamp_to(x1, 0, std::max(0, width - text_size.width - 4));
    const cv::Rect background(left, top, std::min(text_size.width + 4, width - left),
                              std::min(box_height, height - top));
    cv::rectangle(canvas, background, colour, cv::FILLED);
    cv::putText(canvas, caption, cv::Point(left + 2, top + text_size.height + 2), font_face, style.font_scale,
                text_colour_on(colour), text_thickness, cv::LINE_AA);
  }
}

void copy_and_annotate(const cv::Mat& source, std::span<const Detection> detections, cv::Mat& destination,
                       const AnnotationStyle& style) {
  // copyTo reuses destination's memory when size and type match, so a Mat wrapping an
  // encoder buffer is filled in place.
  source.copyTo(destination);
  draw_detections(destination, detections, style);
}

}  // namespace detflow
