// jsonl_fuzzer — the JSON Lines detection reader (tests/support/detection_match.h, the reader of
// ../shared/reference files and of detflow's own --json output in the reference tests) and the
// matcher it feeds, on arbitrary text: read_detection_stream, then match_detections of the
// stream against itself.
// Accepted failure: std::exception (the reader documents none; nlohmann::json's parse and type
// errors and std::runtime_error are what it throws on malformed lines).
#include <cstddef>
#include <cstdint>
#include <exception>

#include "detection_match.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static detflow::fuzz::ScratchFile jsonl_file(".jsonl");
  try {
    const auto stream = detflow::test::read_detection_stream(jsonl_file.write(detflow::fuzz::as_text(data, size)));
    const auto result = detflow::test::match_detections(stream, stream);
    (void)result.to_string();
  } catch (const std::exception&) {
  }
  return 0;
}
