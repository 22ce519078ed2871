// The annotated-video sink: frames are annotated straight into GStreamer buffers and
// pushed into appsrc ! [videoconvert !] encoder ! muxer ! filesink (I420 converted here when
// the frame size allows, see start()). The buffers come from a pool of our own, which also
// bounds how many frames GStreamer holds (see frames_in_gstreamer()).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <spdlog/spdlog.h>
#include <opencv2/imgproc.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/sinks.h"
#include "gstreamer_support.h"

namespace detflow {

namespace {

struct GstObjectDeleter {
  void operator()(gpointer object) const {
    if (object) gst_object_unref(object);
  }
};
using ElementPtr = std::unique_ptr<GstElement, GstObjectDeleter>;
using BusPtr = std::unique_ptr<GstBus, GstObjectDeleter>;
using PoolPtr = std::unique_ptr<GstBufferPool, GstObjectDeleter>;

struct MessageDeleter {
  void operator()(GstMessage* message) const {
    if (message) gst_message_unref(message);
  }
};
using MessagePtr = std::unique_ptr<GstMessage, MessageDeleter>;

// Frames handed to GStreamer (queued in appsrc or being encoded) at most, as a memory budget:
// two (one encoding, the next one queued or being annotated) are enough to keep the encoder
// busy whenever annotating a frame takes less time than encoding one; up to 5 where frames are
// small. At 1920x1080 an I420 frame is 3 MiB, so the budget allows 2 where 5 used to be queued
// (the encoder's own reference frames come on top); 768x576 keeps its 5.
constexpr std::size_t gstreamer_frames_budget_bytes = std::size_t{8} << 20;
constexpr int max_frames_in_gstreamer = 5;
int frames_in_gstreamer(std::size_t frame_bytes) {
  const std::size_t fitting = gstreamer_frames_budget_bytes / std::max<std::size_t>(1, frame_bytes);
  return static_cast<int>(std::clamp<std::size_t>(fitting, 2, max_frames_in_gstreamer));
}
// A healthy encoder drains a few frames in well under a second; a pipeline that makes no
// progress for this long is stuck, and the run must not hang on it.
constexpr auto stall_timeout = std::chrono::seconds(60);
constexpr GstClockTime end_of_stream_timeout = 120 * GST_SECOND;
// Rows of an annotated region converted to I420 at a time (even).
constexpr int converted_band_rows = 16;

std::string lowercase_extension(const std::filesystem::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension;
}

// x264 threads for a frame size. Up to 1080p one thread: ultrafast encodes 768x576 in
// 2.3 ms of CPU that way, and in 2.8 ms with x264's automatic sliced threads (measured with
// gst-launch on vtest.avi), CPU the inference workers need. Larger frames use them all, so
// that one encoder thread does not cap the frame rate.
int encoder_threads(int width, int height) { return static_cast<long>(width) * height <= 1920L * 1088 ? 1 : 0; }

// The encoder and muxer part of the GStreamer description for a container. x264 gets
// I420 so every player can decode the stream (BGR input would make it pick 4:4:4).
std::string encoder_and_muxer(const std::string& extension, int keyframe_interval, int threads) {
  const std::string h264 =
      "video/x-raw,format=I420 ! x264enc speed-preset=ultrafast tune=zerolatency threads=" + std::to_string(threads) +
      " key-int-max=" + std::to_string(keyframe_interval) + " ! h264parse ! ";
  if (extension == ".mp4") return h264 + "mp4mux fragment-duration=1000";
  if (extension == ".mkv") return h264 + "matroskamux";
  if (extension == ".avi") return "video/x-raw,format=I420 ! jpegenc quality=90 ! avimux";
  throw Error("video output: unsupported extension '" + extension + "'; accepted: .mp4, .mkv, .avi");
}

std::string describe_error_message(GstMessage* message) {
  GError* error = nullptr;
  gchar* debug = nullptr;
  gst_message_parse_error(message, &error, &debug);
  std::string text = error ? error->message : "unknown GStreamer error";
  if (debug) {
    spdlog::debug("GStreamer error details: {}", debug);
    g_free(debug);
  }
  if (error) g_error_free(error);
  return text;
}

class VideoSink final : public Sink {
 public:
  VideoSink(std::filesystem::path path, const AnnotationStyle& style) : path_(std::move(path)), style_(style) {
    encoder_and_muxer(lowercase_extension(path_), 1, 0);  // rejects an unsupported extension now
  }

