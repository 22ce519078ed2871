// source_internal.h — the Source implementations behind open_source(). Internal to
// detflow_pipeline (and its tests).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "detflow/pipeline/source.h"

namespace detflow::detail {

// What every Source implementation shares: the stop flag and the counters. stop() and
// counters() are safe from any thread; the reading thread changes the counters only
// inside with_counters(), under the same lock (which may also guard a subclass's own
// error state, touched inside the same call).
class CountingSource : public Source {
 public:
  void stop() override { stopped_.store(true); }
  SourceCounters counters() const override {
    std::lock_guard lock(counters_mutex_);
    return counters_;
  }

 protected:
  bool stopped() const { return stopped_.load(); }
  template <typename Action>
  decltype(auto) with_counters(Action&& action) {
    std::lock_guard lock(counters_mutex_);
    return action(counters_);
  }
  // Records and logs that a stream gave fewer frames than its container announced.
  void warn_ended_early(const std::string& label, std::int64_t delivered, std::int64_t expected);

 private:
  std::atomic<bool> stopped_{false};
  mutable std::mutex counters_mutex_;
  SourceCounters counters_;
};

// A property set on a named element after gst_parse_launch, so paths and URLs never have
// to survive the launch syntax's quoting.
struct GstProperty {
  std::string element;  // name= of the element in the launch description
  std::string property;
  std::string value;  // parsed like gst-launch does (gst_util_set_object_arg)
};

struct GstreamerSourceOptions {
  std::string launch;  // must contain an appsink; "detflow_sink" is preferred when several
  std::vector<GstProperty> properties;
  std::string label;  // the user's source string, for messages
  SourceInfo info;    // kind and description prefix; live is the guess for SourceMode::automatic
  SourceMode mode = SourceMode::automatic;
  bool loop = false;
  // Frames in the stream when known from elsewhere (the container's own count); otherwise
  // the count is estimated from duration x rate, with a tolerance for the warning about
  // streams that end early.
  std::int64_t known_frame_count = -1;
  std::chrono::milliseconds start_timeout{15000};  // to reach PLAYING and deliver the first frame
};

// Throws detflow::Error with GStreamer's own message when the pipeline cannot start.
std::unique_ptr<Source> open_gstreamer_source(const GstreamerSourceOptions& options);

// Launch descriptions used by open_source (exposed for tests and `detflow inspect`).
// Appends "! videoconvert ! video/x-raw,format=BGR ! appsink name=detflow_sink" unless the
// description already has an appsink.
std::string complete_gstreamer_launch(const std::string& description);

// Video file or camera through OpenCV (FFmpeg / V4L2). Throws detflow::Error when it does not open.
std::unique_ptr<Source> open_opencv_video_file(const std::filesystem::path& path, const SourceSettings& settings);
// The container's frame count as FFmpeg reads it (exact for MP4 and AVI); -1 when unknown.
std::int64_t container_frame_count(const std::filesystem::path& path);
std::unique_ptr<Source> open_opencv_camera(int index, const SourceSettings& settings);

// Images: files in order (already sorted). kind is "image" or "image folder".
std::unique_ptr<Source> open_image_source(std::vector<std::filesystem::path> files, const std::string& kind,
                                          const std::string& label, const SourceSettings& settings);

bool is_image_file(const std::filesystem::path& path);

}  // namespace detflow::detail
