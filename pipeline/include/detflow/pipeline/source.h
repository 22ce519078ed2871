// detflow/pipeline/source.h — where frames come from.
//
// Kinds (chosen from the source string by open_source):
//   video file (GStreamer decodebin through appsink; OpenCV VideoCapture as fallback),
//   a single image, a folder or glob of images, a camera ("0", "/dev/video0"; V4L2 with
//   requested size and fps), network URLs (rtsp://, http(s)://, udp://) and any GStreamer
//   launch description ("gst:..." ending in or given an appsink).
// Live sources (camera, network, live GStreamer) are read as fast as they produce; file
// sources (files, images) are read on demand. SourceSettings::mode overrides the guess.
//
// Thread-safety: read() is called from one thread (the graph's source node); stop() may
// be called from any thread (signal handling) and makes a blocked read() return false.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "detflow/pipeline/frame.h"

namespace detflow {

enum class SourceMode { automatic, live, file };

struct SourceSettings {
  std::string uri;  // path, glob, camera index/device, URL or "gst:<launch description>"
  SourceMode mode = SourceMode::automatic;
  int width = 0;  // cameras: requested size (0 = device default)
  int height = 0;
  double fps = 0;     // cameras: requested rate (0 = device default)
  bool loop = false;  // files: start again at the end (demos, soak tests)
  // Video files: "auto" (FFmpeg through OpenCV, pixel-identical to Python's
  // cv2.VideoCapture and so to references made that way; GStreamer decodebin when FFmpeg
  // cannot open the file), "opencv" (FFmpeg only) or "gstreamer" (decodebin only, which can
  // pick hardware decoders on boards; its colour conversion differs by about 1 level).
  std::string video_reader = "auto";
  // Live sources (camera, rtsp, http streams, udp, live gst:) are supervised: after an
  // error, the end of the stream or a stall they are reopened, waiting reconnect_initial
  // seconds, doubling to reconnect_max (each wait +-20 % jitter). max_reconnects bounds the
  // consecutive failed reopenings before read() throws Error(ErrorKind::source_lost)
  // (0 = retry forever). stall_timeout: seconds without a frame that count as a loss
  // (0 = max(5 s, 10 frame intervals)).
  double reconnect_initial = 1.0;
  double reconnect_max = 30.0;
  int max_reconnects = 0;
  double stall_timeout = 0;
};

struct SourceInfo {
  std::string kind;         // "video file", "image", "image folder", "camera", "rtsp", "http", "udp", "gstreamer"
  std::string description;  // e.g. "vtest.avi (768x576, 10 fps, 795 frames) via GStreamer"
  bool live = false;
  double fps = 0;  // 0 when unknown
  int width = 0;   // 0 when unknown until the first frame
  int height = 0;
  std::int64_t frame_count = -1;  // -1 when unknown or live
};

// Connection state of a source. Files and images are `up` from open to end; live sources
// that reconnect go up -> down (error, end of stream or stall) -> connecting -> up.
enum class SourceState { connecting, up, down };
// "connecting", "up", "down".
const char* to_string(SourceState state);

// Problems met while reading that did not end the stream, and the supervision of live
// sources (reconnects after errors, restarts by the stall watchdog).
struct SourceCounters {
  std::int64_t corrupt_frames = 0;  // undecodable frames or images skipped
  std::int64_t read_errors = 0;
  std::string last_warning;  // e.g. "stream ended early at frame 400 of 795 (truncated file?)"
  SourceState state = SourceState::up;
  std::int64_t reconnects = 0;      // successful reopenings after a loss
  std::int64_t stalls = 0;          // restarts because no frame came for source.stall_timeout
  double seconds_disconnected = 0;  // total time spent down or connecting after the first frame
  std::string last_error;           // why the source was last lost, one line; empty if never
};

class Source {
 public:
  virtual ~Source() = default;
  virtual const SourceInfo& info() const = 0;
  // Fills `frame` (image, pts_ms, name; index and captured are set by the caller) with the
  // next frame. Returns false at the end of the stream or after stop().
  virtual bool read(Frame& frame) = 0;
  virtual void stop() = 0;
  virtual SourceCounters counters() const = 0;
};

// Opens the source or throws detflow::Error naming the source and why (missing file,
// camera that does not exist, unknown URL scheme, GStreamer pipeline that fails, ...).
std::unique_ptr<Source> open_source(const SourceSettings& settings);

}  // namespace detflow
