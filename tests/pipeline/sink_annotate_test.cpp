// Annotation: the shared frame is never touched, boxes land where the detections say,
// colours are stable per class, odd boxes are harmless; with tracking, ids in the captions,
// predicted boxes dashed, lines and zones where they are configured, with their counts.
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

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

cv::Vec3b bgr(const cv::Scalar& colour) {
  return {static_cast<uchar>(colour[0]), static_cast<uchar>(colour[1]), static_cast<uchar>(colour[2])};
}

track::Track tracked(std::uint64_t id, float x1, float y1, float x2, float y2, int detection_index,
                     bool predicted = false) {
  track::Track track;
  track.id = id;
  track.box = {x1, y1, x2, y2};
  track.score = 0.87f;
  track.class_id = 0;
  track.label = "person";
  track.detection_index = detection_index;
  track.predicted = predicted;
  track.state = predicted ? track::TrackState::lost : track::TrackState::confirmed;
  return track;
}

// One vertical line "door" at x = 100 and one square zone "bench" from (20, 40) to (60, 80).
track::AnalyticsSettings door_and_bench() {
  track::AnalyticsSettings settings;
  settings.lines.push_back(track::parse_line_spec("door=100,0,100,159"));
  settings.zones.push_back(track::parse_zone_spec("bench=20,40,60,40,60,80,20,80"));
  return settings;
}

track::CountsSnapshot counts_of(std::int64_t in, std::int64_t out, std::int64_t occupancy, std::int64_t entered) {
  track::CountsSnapshot counts = track::CountsSnapshot::with_names({"door"}, {"bench"});
  counts.lines[0].classes.push_back({0, "person", in, out});
  counts.zones[0].classes.push_back({0, "person", occupancy, entered});
  return counts;
}

TEST(AnnotateTracking, CaptionsCarryTheTrackId) {
  EXPECT_EQ(track_caption(tracked(12, 0, 0, 1, 1, 0)), "person 0.87 #12");
  AnnotationStyle no_ids;
  no_ids.show_track_id = false;
  EXPECT_EQ(track_caption(tracked(12, 0, 0, 1, 1, 0), no_ids), "person 0.87");
  const track::CountsSnapshot counts = counts_of(3, 2, 1, 5);
  EXPECT_EQ(line_caption("door", &counts.lines[0]), "door in 3 out 2");
  EXPECT_EQ(line_caption("door", nullptr), "door");
  EXPECT_EQ(zone_caption("bench", &counts.zones[0]), "bench 1 inside, 5 entered");
  EXPECT_EQ(zone_caption("bench", nullptr), "bench");
}

TEST(AnnotateTracking, ATrackedDetectionIsCaptionedWithItsId) {
  // The same box drawn as a plain detection and as a tracked one: only the caption differs
  // (it is longer: " #12"), the outline is the same.
  const std::vector<Detection> detections{box(40, 60, 100, 150, 0, 0.87f, "person")};
  const std::vector<track::Track> tracks{tracked(12, 40, 60, 100, 150, 0)};
  cv::Mat plain(160, 200, CV_8UC3, cv::Scalar(0, 0, 0));
  draw_detections(plain, detections);
  cv::Mat with_id = cv::Mat::zeros(160, 200, CV_8UC3);
  AnnotationLayers layers;
  layers.detections = detections;
  layers.tracks = tracks;
  draw_annotations(with_id, layers);
  EXPECT_EQ(with_id.at<cv::Vec3b>(100, 40), bgr(class_colour(0)));
  EXPECT_EQ(with_id.at<cv::Vec3b>(100, 70), cv::Vec3b(0, 0, 0));
  const cv::Rect caption_row(0, 40, 200, 20);
  EXPECT_GT(changed_pixels(with_id(caption_row), plain(caption_row)), 0) << "the id is written in the caption";
  const cv::Rect below_caption(0, 62, 200, 98);
  EXPECT_EQ(changed_pixels(with_id(below_caption), plain(below_caption)), 0) << "one box, drawn once";
}

