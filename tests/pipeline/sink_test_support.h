// sink_test_support.h — frames, results and ffprobe helpers for the sink tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "detflow/pipeline/frame.h"

namespace detflow::test {

// A frame whose content changes with `index` (a moving gradient and a square), so the
// encoder produces real, distinct frames.
FramePtr make_test_frame(std::int64_t index, int width, int height, std::string name = {});
// Uniform random noise: the least compressible content, to fill a disk quickly.
FramePtr make_noise_frame(std::int64_t index, int width, int height);
FrameResult make_result(FramePtr frame, std::vector<Detection> detections = {});

struct ProbedVideo {
  std::int64_t frames = -1;  // decoded frames (ffprobe -count_frames)
  std::string codec;
  int width = 0;
  int height = 0;
  std::string frame_rate;  // e.g. "10/1"
};
// True when ffprobe is on PATH.
bool have_ffprobe();
// Decodes the whole file with ffprobe; nullopt when ffprobe cannot read it at all.
std::optional<ProbedVideo> probe_video(const std::filesystem::path& path);

// Runs a shell command, returning its exit status and standard output.
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult run_command(const std::string& command);

// A 1 MiB tmpfs mounted in a fresh temporary folder while the object lives (a few frames of
// noise or some JSON lines fill it). Needs root (mount): mounted() is false otherwise, and
// tests skip.
class SmallDisk {
 public:
  explicit SmallDisk(const std::string& prefix);
  ~SmallDisk();
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  bool mounted() const { return mounted_; }
  const std::filesystem::path& folder() const { return folder_; }

 private:
  std::filesystem::path folder_;
  bool mounted_ = false;
};

}  // namespace detflow::test