  ~VideoSink() override {
    try {
      finish();
    } catch (const std::exception& error) {
      spdlog::error("{}", error.what());
    }
  }

  std::string name() const override { return "video " + path_.string(); }

  void open(const SourceInfo& source) override {
    std::lock_guard lock(mutex_);
    detail::initialise_gstreamer("the video output");
    const double fps = source.fps > 0 && std::isfinite(source.fps) ? source.fps : default_video_fps;
    gst_util_double_to_fraction(fps, &rate_numerator_, &rate_denominator_);
    if (rate_numerator_ <= 0 || rate_denominator_ <= 0) {
      rate_numerator_ = static_cast<int>(default_video_fps);
      rate_denominator_ = 1;
    }
    if (source.width > 0 && source.height > 0) start(source.width, source.height);
  }

  bool consume(const FrameResult& result) override {
    std::lock_guard lock(mutex_);
    if (finished_) return true;
    if (!failure_.empty()) throw Error(failure_);
    if (!result.frame || result.frame->image.empty()) return true;
    const cv::Mat bgr = as_bgr(*result.frame);
    if (!pipeline_) start(bgr.cols, bgr.rows);
    throw_if_bus_error();

    GstBuffer* buffer = acquire_buffer();
    GstMapInfo map;
    if (!gst_buffer_map(buffer, &map, GST_MAP_WRITE)) {
      gst_buffer_unref(buffer);
      fail("cannot map a frame buffer");
    }
    if (direct_i420_) {
      write_i420(bgr, result, map.data);
    } else {
      cv::Mat target(height_, width_, CV_8UC3, map.data, stride_);
      draw_into(bgr, result, target);
    }
    gst_buffer_unmap(buffer, &map);

    const auto frame_time = [this](std::int64_t frame_number) {
      return gst_util_uint64_scale(static_cast<guint64>(frame_number),
                                   GST_SECOND * static_cast<guint64>(rate_denominator_),
                                   static_cast<guint64>(rate_numerator_));
    };
    GST_BUFFER_PTS(buffer) = frame_time(frames_pushed_);
    GST_BUFFER_DTS(buffer) = GST_BUFFER_PTS(buffer);
    GST_BUFFER_DURATION(buffer) = frame_time(frames_pushed_ + 1) - frame_time(frames_pushed_);
    const GstFlowReturn flow = gst_app_src_push_buffer(GST_APP_SRC(source_.get()), buffer);  // takes the buffer
    if (flow != GST_FLOW_OK) {
      throw_if_bus_error();
      fail(std::string("the encoder refused a frame (") + gst_flow_get_name(flow) + ")");
    }
    ++frames_pushed_;
    return true;
  }

  void finish() override {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    if (!pipeline_) return;
    std::string finish_failure;
    if (failure_.empty()) {
      // The muxer writes its closing index on EOS; the file is only complete once the EOS
      // has travelled through filesink, which the bus reports.
      gst_app_src_end_of_stream(GST_APP_SRC(source_.get()));
      MessagePtr message(gst_bus_timed_pop_filtered(bus_.get(), end_of_stream_timeout,
                                                    static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR)));
      if (!message) {
        finish_failure = "cannot finish video output " + path_.string() + ": the encoder did not finish within " +
                         std::to_string(end_of_stream_timeout / GST_SECOND) + " s";
      } else if (GST_MESSAGE_TYPE(message.get()) == GST_MESSAGE_ERROR) {
        finish_failure = "cannot finish video output " + path_.string() + ": " + describe_error_message(message.get());
      }
    }
    gst_element_set_state(pipeline_.get(), GST_STATE_NULL);  // every buffer is back in the pool now
    release_pipeline();
    if (!finish_failure.empty()) throw Error(finish_failure);
    spdlog::debug("video output {}: {} frames", path_.string(), frames_pushed_);
  }