TEST(AnnotateTracking, PredictedBoxesAreDashedDetectedOnesSolid) {
  AnnotationStyle style;
  style.show_label = false;
  const std::vector<track::Track> tracks{tracked(1, 20, 20, 120, 60, -1, /*predicted=*/true),
                                         tracked(2, 20, 100, 120, 140, 0)};
  const std::vector<Detection> detections{box(20, 100, 120, 140, 0, 0.87f, "person")};
  cv::Mat canvas = cv::Mat::zeros(160, 200, CV_8UC3);
  AnnotationLayers layers;
  layers.detections = detections;
  layers.tracks = tracks;
  draw_annotations(canvas, layers, style);
  int dashed_on = 0, solid_on = 0;
  for (int x = 22; x < 118; ++x) {
    dashed_on += canvas.at<cv::Vec3b>(20, x) == bgr(class_colour(0)) ? 1 : 0;
    solid_on += canvas.at<cv::Vec3b>(100, x) == bgr(class_colour(0)) ? 1 : 0;
  }
  EXPECT_EQ(solid_on, 96);
  EXPECT_GT(dashed_on, 30) << "dashes";
  EXPECT_LT(dashed_on, 80) << "and gaps";
}

TEST(AnnotateTracking, LinesAndZonesAreDrawnWhereConfiguredWithTheirCounts) {
  const track::AnalyticsSettings analytics = door_and_bench();
  const track::CountsSnapshot counts = counts_of(3, 2, 0, 5);
  cv::Mat canvas = cv::Mat::zeros(160, 200, CV_8UC3);
  AnnotationLayers layers;
  layers.analytics = &analytics;
  layers.counts = &counts;
  draw_annotations(canvas, layers);
  // The line: its whole length at x = 100, nothing a few pixels beside it (away from the arrow
  // and the caption).
  for (int y : {40, 120, 150}) {
    EXPECT_EQ(canvas.at<cv::Vec3b>(y, 100), bgr(line_colour())) << y;
    EXPECT_EQ(canvas.at<cv::Vec3b>(y, 94), cv::Vec3b(0, 0, 0)) << y;
  }
  // The arrow at its middle points to the "in" side: (dy, -dx) = +x for a line drawn downwards.
  EXPECT_NE(canvas.at<cv::Vec3b>(79, 108), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(canvas.at<cv::Vec3b>(79, 92), cv::Vec3b(0, 0, 0));
  // The caption next to the line's start: drawn text on the line's colour.
  const cv::Mat caption = canvas(cv::Rect(104, 4, 60, 14));
  EXPECT_GT(changed_pixels(caption, cv::Mat::zeros(caption.size(), CV_8UC3)), 300);
  // The zone: its outline in the empty-zone colour, its inside untouched below the caption.
  EXPECT_EQ(canvas.at<cv::Vec3b>(80, 40), bgr(zone_colour(false)));
  EXPECT_EQ(canvas.at<cv::Vec3b>(70, 20), bgr(zone_colour(false)));
  EXPECT_EQ(canvas.at<cv::Vec3b>(75, 40), cv::Vec3b(0, 0, 0));

  // Occupied: the outline changes colour; the caption's text changes with the counts.
  const track::CountsSnapshot occupied = counts_of(3, 2, 1, 6);
  cv::Mat second = cv::Mat::zeros(160, 200, CV_8UC3);
  layers.counts = &occupied;
  draw_annotations(second, layers);
  EXPECT_EQ(second.at<cv::Vec3b>(80, 40), bgr(zone_colour(true)));
  EXPECT_NE(zone_colour(true), zone_colour(false));

  // show_analytics = false draws none of it.
  AnnotationStyle without;
  without.show_analytics = false;
  cv::Mat third = cv::Mat::zeros(160, 200, CV_8UC3);
  draw_annotations(third, layers, without);
  EXPECT_EQ(cv::countNonZero(third.reshape(1)), 0);
}

TEST(AnnotateTracking, CountsAreDrawnOverTheBoxesAndTheLinesUnderThem) {
  // A person standing on the door line, their caption where the door's counts are: the counts
  // stay whole and readable, the box's outline crosses over the line.
  const track::AnalyticsSettings analytics = door_and_bench();
  const track::CountsSnapshot counts = counts_of(3, 2, 0, 5);
  AnnotationLayers layers;
  layers.analytics = &analytics;
  layers.counts = &counts;
  cv::Mat alone = cv::Mat::zeros(160, 200, CV_8UC3);
  draw_annotations(alone, layers);
  const std::vector<Detection> detections{box(90, 30, 190, 150, 0, 0.87f, "person")};
  const std::vector<track::Track> tracks{tracked(12, 90, 30, 190, 150, 0)};
  layers.detections = detections;
  layers.tracks = tracks;
  cv::Mat with_person = cv::Mat::zeros(160, 200, CV_8UC3);
  draw_annotations(with_person, layers);
  const cv::Rect counts_caption(104, 4, 60, 14);
  cv::Mat without_counts = cv::Mat::zeros(160, 200, CV_8UC3);
  AnnotationLayers person_only;
  person_only.detections = detections;
  person_only.tracks = tracks;
  draw_annotations(without_counts, person_only);
  ASSERT_GT(changed_pixels(without_counts(counts_caption), cv::Mat::zeros(counts_caption.size(), CV_8UC3)), 100)
      << "the person's caption does lie where the counts are";
  EXPECT_EQ(changed_pixels(with_person(counts_caption), alone(counts_caption)), 0) << "the counts are on top";
  ASSERT_NE(bgr(class_colour(0)), bgr(line_colour()));
  EXPECT_EQ(with_person.at<cv::Vec3b>(150, 100), bgr(class_colour(0))) << "the box's bottom edge over the line";
  EXPECT_EQ(with_person.at<cv::Vec3b>(100, 100), bgr(line_colour())) << "the line inside the box";
}

TEST(AnnotateTracking, CoordinatesAreScaledFromTheSourceSize) {
  // A source of 400x320 drawn on a 200x160 canvas: the line at x = 200 lands at x = 100.
  track::AnalyticsSettings analytics;
  analytics.lines.push_back(track::parse_line_spec("door=200,0,200,319"));
  const std::vector<Detection> detections{box(20, 40, 100, 200)};
  cv::Mat canvas = cv::Mat::zeros(160, 200, CV_8UC3);
  AnnotationLayers layers;
  layers.detections = detections;
  layers.analytics = &analytics;
  layers.source_size = cv::Size(400, 320);
  AnnotationStyle style;
  style.show_label = false;
  draw_annotations(canvas, layers, style);
  EXPECT_EQ(canvas.at<cv::Vec3b>(120, 100), bgr(line_colour()));
  EXPECT_EQ(canvas.at<cv::Vec3b>(60, 10), bgr(class_colour(0))) << "box left edge at 20 / 2";
  EXPECT_EQ(canvas.at<cv::Vec3b>(60, 30), cv::Vec3b(0, 0, 0));
}

TEST(AnnotateTracking, TheLayersOfAResultAreItsOwn) {
  const FramePtr frame = test::make_test_frame(0, 64, 48);
  FrameResult result = test::make_result(frame, {box(1, 2, 3, 4)});
  result.tracks.push_back(tracked(7, 1, 2, 3, 4, 0));
  const track::AnalyticsSettings analytics = door_and_bench();
  const track::CountsSnapshot counts = counts_of(0, 0, 0, 0);
  result.analytics = &analytics;
  result.counts = &counts;
  const AnnotationLayers layers = annotation_layers(result);
  EXPECT_EQ(layers.detections.size(), 1u);
  EXPECT_EQ(layers.tracks.size(), 1u);
  EXPECT_EQ(layers.analytics, &analytics);
  EXPECT_EQ(layers.counts, &counts);
  EXPECT_EQ(layers.source_size, cv::Size(64, 48));
  cv::Mat canvas;
  copy_and_annotate(frame->image, layers, canvas);
  EXPECT_EQ(canvas.size(), frame->image.size());
}

TEST(AnnotateTracking, OddGeometryIsHarmlessAndDrawingDoesNotGrowMemory) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  track::AnalyticsSettings analytics;
  track::LineSettings line;
  line.name = "odd";
  line.start = {nan, 0};
  line.end = {1, 1};
  analytics.lines.push_back(line);
  track::LineSettings far;
  far.name = "far";
  far.start = {-1e9f, -1e9f};
  far.end = {1e9f, 1e9f};
  analytics.lines.push_back(far);
  track::ZoneSettings zone;
  zone.name = "z";
  zone.polygon = {{0, 0}, {1e9f, 0}, {0, nan}};
  analytics.zones.push_back(zone);
  const std::vector<track::Track> tracks{tracked(1, nan, 0, 5, 5, -1, true), tracked(2, -50, -50, 500, 500, -1, true)};
  cv::Mat canvas = cv::Mat::zeros(40, 50, CV_8UC3);
  AnnotationLayers layers;
  layers.tracks = tracks;
  layers.analytics = &analytics;
  EXPECT_NO_THROW(draw_annotations(canvas, layers));
  cv::Mat empty;
  EXPECT_NO_THROW(draw_annotations(empty, layers));
  // The canvas is drawn into in place, frame after frame.
  const uchar* data = canvas.data;
  for (int frame = 0; frame < 50; ++frame) draw_annotations(canvas, layers);
  EXPECT_EQ(canvas.data, data);
}

