// Annotation: the shared frame is never touched, boxes land where the detections say,
// colours are stable per class, odd boxes are harmless.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "detflow/pipeline/annotate.h"
#include "sink_test_support.h"

namespace detflow {
namespace {

Detection box(float x1, float y1, float x2, float y2, int class_id = 0, float score = 0.5f, std::string label = {}) {
  Detection detection;
  detection.x1 = x1, detection.y1 = y1, detection.x2 = x2, detection.y2 = y2;
  detection.class_id = class_id;
  detection.score = score;
  detection.label = std::move(label);
  return detection;
}

int changed_pixels(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat difference;
  cv::absdiff(a, b, difference);
  return cv::countNonZero(difference.reshape(1));
}

TEST(Annotate, TheSourceFrameIsNeverModified) {
  const FramePtr frame = test::make_test_frame(3, 200, 150);
  const cv::Mat before = frame->image.clone();
  const std::vector<Detection> detections{box(10, 20, 90, 120, 0, 0.9f, "person"), box(100, 10, 190, 60, 5)};
  cv::Mat canvas;
  copy_and_annotate(frame->image, detections, canvas);
  EXPECT_EQ(changed_pixels(frame->image, before), 0);
  EXPECT_NE(canvas.data, frame->image.data);
  EXPECT_GT(changed_pixels(canvas, before), 0);
}

TEST(Annotate, DrawsOnlyAroundTheBoxes) {
  cv::Mat canvas(120, 160, CV_8UC3, cv::Scalar(0, 0, 0));
  const std::vector<Detection> detections{box(40, 50, 100, 110, 1, 0.8f, "bicycle")};
  draw_detections(canvas, detections);
  // The outline is in the class colour.
  const cv::Vec3b outline = canvas.at<cv::Vec3b>(80, 40);
  const cv::Scalar colour = class_colour(1);
  EXPECT_EQ(outline,
            cv::Vec3b(static_cast<uchar>(colour[0]), static_cast<uchar>(colour[1]), static_cast<uchar>(colour[2])));
  // Far from the box and its caption nothing changes; the box's inside stays untouched.
  EXPECT_EQ(canvas.at<cv::Vec3b>(5, 150), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(canvas.at<cv::Vec3b>(115, 5), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(canvas.at<cv::Vec3b>(90, 70), cv::Vec3b(0, 0, 0));
  // The caption sits above the box.
  EXPECT_NE(canvas.at<cv::Vec3b>(45, 42), cv::Vec3b(0, 0, 0));
}

TEST(Annotate, WritesIntoAForeignBufferInPlace) {
  const FramePtr frame = test::make_test_frame(0, 64, 48);
  std::vector<unsigned char> memory(static_cast<std::size_t>(64 * 3 + 4) * 48);  // padded rows, like GStreamer's
  cv::Mat target(48, 64, CV_8UC3, memory.data(), 64 * 3 + 4);
  const std::vector<Detection> detections{box(5, 5, 30, 30)};
  copy_and_annotate(frame->image, detections, target);
  EXPECT_EQ(target.data, memory.data());
  EXPECT_EQ(target.at<cv::Vec3b>(40, 60), frame->image.at<cv::Vec3b>(40, 60));
}

TEST(Annotate, ColoursAreStablePerClassAndDistinctForNeighbours) {
  EXPECT_EQ(class_colour(0), class_colour(0));
  EXPECT_NE(class_colour(0), class_colour(1));
  EXPECT_NE(class_colour(1), class_colour(2));
  EXPECT_EQ(class_colour(-4), class_colour(0));
  EXPECT_EQ(class_colour(3), class_colour(23));  // the palette has 20 colours
}

TEST(Annotate, CaptionHasLabelAndTwoDecimalScore) {
  EXPECT_EQ(detection_caption(box(0, 0, 1, 1, 0, 0.876f, "person")), "person 0.88");
  EXPECT_EQ(detection_caption(box(0, 0, 1, 1, 7, 0.5f)), "class_7 0.50");
  AnnotationStyle labels_only;
  labels_only.show_score = false;
  EXPECT_EQ(detection_caption(box(0, 0, 1, 1, 0, 0.9f, "dog"), labels_only), "dog");
}

TEST(Annotate, BoxesOutsideTheImageOrNotFiniteAreHarmless) {
  cv::Mat canvas(40, 50, CV_8UC3, cv::Scalar(0, 0, 0));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float infinity = std::numeric_limits<float>::infinity();
  const std::vector<Detection> detections{box(-100, -100, 500, 500, 0, 0.3f, "everything"), box(nan, 1, 2, 3),
                                          box(1, 1, infinity, 3), box(30, 30, 10, 10), box(60, 60, 80, 80)};
  EXPECT_NO_THROW(draw_detections(canvas, detections));
  cv::Mat empty;
  EXPECT_NO_THROW(draw_detections(empty, detections));
}

}  // namespace
}  // namespace detflow
