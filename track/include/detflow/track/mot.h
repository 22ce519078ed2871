// detflow/track/mot.h — MOTChallenge text I/O, the tracking field's lingua franca.
//
// Input rows (detections or ground truth), one box per line, commas or blanks between fields:
//   frame, id, x, y, w, h [, score [, class [, ...]]]
// frame counts from 1; x, y is the top-left corner, w, h the size, in pixels; id is -1 for
// detections; a missing score is 1; a missing or negative class is class 0; further columns
// are ignored. Blank lines and lines starting with '#' are skipped.
// Output rows (a tracker's result): frame,id,x,y,w,h,score,class,-1,-1
//
// The parser is strict and total: any other text is a detflow::Error whose one-line message
// names the source, the line number and the offending text; it never reads past the input,
// and frame numbers are bounded (so a hostile file cannot make the reader allocate without limit).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "detflow/post/detection.h"
#include "detflow/track/tracker.h"

namespace detflow::track {

inline constexpr std::int64_t max_mot_frame = 10'000'000;

struct MotRow {
  std::int64_t frame = 1;  // from 1
  std::int64_t id = -1;
  float x = 0, y = 0, width = 0, height = 0;
  float score = 1;
  int class_id = 0;
};

// Parses every row. `source_name` names the input in error messages (a file name).
std::vector<MotRow> parse_mot(std::istream& input, const std::string& source_name);
std::vector<MotRow> parse_mot(std::string_view text, const std::string& source_name);
// Reads a file (detflow::Error when it cannot be opened).
std::vector<MotRow> read_mot_file(const std::string& path);

// Detections of one frame.
struct MotFrame {
  std::int64_t frame = 1;
  std::vector<Detection> detections;  // in file order; label empty
};

// Groups rows by frame, ascending; frames without rows are absent.
std::vector<MotFrame> group_by_frame(const std::vector<MotRow>& rows);

// Writes one output row per track: frame,id,x,y,w,h,score,class,-1,-1 (two decimals for pixels,
// four for the score).
void write_mot_rows(std::ostream& output, std::int64_t frame, const std::vector<Track>& tracks);

}  // namespace detflow::track
