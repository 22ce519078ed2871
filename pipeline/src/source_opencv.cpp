#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <opencv2/videoio.hpp>

#include "detflow/error.h"
#include "source_internal.h"

namespace detflow::detail {
namespace {

// FFmpeg reports a damaged packet as a failed read; a few more attempts skip past it
// before we call the stream finished.
constexpr int kConsecutiveFailuresBeforeEnd = 8;

class OpenCvCaptureSource final : public CountingSource {
 public:
  OpenCvCaptureSource(cv::VideoCapture capture, SourceInfo info, std::string label, bool loop)
      : capture_(std::move(capture)),
        info_(std::move(info)),
        label_(std::move(label)),
        loop_(loop),
        camera_(info_.kind == "camera") {}

  const SourceInfo& info() const override { return info_; }

  bool read(Frame& frame) override {
    int failures = 0;
    while (!stopped()) {
      if (capture_.read(frame.image) && !frame.image.empty()) {
        // FFmpeg's position includes the container's start offset (an MP4 edit list or
        // B-frame delay puts frame 0 at 40-80 ms): report times from the first frame.
        const double position_ms = capture_.get(cv::CAP_PROP_POS_MSEC);
        if (camera_ || position_ms < 0) {
          frame.pts_ms = -1.0;
        } else {
          if (first_position_ms_ < 0) first_position_ms_ = position_ms;
          frame.pts_ms = position_ms - first_position_ms_;
          if (info_.live) pace(frame.pts_ms);
        }
        ++frames_delivered_;
        return true;
      }
      if (camera_) {
        record_error("camera read failed");
        return false;
      }
      const bool more_expected = info_.frame_count > 0 && frames_delivered_ + failures < info_.frame_count;
      if (more_expected && ++failures < kConsecutiveFailuresBeforeEnd) {
        with_counters([](SourceCounters& counters) { ++counters.corrupt_frames; });
        continue;
      }
      if (loop_ && frames_delivered_ > 0 && capture_.set(cv::CAP_PROP_POS_FRAMES, 0)) continue;
      if (info_.frame_count > 0 && frames_delivered_ < info_.frame_count) {
        warn_ended_early(label_, frames_delivered_, info_.frame_count);
      }
      return false;
    }
    return false;
  }

 private:
  // A file read as a live source (--live) plays at its own rate, as a camera or stream
  // would deliver it: frame N is handed over N frame-times after the first. When the file
  // starts again (loop), so does the clock.
  void pace(double media_ms) {
    const auto now = Clock::now();
    if (pace_origin_ == Clock::time_point{} || media_ms < last_media_ms_) {
      pace_origin_ = now;
      pace_media_origin_ms_ = media_ms;
    }
    last_media_ms_ = media_ms;
    const auto due = pace_origin_ + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double, std::milli>(media_ms - pace_media_origin_ms_));
    while (!stopped() && Clock::now() < due) {
      std::this_thread::sleep_for(std::min<Clock::duration>(due - Clock::now(), std::chrono::milliseconds(50)));
    }
  }

  void record_error(const std::string& message) {
    with_counters([&](SourceCounters& counters) {
      ++counters.read_errors;
      counters.last_warning = message;
    });
  }

  cv::VideoCapture capture_;
  SourceInfo info_;
  std::string label_;
  bool loop_ = false;
  std::int64_t frames_delivered_ = 0;
  double first_position_ms_ = -1.0;  // FFmpeg position of the first frame read
  const bool camera_;
  Clock::time_point pace_origin_{};  // live files: when the frame at pace_media_origin_ms_ was due
  double pace_media_origin_ms_ = 0;
  double last_media_ms_ = 0;
};

std::string describe(const std::string& label, const SourceInfo& info, const std::string& backend) {
  std::ostringstream text;
  text << label << " (" << info.width << "x" << info.height;
  if (info.fps > 0) text << ", " << std::round(info.fps * 100) / 100 << " fps";
  if (info.frame_count >= 0) text << ", " << info.frame_count << " frames";
  text << (info.live ? ", live" : "") << ") via OpenCV " << backend;
  return text.str();
}

}  // namespace

std::unique_ptr<Source> open_opencv_video_file(const std::filesystem::path& path, const SourceSettings& settings,
                                               const std::string& kind) {
  cv::VideoCapture capture;
  try {
    capture.open(path.string(), cv::CAP_FFMPEG);
  } catch (const cv::Exception& error) {
    throw Error("source '" + settings.uri + "': OpenCV cannot open it: " + error.what());
  }
  if (!capture.isOpened()) throw Error("source '" + settings.uri + "': OpenCV (FFmpeg) cannot open it as a video");
  SourceInfo info;
  info.kind = kind;
  info.live = settings.mode == SourceMode::live;
  info.width = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_WIDTH));
  info.height = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_HEIGHT));
  info.fps = capture.get(cv::CAP_PROP_FPS);
  const double frames = capture.get(cv::CAP_PROP_FRAME_COUNT);
  info.frame_count = info.live || !(frames > 0) ? -1 : static_cast<std::int64_t>(std::llround(frames));
  info.description = describe(path.filename().string(), info, "FFmpeg");
  return std::make_unique<OpenCvCaptureSource>(std::move(capture), std::move(info), settings.uri, settings.loop);
}

std::int64_t container_frame_count(const std::filesystem::path& path) {
  try {
    cv::VideoCapture capture(path.string(), cv::CAP_FFMPEG);
    const double frames = capture.isOpened() ? capture.get(cv::CAP_PROP_FRAME_COUNT) : -1.0;
    return frames > 0 ? static_cast<std::int64_t>(std::llround(frames)) : -1;
  } catch (const cv::Exception&) {
    return -1;
  }
}

std::unique_ptr<Source> open_opencv_camera(int index, const SourceSettings& settings) {
  cv::VideoCapture capture;
  try {
    capture.open(index, cv::CAP_V4L2);
  } catch (const cv::Exception& error) {
    throw Error("source '" + settings.uri + "': camera " + std::to_string(index) +
                " cannot be opened: " + error.what());
  }
  if (!capture.isOpened()) {
    throw Error("source '" + settings.uri + "': camera /dev/video" + std::to_string(index) +
                " cannot be opened (busy, or not a capture device)");
  }
  if (settings.width > 0) capture.set(cv::CAP_PROP_FRAME_WIDTH, settings.width);
  if (settings.height > 0) capture.set(cv::CAP_PROP_FRAME_HEIGHT, settings.height);
  if (settings.fps > 0) capture.set(cv::CAP_PROP_FPS, settings.fps);
  // A camera queues frames in driver buffers; one buffer keeps what we read recent.
  capture.set(cv::CAP_PROP_BUFFERSIZE, 1);
  SourceInfo info;
  info.kind = "camera";
  info.live = settings.mode != SourceMode::file;
  info.width = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_WIDTH));
  info.height = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_HEIGHT));
  info.fps = capture.get(cv::CAP_PROP_FPS);
  info.description = describe("/dev/video" + std::to_string(index), info, "V4L2");
  return std::make_unique<OpenCvCaptureSource>(std::move(capture), std::move(info), settings.uri, false);
}

}  // namespace detflow::detail