 private:
  void start(int width, int height) {
    width_ = width;
    height_ = height;
    // The encoders take I420. OpenCV's SIMD cvtColor writes it straight into the buffer at
    // a third of the CPU cost of GStreamer's generic videoconvert (measured on 768x576:
    // 0.3 ms against 1 ms per frame), when GStreamer's I420 layout is OpenCV's packed planes:
    // a width that is a multiple of 8 (so every plane stride is 4-aligned) and an even height.
    direct_i420_ = width % 8 == 0 && height % 2 == 0;
    if (direct_i420_) {
      stride_ = static_cast<std::size_t>(width);
      frame_bytes_ = static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3 / 2;
    } else {
      stride_ = static_cast<std::size_t>(GST_ROUND_UP_4(width * 3));  // GStreamer's default row stride for BGR
      frame_bytes_ = stride_ * static_cast<std::size_t>(height);
    }
    const int keyframe_interval =
        std::max(1, static_cast<int>(std::lround(2.0 * rate_numerator_ / std::max(1, rate_denominator_))));
    const std::string description =
        std::string("appsrc name=source ! ") + (direct_i420_ ? "" : "videoconvert ! ") +
        encoder_and_muxer(lowercase_extension(path_), keyframe_interval, encoder_threads(width, height)) +
        " ! filesink name=file";
    GError* parse_error = nullptr;
    ElementPtr pipeline(gst_parse_launch(description.c_str(), &parse_error));
    if (parse_error) {
      const std::string reason = parse_error->message;
      g_error_free(parse_error);
      throw Error("cannot create video output " + path_.string() + ": " + reason +
                  " (are GStreamer's x264, jpeg and mux plugins installed?)");
    }
    if (!pipeline) throw Error("cannot create video output " + path_.string() + ": GStreamer refused the pipeline");
    ElementPtr source(gst_bin_get_by_name(GST_BIN(pipeline.get()), "source"));
    ElementPtr file(gst_bin_get_by_name(GST_BIN(pipeline.get()), "file"));
    g_object_set(file.get(), "location", path_.c_str(), nullptr);

    GstCaps* caps = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, direct_i420_ ? "I420" : "BGR", "width",
                                        G_TYPE_INT, width, "height", G_TYPE_INT, height, "framerate", GST_TYPE_FRACTION,
                                        rate_numerator_, rate_denominator_, nullptr);
    // block=false: a blocked push could never return once a downstream element failed; the
    // pool bounds the frames in GStreamer instead (acquire_buffer() watches the bus while it
    // waits), so appsrc's own limit is only a backstop.
    const int pooled_frames = frames_in_gstreamer(frame_bytes_);
    g_object_set(source.get(), "caps", caps, "format", GST_FORMAT_TIME, "is-live", FALSE, "block", FALSE, "max-bytes",
                 static_cast<guint64>(frame_bytes_) * pooled_frames, nullptr);
    // Allocated once, reused for the whole run: a fresh multi-megabyte allocation per frame
    // (freed by GStreamer's thread) left several frames' worth of freed heap resident.
    pool_.reset(gst_buffer_pool_new());
    GstStructure* config = gst_buffer_pool_get_config(pool_.get());
    gst_buffer_pool_config_set_params(config, caps, static_cast<guint>(frame_bytes_), pooled_frames, pooled_frames);
    gst_caps_unref(caps);
    if (!gst_buffer_pool_set_config(pool_.get(), config) || !gst_buffer_pool_set_active(pool_.get(), TRUE)) {
      pool_.reset();
      throw Error("cannot create video output " + path_.string() + ": cannot allocate " +
                  std::to_string(pooled_frames) + " frame buffers of " + std::to_string(frame_bytes_) + " bytes");
    }

