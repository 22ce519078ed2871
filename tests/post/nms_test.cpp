// Greedy NMS and IoU: empty input, identical boxes, ties, class-aware vs agnostic,
// the max_detections cap, nms = false, and the IoU threshold's strictness.
#include <gtest/gtest.h>

#include "detflow/post/nms.h"

namespace detflow {
namespace {

Detection box(float x1, float y1, float x2, float y2, float score, int class_id = 0) {
  Detection detection;
  detection.x1 = x1;
  detection.y1 = y1;
  detection.x2 = x2;
  detection.y2 = y2;
  detection.score = score;
  detection.class_id = class_id;
  return detection;
}

PostprocessOptions options_with(float iou, int max_detections = 300, bool agnostic = false) {
  PostprocessOptions options;
  options.iou_threshold = iou;
  options.max_detections = max_detections;
  options.class_agnostic = agnostic;
  return options;
}

TEST(IntersectionOverUnion, KnownOverlaps) {
  EXPECT_FLOAT_EQ(intersection_over_union(box(0, 0, 10, 10, 1), box(0, 0, 10, 10, 1)), 1.0f);
  EXPECT_FLOAT_EQ(intersection_over_union(box(0, 0, 10, 10, 1), box(5, 0, 15, 10, 1)), 50.0f / 150.0f);
  EXPECT_FLOAT_EQ(intersection_over_union(box(0, 0, 10, 10, 1), box(10, 0, 20, 10, 1)), 0.0f);  // touching
  EXPECT_FLOAT_EQ(intersection_over_union(box(0, 0, 10, 10, 1), box(2, 2, 4, 4, 1)), 4.0f / 100.0f);
  EXPECT_FLOAT_EQ(intersection_over_union(box(0, 0, 0, 10, 1), box(0, 0, 10, 10, 1)), 0.0f);  // empty box
  EXPECT_FLOAT_EQ(intersection_over_union(box(5, 5, 1, 1, 1), box(0, 0, 10, 10, 1)), 0.0f);   // inverted box
}

TEST(NonMaximumSuppression, EmptyStaysEmpty) {
  std::vector<Detection> detections;
  non_maximum_suppression(detections, options_with(0.5f));
  EXPECT_TRUE(detections.empty());
}

TEST(NonMaximumSuppression, IdenticalBoxesKeepTheBestOne) {
  std::vector<Detection> detections{box(0, 0, 10, 10, 0.3f), box(0, 0, 10, 10, 0.9f), box(0, 0, 10, 10, 0.5f)};
  non_maximum_suppression(detections, options_with(0.5f));
  ASSERT_EQ(detections.size(), 1u);
  EXPECT_FLOAT_EQ(detections[0].score, 0.9f);
}

TEST(NonMaximumSuppression, EqualScoresKeepTheEarlierCandidate) {
  // Same score, overlapping: the first in input order wins, every time.
  for (int repeat = 0; repeat < 3; ++repeat) {
    std::vector<Detection> detections{box(0, 0, 10, 10, 0.5f, 0), box(1, 0, 11, 10, 0.5f, 0),
                                      box(50, 50, 60, 60, 0.5f, 0)};
    detections[0].label = "first";
    detections[1].label = "second";
    detections[2].label = "third";
    non_maximum_suppression(detections, options_with(0.5f));
    ASSERT_EQ(detections.size(), 2u);
    EXPECT_EQ(detections[0].label, "first");
    EXPECT_EQ(detections[1].label, "third");
  }
}

TEST(NonMaximumSuppression, ClassAwareKeepsOverlapsOfOtherClassesAgnosticDoesNot) {
  const std::vector<Detection> input{box(0, 0, 10, 10, 0.9f, 0), box(0, 0, 10, 10, 0.8f, 1),
                                     box(1, 1, 10, 10, 0.7f, 0)};
  std::vector<Detection> aware = input;
  non_maximum_suppression(aware, options_with(0.5f));
  ASSERT_EQ(aware.size(), 2u);
  EXPECT_EQ(aware[0].class_id, 0);
  EXPECT_EQ(aware[1].class_id, 1);
  std::vector<Detection> agnostic = input;
  non_maximum_suppression(agnostic, options_with(0.5f, 300, true));
  ASSERT_EQ(agnostic.size(), 1u);
  EXPECT_FLOAT_EQ(agnostic[0].score, 0.9f);
}

TEST(NonMaximumSuppression, ClassIdsOutsideTheBucketTableStillSeparateClasses) {
  std::vector<Detection> detections{box(0, 0, 10, 10, 0.9f, 1 << 20), box(0, 0, 10, 10, 0.8f, -3),
                                    box(0, 0, 10, 10, 0.7f, 1 << 20)};
  non_maximum_suppression(detections, options_with(0.5f));
  ASSERT_EQ(detections.size(), 2u);
  EXPECT_EQ(detections[0].class_id, 1 << 20);
  EXPECT_EQ(detections[1].class_id, -3);
}

TEST(NonMaximumSuppression, SuppressesOnlyAboveTheThreshold) {
  // IoU of these two is exactly 50 / 150 = 1/3.
  std::vector<Detection> at_threshold{box(0, 0, 10, 10, 0.9f), box(5, 0, 15, 10, 0.8f)};
  non_maximum_suppression(at_threshold, options_with(0.34f));
  EXPECT_EQ(at_threshold.size(), 2u);
  std::vector<Detection> above_threshold{box(0, 0, 10, 10, 0.9f), box(5, 0, 15, 10, 0.8f)};
  non_maximum_suppression(above_threshold, options_with(0.33f));
  EXPECT_EQ(above_threshold.size(), 1u);
}

TEST(NonMaximumSuppression, CapsAfterSuppressionInScoreOrder) {
  std::vector<Detection> detections;
  for (int i = 0; i < 10; ++i) {
    const auto offset = static_cast<float>(20 * i);
    detections.push_back(box(offset, 0, offset + 10, 10, 0.1f * static_cast<float>(i % 5) + 0.05f, i % 3));
  }
  detections.push_back(box(1, 0, 11, 10, 0.99f, 0));  // suppresses box 0, does not use a slot twice
  non_maximum_suppression(detections, options_with(0.5f, 4));
  ASSERT_EQ(detections.size(), 4u);
  EXPECT_FLOAT_EQ(detections[0].score, 0.99f);
  for (std::size_t i = 1; i < detections.size(); ++i) EXPECT_LE(detections[i].score, detections[i - 1].score);
  EXPECT_FLOAT_EQ(detections[1].score, 0.45f);
  EXPECT_FLOAT_EQ(detections[3].score, 0.35f);
}

TEST(NonMaximumSuppression, DisabledOnlySortsAndCaps) {
  std::vector<Detection> detections{box(0, 0, 10, 10, 0.2f), box(0, 0, 10, 10, 0.9f), box(0, 0, 10, 10, 0.5f)};
  PostprocessOptions options = options_with(0.1f, 2);
  options.nms = false;
  non_maximum_suppression(detections, options);
  ASSERT_EQ(detections.size(), 2u);
  EXPECT_FLOAT_EQ(detections[0].score, 0.9f);
  EXPECT_FLOAT_EQ(detections[1].score, 0.5f);
}

TEST(NonMaximumSuppression, NonPositiveCapMeansNoCap) {
  std::vector<Detection> detections{box(0, 0, 10, 10, 0.2f), box(20, 0, 30, 10, 0.9f), box(40, 0, 50, 10, 0.5f)};
  non_maximum_suppression(detections, options_with(0.5f, 0));
  EXPECT_EQ(detections.size(), 3u);
}

TEST(PostprocessOptions, ThresholdForUsesPerClassValuesWhenSet) {
  PostprocessOptions options;
  options.score_threshold = 0.25f;
  options.class_score_thresholds = {0.5f, -1.0f};
  EXPECT_FLOAT_EQ(options.threshold_for(0), 0.5f);
  EXPECT_FLOAT_EQ(options.threshold_for(1), 0.25f);  // negative: the global threshold
  EXPECT_FLOAT_EQ(options.threshold_for(7), 0.25f);  // missing entry
}

}  // namespace
}  // namespace detflow
