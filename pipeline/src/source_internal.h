// source_internal.h — the Source implementations behind open_source(). Internal to
// detflow_pipeline (and its tests).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
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
  // When given and set while the source starts (a reopening after a loss, interrupted by
  // stop()), the start gives up at once with an Error.
  const std::atomic<bool>* cancel = nullptr;
  // A supervised source leaves reporting the end of its stream to the supervisor (one log
  // line per state change); the reason is still in counters().last_warning.
  bool supervised = false;
};

// Throws detflow::Error with GStreamer's own message when the pipeline cannot start.
// `live_by_nature`, when given, tells whether the pipeline itself is live (it did not
// preroll, or options.info.live said so) whatever SourceMode made of it.
std::unique_ptr<Source> open_gstreamer_source(const GstreamerSourceOptions& options, bool* live_by_nature = nullptr);

// Launch descriptions used by open_source (exposed for tests and `detflow inspect`).
// Appends "! videoconvert ! video/x-raw,format=BGR ! appsink name=detflow_sink" unless the
// description already has an appsink.
std::string complete_gstreamer_launch(const std::string& description);

// Video file or camera through OpenCV (FFmpeg / V4L2). Throws detflow::Error when it does not open.
// `path` may also be a URL FFmpeg reads (http://.../clip.mp4); `kind` goes to SourceInfo.
std::unique_ptr<Source> open_opencv_video_file(const std::filesystem::path& path, const SourceSettings& settings,
                                               const std::string& kind = "video file");
// The container's frame count as FFmpeg reads it (exact for MP4 and AVI); -1 when unknown.
std::int64_t container_frame_count(const std::filesystem::path& path);
std::unique_ptr<Source> open_opencv_camera(int index, const SourceSettings& settings);

// Images: files in order (already sorted). kind is "image" or "image folder".
std::unique_ptr<Source> open_image_source(std::vector<std::filesystem::path> files, const std::string& kind,
                                          const std::string& label, const SourceSettings& settings);

bool is_image_file(const std::filesystem::path& path);

// Network URLs: rtsp(s)://, http(s):// (MJPEG streams and files, see source_network.cpp),
// udp:// (MPEG transport stream). Live streams come back supervised.
std::unique_ptr<Source> open_network_source(const std::string& scheme, const SourceSettings& settings);

// What an http(s):// URL serves, from the first bytes (GStreamer typefind): the media type
// such as "multipart/x-mixed-replace" (MJPEG), "video/quicktime" (MP4) or "video/mpegts".
// Throws Error(ErrorKind::source) when nothing arrives within `timeout`.
std::string probe_http_media_type(const std::string& url, std::chrono::milliseconds timeout);

// Opens a live source once more after a loss. `cancel` is set when stop() is called during
// the attempt; `timeout` bounds the wait for the first frame. Throws Error when it fails.
using SourceOpener =
    std::function<std::unique_ptr<Source>(const std::atomic<bool>& cancel, std::chrono::milliseconds timeout)>;

// Supervision of a live source (SourceSettings: reconnect_initial, reconnect_max,
// max_reconnects, stall_timeout), see source_supervisor.cpp.
struct SupervisionSettings {
  std::string label;  // the user's source string, for messages
  std::chrono::duration<double> reconnect_initial{1.0};
  std::chrono::duration<double> reconnect_max{30.0};
  int max_reconnects = 0;                          // failed reopenings in a row; 0 = forever
  std::chrono::duration<double> stall_timeout{0};  // 0 = max(5 s, 10 frame intervals)
  // A clean end of stream (no error) ends reading instead of reopening: a user's gst:
  // pipeline that ends (num-buffers=N) meant to end; errors and stalls still reopen it.
  bool end_of_stream_is_final = false;
};
SupervisionSettings supervision_settings(const SourceSettings& settings);
// settings.stall_timeout, or when 0: max(5 s, 10 frame intervals at info.fps).
std::chrono::duration<double> stall_timeout_for(const SupervisionSettings& settings, const SourceInfo& info);

// Wraps `first` (already open and delivering): when its read() returns false without a
// stop (error, end of stream) or blocks longer than the stall timeout, the wrapper closes
// it and calls `reopen` with exponential backoff and jitter until a new one delivers,
// without returning from read() in between. Frame pts keep increasing across reopenings.
// read() throws Error(ErrorKind::source_lost) after max_reconnects failed reopenings in a
// row. stop() interrupts a read, a backoff wait and a reopening in progress.
std::unique_ptr<Source> supervise_source(std::unique_ptr<Source> first, SourceOpener reopen,
                                         const SupervisionSettings& settings);

}  // namespace detflow::detail