    bus_.reset(gst_element_get_bus(pipeline.get()));
    pipeline_ = std::move(pipeline);
    source_ = std::move(source);
    if (gst_element_set_state(pipeline_.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      MessagePtr message(gst_bus_pop_filtered(bus_.get(), GST_MESSAGE_ERROR));
      const std::string reason = message ? describe_error_message(message.get()) : "the pipeline did not start";
      gst_element_set_state(pipeline_.get(), GST_STATE_NULL);
      release_pipeline();
      throw Error("cannot create video output " + path_.string() + ": " + reason);
    }
  }

  void release_pipeline() {
    source_.reset();
    bus_.reset();
    pipeline_.reset();
    if (pool_) gst_buffer_pool_set_active(pool_.get(), FALSE);
    pool_.reset();
  }

  // Records the failure (consume() and finish() see it) and throws it.
  [[noreturn]] void fail(const std::string& reason) {
    failure_ = "cannot write video output " + path_.string() + ": " + reason;
    throw Error(failure_);
  }

  void throw_if_bus_error() {
    MessagePtr message(gst_bus_pop_filtered(bus_.get(), GST_MESSAGE_ERROR));
    if (message) fail(describe_error_message(message.get()));
  }

  // A free buffer of the pool: when GStreamer holds them all, waits for the encoder to release
  // one, watching the bus meanwhile (a blocking acquire could never return once a downstream
  // element failed).
  GstBuffer* acquire_buffer() {
    GstBufferPoolAcquireParams parameters{};
    parameters.flags = GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT;
    const auto deadline = std::chrono::steady_clock::now() + stall_timeout;
    while (true) {
      GstBuffer* buffer = nullptr;
      const GstFlowReturn flow = gst_buffer_pool_acquire_buffer(pool_.get(), &buffer, &parameters);
      if (flow == GST_FLOW_OK && buffer) return buffer;
      if (flow != GST_FLOW_EOS) fail(std::string("cannot get a frame buffer (") + gst_flow_get_name(flow) + ")");
      MessagePtr message(gst_bus_timed_pop_filtered(bus_.get(), 2 * GST_MSECOND, GST_MESSAGE_ERROR));
      if (message) fail(describe_error_message(message.get()));
      if (std::chrono::steady_clock::now() > deadline) {
        fail("the encoder made no progress for " + std::to_string(stall_timeout.count()) + " s");
      }
    }
  }

