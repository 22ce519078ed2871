// The HTTP preview draws what the video draws: with tracking, the counting lines and zones
// (and their counts) as well as the boxes.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "detflow/service/preview.h"

namespace detflow::service {
namespace {

constexpr int kWidth = 320;
constexpr int kHeight = 240;
constexpr int kLineX = 200;

FrameResult black_frame_result() {
  auto frame = std::make_shared<Frame>();
  frame->index = 0;
  frame->image = cv::Mat(kHeight, kWidth, CV_8UC3, cv::Scalar(0, 0, 0));
  FrameResult result;
  result.frame = frame;
  return result;
}

// Pixels clearly lit in a column band around x, below the caption area.
int lit_pixels_near_column(const cv::Mat& image, int x) {
  int lit = 0;
  for (int row = kHeight / 2; row < kHeight - 10; ++row) {
    for (int column = x - 2; column <= x + 2; ++column) {
      const auto pixel = image.at<cv::Vec3b>(row, column);
      if (pixel[0] + pixel[1] + pixel[2] > 150) ++lit;
    }
  }
  return lit;
}

cv::Mat decode_latest(LatestFrame& latest) {
  const auto encoded = latest.latest();
  if (!encoded) return {};
  return cv::imdecode(encoded->jpeg, cv::IMREAD_COLOR);
}

TEST(Preview, DrawsTheCountingLinesAndZonesOfATrackedRun) {
  track::AnalyticsSettings analytics;
  analytics.lines.push_back({"door", {kLineX, 0}, {kLineX, kHeight}, {}});
  track::CountsSnapshot counts = track::CountsSnapshot::with_names({"door"}, {});

  LatestFrame plain(90);
  plain.publish(black_frame_result());
  const cv::Mat without = decode_latest(plain);
  ASSERT_FALSE(without.empty());
  EXPECT_EQ(lit_pixels_near_column(without, kLineX), 0) << "nothing to draw without tracking";

  LatestFrame tracked(90);
  FrameResult result = black_frame_result();
  result.analytics = &analytics;
  result.counts = &counts;
  tracked.publish(result);
  const cv::Mat with = decode_latest(tracked);
  ASSERT_FALSE(with.empty());
  EXPECT_GT(lit_pixels_near_column(with, kLineX), kHeight / 4) << "the line at x = " << kLineX << " is drawn";
  EXPECT_EQ(lit_pixels_near_column(with, 60), 0) << "and nothing far from it";
}

TEST(Preview, TheEndOfRunResultWithoutAFrameIsIgnored) {
  LatestFrame latest(90);
  latest.publish(black_frame_result());
  FrameResult end_of_run;  // events only, no frame
  latest.publish(end_of_run);
  EXPECT_EQ(latest.frames_published(), 1);
  EXPECT_FALSE(decode_latest(latest).empty());
}

}  // namespace
}  // namespace detflow::service