// The video writer converts the frame as it is and redraws only annotation_regions(): on random
// scenes (boxes overlapping, crossing the edges, dashed, captioned; lines and zones) the
// regions' patches must give the very pixels of drawing on the whole frame.
TEST(AnnotateRegions, PatchesGiveThePixelsOfTheWholeCanvas) {
  cv::RNG random(14);
  const track::AnalyticsSettings analytics = door_and_bench();
  const track::CountsSnapshot counts = counts_of(3, 2, 1, 5);
  for (int scene = 0; scene < 60; ++scene) {
    const cv::Size size(320 + 2 * random.uniform(0, 64), 240 + 2 * random.uniform(0, 48));
    cv::Mat source(size, CV_8UC3);
    random.fill(source, cv::RNG::UNIFORM, 0, 256);
    std::vector<Detection> detections;
    std::vector<track::Track> tracks;
    const int boxes = random.uniform(0, 25);
    for (int index = 0; index < boxes; ++index) {
      const float x = random.uniform(-40.f, static_cast<float>(size.width));
      const float y = random.uniform(-40.f, static_cast<float>(size.height));
      const float width = random.uniform(1.f, 160.f), height = random.uniform(1.f, 200.f);
      detections.push_back(box(x, y, x + width, y + height, random.uniform(0, 80), random.uniform(0.f, 1.f), "person"));
      if (random.uniform(0, 3) == 0) {
        tracks.push_back(tracked(static_cast<std::uint64_t>(index + 1), x, y, x + width, y + height, index,
                                 random.uniform(0, 2) == 0));
      }
    }
    AnnotationStyle style;
    style.line_thickness = random.uniform(1, 5);
    style.font_scale = random.uniform(0.3, 1.2);
    AnnotationLayers layers;
    layers.detections = detections;
    layers.tracks = tracks;
    layers.source_size = cv::Size(200, 160);  // the lines' and zones' space: scaled to the canvas
    if (scene % 2 == 0) {
      layers.analytics = &analytics;
      layers.counts = &counts;
    }
    if (scene % 4 == 0) layers.source_size = {};  // no scaling

    cv::Mat whole = source.clone();
    draw_annotations(whole, layers, style);
    cv::Mat patched = source.clone();
    const std::vector<cv::Rect> regions = annotation_regions(size, layers, style, 2);
    for (std::size_t first = 0; first < regions.size(); ++first) {
      EXPECT_EQ(regions[first] & cv::Rect(cv::Point(0, 0), size), regions[first]);
      EXPECT_EQ(regions[first].x % 2 + regions[first].y % 2 + regions[first].width % 2 + regions[first].height % 2, 0);
      for (std::size_t other = first + 1; other < regions.size(); ++other)
        EXPECT_TRUE((regions[first] & regions[other]).empty()) << "regions are disjoint";
      cv::Mat patch = source(regions[first]).clone();
      draw_annotations_region(patch, regions[first], size, layers, style);
      patch.copyTo(patched(regions[first]));
    }
    ASSERT_EQ(changed_pixels(whole, patched), 0) << "scene " << scene << ", " << regions.size() << " regions";
  }
}

