// MOTChallenge text: parsing (valid layouts, one-line errors with line numbers), grouping by
// frame, and writing tracker output.
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "detflow/error.h"
#include "detflow/track/mot.h"

namespace detflow::track {
namespace {

TEST(MotParser, ReadsDetectionsAndGroundTruthLayouts) {
  const std::string text =
      "1,-1,1366.39,572.19,97.77,249.89,0.9406,-1,-1,-1\n"
      "# a comment\n"
      "\n"
      "2 5 10 20 30 40 1 1 0.86\r\n"
      "1,-1,0,0,10,10\n";
  const auto rows = parse_mot(std::string_view(text), "det.txt");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].frame, 1);
  EXPECT_EQ(rows[0].id, -1);
  EXPECT_FLOAT_EQ(rows[0].width, 97.77f);
  EXPECT_FLOAT_EQ(rows[0].score, 0.9406f);
  EXPECT_EQ(rows[0].class_id, 0) << "class -1 (unknown) is class 0";
  EXPECT_EQ(rows[1].frame, 2);
  EXPECT_EQ(rows[1].id, 5);
  EXPECT_EQ(rows[1].class_id, 1);
  EXPECT_FLOAT_EQ(rows[2].score, 1.0f) << "a missing score is 1";
  std::istringstream stream(text);
  EXPECT_EQ(parse_mot(stream, "det.txt").size(), 3u);
}

void expect_parse_error(const std::string& text, const std::string& expected) {
  try {
    parse_mot(std::string_view(text), "det.txt");
    ADD_FAILURE() << "accepted: " << text;
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(expected), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(MotParser, BadRowsAreOneLineErrorsWithLineNumberAndText) {
  expect_parse_error("1,-1,0,0,10,10,0.9\n1,-1,0,0,10\n", "det.txt:2: 5 fields");
  expect_parse_error("1,-1,0,zero,10,10,0.9\n", "det.txt:1: field y 'zero'");
  expect_parse_error("0,-1,0,0,10,10,0.9\n", "frame '0'");
  expect_parse_error("1.5,-1,0,0,10,10,0.9\n", "frame '1.5'");
  expect_parse_error("99999999999,-1,0,0,10,10,0.9\n", "frame '99999999999'");
  expect_parse_error("1,-1,0,0,-10,10,0.9\n", "negative box size");
  expect_parse_error("1,-1,0,0,10,10,nan\n", "not a finite number");
  expect_parse_error("1,-1,0,0,10,10,0.9,car\n", "field class 'car'");
  expect_parse_error("1,-1,0,0,10,10,0.9\n\n2,-1,0,0,\x01\x02,10\n", "det.txt:3:");
  expect_parse_error(std::string("1,-1,0,0,10,10,0.9\n") + std::string(300, '7') + "\n", "...");
}

TEST(MotParser, GroupsByFrameInAscendingOrder) {
  const auto frames =
      group_by_frame(parse_mot(std::string_view("3,-1,0,0,10,10,0.5\n1,-1,1,2,3,4,0.9\n3,-1,5,5,1,1,0.7\n"), "x"));
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].frame, 1);
  EXPECT_FLOAT_EQ(frames[0].detections[0].x2, 4.0f);
  EXPECT_FLOAT_EQ(frames[0].detections[0].y2, 6.0f);
  EXPECT_EQ(frames[1].frame, 3);
  ASSERT_EQ(frames[1].detections.size(), 2u);
  EXPECT_FLOAT_EQ(frames[1].detections[1].score, 0.7f) << "file order within a frame";
}

TEST(MotWriter, WritesTheTenColumnLayoutThatParsesBack) {
  Track track;
  track.id = 12;
  track.box = {10.5f, 20, 40.25f, 120};
  track.score = 0.875f;
  track.class_id = 0;
  std::ostringstream out;
  write_mot_rows(out, 7, {track});
  EXPECT_EQ(out.str(), "7,12,10.50,20.00,29.75,100.00,0.8750,0,-1,-1\n");
  const auto rows = parse_mot(std::string_view(out.str()), "tracks.txt");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, 12);
  EXPECT_FLOAT_EQ(rows[0].height, 100.0f);
}

}  // namespace
}  // namespace detflow::track