  cv::Mat as_bgr(const Frame& frame) {
    const cv::Mat& image = frame.image;
    if (image.type() == CV_8UC3) return image;
    cv::Mat bgr;
    if (image.type() == CV_8UC1) {
      cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR);
    } else if (image.type() == CV_8UC4) {
      cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR);
    } else {
      fail("frame " + std::to_string(frame.index) + " is not an 8-bit image (OpenCV type " +
           std::to_string(image.type()) + ")");
    }
    return bgr;
  }

  // The annotated frame as I420 at `planes` (Y, then U, then V, unpadded) without a full-size
  // annotated copy (6 MiB at 1920x1080): the frame is converted as it is, then only the regions
  // the annotations change (annotation_regions(), drawn exactly as on the whole frame) are
  // copied, drawn and converted again over it. OpenCV's I420 conversion of a part at even
  // coordinates gives the bytes of the same part of a whole-frame conversion (Y per pixel, U
  // and V per 2x2 block), so the output is the one the full copy gave.
  void write_i420(const cv::Mat& bgr, const FrameResult& result, unsigned char* planes) {
    cv::Mat whole(height_ * 3 / 2, width_, CV_8UC1, planes);
    if (bgr.cols != width_ || bgr.rows != height_) {  // another size (image folders): fitted on a full canvas
      annotated_.create(height_, width_, CV_8UC3);
      draw_into(bgr, result, annotated_);
      cv::cvtColor(annotated_, whole, cv::COLOR_BGR2YUV_I420);
      return;
    }
    cv::cvtColor(bgr, whole, cv::COLOR_BGR2YUV_I420);
    const AnnotationLayers layers = annotation_layers(result);
    const cv::Size size(width_, height_);
    unsigned char* const u_plane = planes + static_cast<std::size_t>(width_) * height_;
    unsigned char* const v_plane = u_plane + static_cast<std::size_t>(width_ / 2) * (height_ / 2);
    for (const cv::Rect& region : annotation_regions(size, layers, style_, 2)) {
      const auto bytes = static_cast<std::size_t>(region.area()) * 3;
      if (patch_buffer_.size() < bytes) patch_buffer_.resize(bytes);
      cv::Mat patch(region.size(), CV_8UC3, patch_buffer_.data());
      bgr(region).copyTo(patch);
      draw_annotations_region(patch, region, size, layers, style_);
      // Converted in bands of a few rows, so the scratch stays small whatever the region.
      for (int top = 0; top < region.height; top += converted_band_rows) {
        const int rows = std::min(converted_band_rows, region.height - top);
        converted_.create(rows * 3 / 2, region.width, CV_8UC1);
        cv::cvtColor(patch.rowRange(top, top + rows), converted_, cv::COLOR_BGR2YUV_I420);
        const unsigned char* converted = converted_.ptr();
        const int half_width = region.width / 2;
        for (int row = 0; row < rows; ++row) {
          std::memcpy(planes + static_cast<std::size_t>(region.y + top + row) * width_ + region.x,
                      converted + static_cast<std::size_t>(row) * region.width, region.width);
        }
        const unsigned char* u_band = converted + static_cast<std::size_t>(rows) * region.width;
        const unsigned char* v_band = u_band + static_cast<std::size_t>(half_width) * (rows / 2);
        for (int row = 0; row < rows / 2; ++row) {
          const std::size_t offset = static_cast<std::size_t>((region.y + top) / 2 + row) * (width_ / 2) + region.x / 2;
          std::memcpy(u_plane + offset, u_band + static_cast<std::size_t>(row) * half_width, half_width);
          std::memcpy(v_plane + offset, v_band + static_cast<std::size_t>(row) * half_width, half_width);
        }
      }
    }
  }

  void draw_into(const cv::Mat& bgr, const FrameResult& result, cv::Mat& target) {
    const AnnotationLayers layers = annotation_layers(result);
    if (bgr.cols == width_ && bgr.rows == height_) {
      copy_and_annotate(bgr, layers, target, style_);
      return;
    }
    // A frame of another size (image folders): fit it to the video; the drawing scales the
    // boxes, lines and zones from the frame's size to the video's.
    cv::resize(bgr, target, target.size(), 0, 0, cv::INTER_AREA);
    draw_annotations(target, layers, style_);
  }

  const std::filesystem::path path_;
  const AnnotationStyle style_;
  std::mutex mutex_;  // consume() and an emergency finish() from another thread
  ElementPtr pipeline_;
  ElementPtr source_;
  BusPtr bus_;
  PoolPtr pool_;  // the frame buffers handed to appsrc; returned by GStreamer when it is done
  int width_ = 0;
  int height_ = 0;
  std::size_t stride_ = 0;
  std::size_t frame_bytes_ = 0;
  bool direct_i420_ = false;  // frames converted to I420 here rather than by videoconvert
  cv::Mat annotated_;         // direct_i420_, frames of another size only: the fitted, annotated frame, reused
  std::vector<unsigned char> patch_buffer_;  // direct_i420_: the largest annotated region so far, BGR
  cv::Mat converted_;                        // direct_i420_: a band of a region in I420
  int rate_numerator_ = static_cast<int>(default_video_fps);
  int rate_denominator_ = 1;
  std::int64_t frames_pushed_ = 0;
  bool finished_ = false;
  std::string failure_;
};

}  // namespace

std::unique_ptr<Sink> make_video_sink(const std::filesystem::path& path, const AnnotationStyle& style) {
  return std::make_unique<VideoSink>(path, style);
}

}  // namespace detflow
