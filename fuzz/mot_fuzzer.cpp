// mot_fuzzer — the tracking module's text inputs (track/include/detflow/track/), on arbitrary
// text:
//   MOTChallenge rows: parse_mot from a string and from a stream must agree row for row;
//     every row's frame is within [1, max_mot_frame]; group_by_frame keeps every row;
//   the --line and --zone flags: parse_line_spec and parse_zone_spec on the input's first line,
//     and parse_anchor on it.
// Accepted failure: detflow::Error, whose message must be one line (mot.h promises it).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "detflow/error.h"
#include "detflow/track/analytics.h"
#include "detflow/track/mot.h"
#include "fuzz_support.h"

namespace {

void check_one_line(const detflow::Error& error) {
  const std::string message = error.what();
  if (message.find('\n') != std::string::npos) detflow::fuzz::property_violated("multi-line error: " + message);
}

bool same_row(const detflow::track::MotRow& a, const detflow::track::MotRow& b) {
  // Bitwise float comparison: NaN == NaN here, and both parsers read the same digits.
  auto same = [](float x, float y) { return std::memcmp(&x, &y, sizeof x) == 0; };
  return a.frame == b.frame && a.id == b.id && same(a.x, b.x) && same(a.y, b.y) && same(a.width, b.width) &&
         same(a.height, b.height) && same(a.score, b.score) && a.class_id == b.class_id;
}

void parse_rows(std::string_view text) {
  std::vector<detflow::track::MotRow> from_text;
  std::string text_error;
  try {
    from_text = detflow::track::parse_mot(text, "fuzz.txt");
  } catch (const detflow::Error& error) {
    check_one_line(error);
    text_error = error.what();
  }
  std::vector<detflow::track::MotRow> from_stream;
  std::string stream_error;
  try {
    std::istringstream stream{std::string(text)};
    from_stream = detflow::track::parse_mot(stream, "fuzz.txt");
  } catch (const detflow::Error& error) {
    check_one_line(error);
    stream_error = error.what();
  }
  if (text_error.empty() != stream_error.empty()) {
    detflow::fuzz::property_violated("text and stream parsers disagree: '" + text_error + "' vs '" + stream_error +
                                     "'");
  }
  if (!text_error.empty()) return;
  if (from_text.size() != from_stream.size()) detflow::fuzz::property_violated("row counts differ");
  std::size_t grouped = 0;
  for (std::size_t row = 0; row < from_text.size(); ++row) {
    if (!same_row(from_text[row], from_stream[row])) {
      detflow::fuzz::property_violated("row " + std::to_string(row) + " differs");
    }
    if (from_text[row].frame < 1 || from_text[row].frame > detflow::track::max_mot_frame) {
      detflow::fuzz::property_violated("frame out of range: " + std::to_string(from_text[row].frame));
    }
  }
  for (const auto& frame : detflow::track::group_by_frame(from_text)) grouped += frame.detections.size();
  if (grouped != from_text.size()) detflow::fuzz::property_violated("group_by_frame lost rows");
}

void parse_flags(std::string_view text) {
  const std::string first_line(text.substr(0, text.find('\n')));
  try {
    (void)detflow::track::parse_line_spec(first_line);
  } catch (const detflow::Error& error) {
    check_one_line(error);
  }
  try {
    (void)detflow::track::parse_zone_spec(first_line);
  } catch (const detflow::Error& error) {
    check_one_line(error);
  }
  try {
    (void)detflow::track::parse_anchor(first_line);
  } catch (const detflow::Error& error) {
    check_one_line(error);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = detflow::fuzz::as_text(data, size);
  parse_rows(text);
  parse_flags(text);
  return 0;
}