// The writer relies on this: OpenCV's I420 of a part at even coordinates is that part of the
// whole frame's I420.
TEST(AnnotateRegions, I420OfAPartIsThatPartOfTheWholeI420) {
  cv::Mat frame(96, 128, CV_8UC3);
  cv::RNG(7).fill(frame, cv::RNG::UNIFORM, 0, 256);
  cv::Mat whole;
  cv::cvtColor(frame, whole, cv::COLOR_BGR2YUV_I420);
  const cv::Rect part(6, 10, 38, 22);
  cv::Mat converted;
  cv::cvtColor(frame(part), converted, cv::COLOR_BGR2YUV_I420);
  for (int row = 0; row < part.height; ++row)
    for (int column = 0; column < part.width; ++column)
      ASSERT_EQ(converted.at<uchar>(row, column), whole.at<uchar>(part.y + row, part.x + column));
  const uchar* u_whole = whole.ptr(frame.rows);
  const uchar* u_part = converted.ptr(part.height);
  const int chroma = (frame.cols / 2) * (frame.rows / 2), part_chroma = (part.width / 2) * (part.height / 2);
  for (int row = 0; row < part.height / 2; ++row) {
    for (int column = 0; column < part.width / 2; ++column) {
      const int in_whole = (part.y / 2 + row) * (frame.cols / 2) + part.x / 2 + column;
      const int in_part = row * (part.width / 2) + column;
      ASSERT_EQ(u_part[in_part], u_whole[in_whole]);
      ASSERT_EQ(u_part[part_chroma + in_part], u_whole[chroma + in_whole]);
    }
  }
}

}  // namespace
}  // namespace detflow
