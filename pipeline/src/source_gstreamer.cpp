#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <spdlog/spdlog.h>
#include <opencv2/imgproc.hpp>

#include "detflow/error.h"
#include "gstreamer_support.h"
#include "source_internal.h"

namespace detflow::detail {
namespace {

constexpr const char* kSinkName = "detflow_sink";
// How often a blocked read() looks at the stop flag and the bus.
constexpr GstClockTime kPullTimeout = 100 * GST_MSECOND;

template <typename T>
struct GstUnref {
  void operator()(T* object) const {
    if (object) gst_object_unref(object);
  }
};
struct SampleUnref {
  void operator()(GstSample* sample) const {
    if (sample) gst_sample_unref(sample);
  }
};
using SamplePtr = std::unique_ptr<GstSample, SampleUnref>;

std::string take_error_text(GError* error, gchar* debug) {
  std::string text = error ? error->message : "unknown error";
  if (debug && *debug) {
    // The debug string names the element and the cause; its first line is enough.
    std::string details = debug;
    details = details.substr(0, details.find('\n'));
    if (details.size() > 160) details = details.substr(0, 160) + "...";
    text += " (" + details + ")";
  }
  if (error) g_error_free(error);
  g_free(debug);
  return text;
}

bool from_decoder(GstMessage* message) {
  if (!message->src || !GST_IS_ELEMENT(message->src)) return false;
  GstElementFactory* factory = gst_element_get_factory(GST_ELEMENT(message->src));
  if (!factory) return false;
  const gchar* klass = gst_element_factory_get_metadata(factory, GST_ELEMENT_METADATA_KLASS);
  return klass && std::string(klass).find("Decoder") != std::string::npos;
}

GstElement* find_app_sink(GstElement* pipeline) {
  if (!GST_IS_BIN(pipeline)) return GST_IS_APP_SINK(pipeline) ? GST_ELEMENT(gst_object_ref(pipeline)) : nullptr;
  if (GstElement* named = gst_bin_get_by_name(GST_BIN(pipeline), kSinkName)) {
    if (GST_IS_APP_SINK(named)) return named;
    gst_object_unref(named);
  }
  GstIterator* iterator = gst_bin_iterate_sinks(GST_BIN(pipeline));
  GValue item = G_VALUE_INIT;
  GstElement* found = nullptr;
  while (!found && gst_iterator_next(iterator, &item) == GST_ITERATOR_OK) {
    auto* element = GST_ELEMENT(g_value_get_object(&item));
    if (GST_IS_APP_SINK(element)) found = GST_ELEMENT(gst_object_ref(element));
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(iterator);
  return found;
}

std::string describe_size(const SourceInfo& info) {
  std::ostringstream text;
  text << " (";
  if (info.width > 0) text << info.width << "x" << info.height;
  if (info.fps > 0) text << ", " << std::round(info.fps * 100) / 100 << " fps";
  if (info.frame_count >= 0) text << ", " << info.frame_count << " frames";
  text << (info.live ? ", live" : "") << ") via GStreamer";
  return text.str();
}

class GstreamerSource final : public CountingSource {
 public:
  explicit GstreamerSource(const GstreamerSourceOptions& options)
      : label_(options.label),
        loop_(options.loop),
        supervised_(options.supervised),
        known_frame_count_(options.known_frame_count) {
    info_ = options.info;
    GError* parse_error = nullptr;
    pipeline_ = gst_parse_launch(options.launch.c_str(), &parse_error);
    if (parse_error) {
      const std::string message = take_error_text(parse_error, nullptr);
      close();
      throw Error("source '" + label_ + "': GStreamer pipeline '" + options.launch + "' is invalid: " + message);
    }
    if (!pipeline_) throw Error("source '" + label_ + "': GStreamer pipeline '" + options.launch + "' is invalid");
    if (pipeline_ && g_object_is_floating(pipeline_)) gst_object_ref_sink(pipeline_);
    for (const auto& property : options.properties) {
      GstElement* element =
          GST_IS_BIN(pipeline_) ? gst_bin_get_by_name(GST_BIN(pipeline_), property.element.c_str()) : nullptr;
      if (!element) {
        close();
        throw Error("source '" + label_ + "': no element named '" + property.element + "' in the GStreamer pipeline");
      }
      gst_util_set_object_arg(G_OBJECT(element), property.property.c_str(), property.value.c_str());
      gst_object_unref(element);
    }
    app_sink_ = find_app_sink(pipeline_);
    if (!app_sink_) {
      close();
      throw Error("source '" + label_ +
                  "': the GStreamer pipeline has no appsink (end it with 'appsink name=" + kSinkName + "')");
    }
    bus_ = gst_element_get_bus(pipeline_);
    // Until liveness is known, behave like a file: a few decoded frames ahead, no drops.
    configure_app_sink(false);
    start(options);
  }

  ~GstreamerSource() override { close(); }

  const SourceInfo& info() const override { return info_; }
  bool live_by_nature() const { return live_by_nature_; }

  bool read(Frame& frame) override {
    if (pending_) {
      SamplePtr sample = std::move(pending_);
      convert(sample.get(), frame);
      return true;
    }
    while (!stopped()) {
      SamplePtr sample{gst_app_sink_try_pull_sample(GST_APP_SINK(app_sink_), kPullTimeout)};
      const bool bus_error = drain_bus();
      if (sample) {
        convert(sample.get(), frame);
        return true;
      }
      if (bus_error) {
        end_of_stream();
        return false;
      }
      if (gst_app_sink_is_eos(GST_APP_SINK(app_sink_))) {
        if (loop_ && !info_.live && frames_delivered_ > 0 && restart()) continue;
        end_of_stream();
        return false;
      }
    }
    return false;
  }

 private:
  void configure_app_sink(bool live) {
    // sync=false: frames are wanted as soon as decoded, not at their presentation time.
    // Live: one buffer, the oldest dropped, so capture never blocks on us and latency stays
    // bounded. Files: a short queue gives back-pressure to the decoder. The appsink's caps
    // are left as the description sets them: ours ends in format=BGR, a user's appsink may
    // take RGB/BGRx/GRAY8 (converted in convert()).
    g_object_set(app_sink_, "sync", FALSE, "emit-signals", FALSE, "max-buffers", live ? 1u : 4u, "drop",
                 live ? TRUE : FALSE, nullptr);
  }

  void start(const GstreamerSourceOptions& options) {
    const GstStateChangeReturn paused = gst_element_set_state(pipeline_, GST_STATE_PAUSED);
    if (paused == GST_STATE_CHANGE_FAILURE) fail_to_start("cannot start");
    // A source that does not preroll is live; so are the kinds live by nature (network).
    bool live = paused == GST_STATE_CHANGE_NO_PREROLL || options.info.live;
    const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
    if (paused == GST_STATE_CHANGE_ASYNC) {
      // In short slices, so a cancelled start (stop() during a reopening) ends promptly.
      GstStateChangeReturn settled = GST_STATE_CHANGE_ASYNC;
      while (settled == GST_STATE_CHANGE_ASYNC && std::chrono::steady_clock::now() < deadline) {
        if (cancelled(options)) fail_to_start("start was cancelled");
        settled = gst_element_get_state(pipeline_, nullptr, nullptr, kPullTimeout);
      }
      if (settled == GST_STATE_CHANGE_FAILURE) fail_to_start("cannot start");
      if (settled == GST_STATE_CHANGE_ASYNC) fail_to_start("did not start within the time limit");
      live = live || settled == GST_STATE_CHANGE_NO_PREROLL;
    }
    live_by_nature_ = live;
    if (options.mode == SourceMode::live) live = true;
    if (options.mode == SourceMode::file) live = false;
    info_.live = live;
    configure_app_sink(live);

    if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) fail_to_start("cannot play");
    // The first frame tells the size and rate (sinks want them in open()) and proves the
    // source delivers.
    while (!pending_) {
      if (cancelled(options)) fail_to_start("start was cancelled");
      pending_.reset(gst_app_sink_try_pull_sample(GST_APP_SINK(app_sink_), kPullTimeout));
      if (drain_bus() && !pending_) fail_to_start("failed");
      if (!pending_ && gst_app_sink_is_eos(GST_APP_SINK(app_sink_))) fail_to_start("delivers no frames");
      if (!pending_ && std::chrono::steady_clock::now() > deadline) fail_to_start("delivered no frame in time");
    }
    read_stream_properties(pending_.get());
    info_.description = label_ + describe_size(info_);
  }

  static bool cancelled(const GstreamerSourceOptions& options) { return options.cancel && options.cancel->load(); }

  // Errors met while starting are the source's (network down, no frame): exit code 5.
  [[noreturn]] void fail_to_start(const std::string& what) {
    drain_bus();
    const std::string reason = with_counters(
        [&](SourceCounters& counters) { return first_error_.empty() ? counters.last_warning : first_error_; });
    close();
    throw Error(ErrorKind::source,
                "source '" + label_ + "': GStreamer pipeline " + what + (reason.empty() ? "" : ": " + reason));
  }

  void read_stream_properties(GstSample* sample) {
    GstVideoInfo video;
    if (GstCaps* caps = gst_sample_get_caps(sample); caps && gst_video_info_from_caps(&video, caps)) {
      info_.width = GST_VIDEO_INFO_WIDTH(&video);
      info_.height = GST_VIDEO_INFO_HEIGHT(&video);
      if (GST_VIDEO_INFO_FPS_D(&video) > 0 && GST_VIDEO_INFO_FPS_N(&video) > 0) {
        info_.fps = static_cast<double>(GST_VIDEO_INFO_FPS_N(&video)) / GST_VIDEO_INFO_FPS_D(&video);
      }
    }
    info_.frame_count = -1;
    if (info_.live) return;
    if (known_frame_count_ > 0) {
      info_.frame_count = known_frame_count_;
      frame_count_exact_ = true;
      return;
    }
    gint64 frames = -1;
    if (gst_element_query_duration(pipeline_, GST_FORMAT_DEFAULT, &frames) && frames > 0) {
      info_.frame_count = frames;
      frame_count_exact_ = true;
      return;
    }
    gint64 duration_ns = -1;
    if (info_.fps > 0 && gst_element_query_duration(pipeline_, GST_FORMAT_TIME, &duration_ns) && duration_ns > 0) {
      info_.frame_count = std::llround(static_cast<double>(duration_ns) * info_.fps / static_cast<double>(GST_SECOND));
    }
  }

  void convert(GstSample* sample, Frame& frame) {
    GstCaps* caps = gst_sample_get_caps(sample);
    GstBuffer* buffer = gst_sample_get_buffer(sample);
    GstVideoInfo video;
    if (!caps || !buffer || !gst_video_info_from_caps(&video, caps)) {
      throw Error("source '" + label_ + "': the appsink delivered a sample without video caps");
    }
    GstMapInfo map;
    if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) throw Error("source '" + label_ + "': cannot map a buffer");
    const int width = GST_VIDEO_INFO_WIDTH(&video);
    const int height = GST_VIDEO_INFO_HEIGHT(&video);
    const auto stride = static_cast<std::size_t>(GST_VIDEO_INFO_PLANE_STRIDE(&video, 0));
    const GstVideoFormat format = GST_VIDEO_INFO_FORMAT(&video);
    auto* data = static_cast<void*>(map.data + GST_VIDEO_INFO_PLANE_OFFSET(&video, 0));
    try {
      switch (format) {
        case GST_VIDEO_FORMAT_BGR:
          cv::Mat(height, width, CV_8UC3, data, stride).copyTo(frame.image);
          break;
        case GST_VIDEO_FORMAT_RGB:
          cv::cvtColor(cv::Mat(height, width, CV_8UC3, data, stride), frame.image, cv::COLOR_RGB2BGR);
          break;
        case GST_VIDEO_FORMAT_BGRx:
        case GST_VIDEO_FORMAT_BGRA:
          cv::cvtColor(cv::Mat(height, width, CV_8UC4, data, stride), frame.image, cv::COLOR_BGRA2BGR);
          break;
        case GST_VIDEO_FORMAT_RGBx:
        case GST_VIDEO_FORMAT_RGBA:
          cv::cvtColor(cv::Mat(height, width, CV_8UC4, data, stride), frame.image, cv::COLOR_RGBA2BGR);
          break;
        case GST_VIDEO_FORMAT_I420:
        case GST_VIDEO_FORMAT_YV12:
        case GST_VIDEO_FORMAT_NV12:
          convert_planar_yuv(video, map.data, format, frame.image);
          break;
        case GST_VIDEO_FORMAT_GRAY8:
          cv::cvtColor(cv::Mat(height, width, CV_8UC1, data, stride), frame.image, cv::COLOR_GRAY2BGR);
          break;
        default:
          gst_buffer_unmap(buffer, &map);
          throw Error("source '" + label_ + "': the appsink delivers " + gst_video_format_to_string(format) +
                      "; expected BGR (end the pipeline with 'videoconvert ! video/x-raw,format=BGR ! appsink')");
      }
    } catch (const cv::Exception& error) {
      gst_buffer_unmap(buffer, &map);
      throw Error("source '" + label_ + "': cannot convert a frame: " + error.what());
    }
    gst_buffer_unmap(buffer, &map);
    const GstClockTime pts = GST_BUFFER_PTS(buffer);
    frame.pts_ms = GST_CLOCK_TIME_IS_VALID(pts) ? static_cast<double>(pts) / 1.0e6 : -1.0;
    ++frames_delivered_;
  }

  // 4:2:0 YUV to BGR with OpenCV (BT.601, limited range, as FFmpeg's swscale does by
  // default). OpenCV wants the planes contiguous; decoders usually give exactly that, else
  // the planes are gathered first.
  void convert_planar_yuv(const GstVideoInfo& video, const guint8* data, GstVideoFormat format, cv::Mat& bgr) {
    const int width = GST_VIDEO_INFO_WIDTH(&video);
    const int height = GST_VIDEO_INFO_HEIGHT(&video);
    const int chroma_width = (width + 1) / 2;
    const int chroma_height = (height + 1) / 2;
    const bool semi_planar = format == GST_VIDEO_FORMAT_NV12;
    const auto plane_rows = [&](int plane) { return plane == 0 ? height : chroma_height; };
    const auto plane_bytes_per_row = [&](int plane) {
      return plane == 0 ? width : (semi_planar ? 2 * chroma_width : chroma_width);
    };
    const int planes = semi_planar ? 2 : 3;
    if ((width % 2) != 0 || (height % 2) != 0) {
      throw Error("source '" + label_ + "': odd frame size " + std::to_string(width) + "x" + std::to_string(height) +
                  " in 4:2:0 (end the pipeline with videoconvert ! video/x-raw,format=BGR)");
    }
    // The whole frame packed as OpenCV expects: Y rows, then the chroma rows.
    yuv_scratch_.create(height * 3 / 2, width, CV_8UC1);
    std::uint8_t* target = yuv_scratch_.data;
    for (int plane = 0; plane < planes; ++plane) {
      const guint8* source = data + GST_VIDEO_INFO_PLANE_OFFSET(&video, plane);
      const auto stride = static_cast<std::size_t>(GST_VIDEO_INFO_PLANE_STRIDE(&video, plane));
      const auto row_bytes = static_cast<std::size_t>(plane_bytes_per_row(plane));
      for (int row = 0; row < plane_rows(plane); ++row) {
        std::memcpy(target, source + static_cast<std::size_t>(row) * stride, row_bytes);
        target += row_bytes;
      }
    }
    const int code = format == GST_VIDEO_FORMAT_I420   ? cv::COLOR_YUV2BGR_I420
                     : format == GST_VIDEO_FORMAT_YV12 ? cv::COLOR_YUV2BGR_YV12
                                                       : cv::COLOR_YUV2BGR_NV12;
    cv::cvtColor(yuv_scratch_, bgr, code);
  }

  // Reads pending bus messages; true when an error ended the stream.
  bool drain_bus() {
    bool error_seen = false;
    while (GstMessage* message = gst_bus_pop_filtered(
               bus_, static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_WARNING | GST_MESSAGE_QOS))) {
      GError* error = nullptr;
      gchar* debug = nullptr;
      with_counters([&](SourceCounters& counters) {
        if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_QOS) {
          // The appsink does not sync, so nothing is late: a decoder that reports dropped
          // frames dropped them because they did not decode. Its count is cumulative.
          if (from_decoder(message)) {
            GstFormat format = GST_FORMAT_UNDEFINED;
            guint64 processed = 0, dropped = 0;
            gst_message_parse_qos_stats(message, &format, &processed, &dropped);
            if (format == GST_FORMAT_BUFFERS || format == GST_FORMAT_DEFAULT) {
              auto& known = decoder_drops_[GST_MESSAGE_SRC(message)];
              if (dropped > known) {
                counters.corrupt_frames += static_cast<std::int64_t>(dropped - known);
                counters.last_warning = "a frame did not decode and was skipped";
                known = dropped;
              }
            }
          }
        } else if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
          gst_message_parse_error(message, &error, &debug);
          const std::string text = take_error_text(error, debug);
          if (first_error_.empty()) first_error_ = text;
          counters.last_warning = text;
          ++counters.read_errors;
          error_seen = true;
        } else {
          gst_message_parse_warning(message, &error, &debug);
          counters.last_warning = take_error_text(error, debug);
          // A decoder's warning is a frame it could not decode and skipped.
          if (from_decoder(message)) {
            ++counters.corrupt_frames;
          } else {
            ++counters.read_errors;
          }
        }
      });
      gst_message_unref(message);
    }
    return error_seen;
  }

  bool restart() {
    if (!gst_element_seek_simple(pipeline_, GST_FORMAT_TIME,
                                 static_cast<GstSeekFlags>(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_KEY_UNIT), 0)) {
      spdlog::warn("source '{}': cannot seek back to the start; looping ends", label_);
      return false;
    }
    return true;
  }

  void end_of_stream() {
    if (stopped()) return;
    const auto [first_error, corrupt_frames] = with_counters([&](SourceCounters& counters) {
      return std::pair{first_error_, counters.corrupt_frames};
    });
    if (!first_error.empty() && frames_delivered_ > 0) {
      const std::string warning =
          "stream ended by an error after " + std::to_string(frames_delivered_) + " frames: " + first_error;
      with_counters([&](SourceCounters& counters) { counters.last_warning = warning; });
      if (!supervised_) spdlog::warn("source '{}': {}", label_, warning);
    } else if (!info_.live && !loop_ && info_.frame_count > 0 &&
               frames_delivered_ + corrupt_frames < info_.frame_count - count_tolerance()) {
      warn_ended_early(label_, frames_delivered_, info_.frame_count);
    }
  }

  // A count estimated from duration x rate can be a few frames off (rounded durations,
  // a last frame shorter than the others).
  std::int64_t count_tolerance() const { return frame_count_exact_ ? 0 : 2 + info_.frame_count / 100; }

  void close() {
    if (pipeline_) gst_element_set_state(pipeline_, GST_STATE_NULL);
    if (bus_) gst_object_unref(bus_);
    if (app_sink_) gst_object_unref(app_sink_);
    if (pipeline_) gst_object_unref(pipeline_);
    bus_ = nullptr;
    app_sink_ = nullptr;
    pipeline_ = nullptr;
  }

  std::string label_;
  bool loop_ = false;
  bool supervised_ = false;
  std::int64_t known_frame_count_ = -1;
  bool frame_count_exact_ = false;
  bool live_by_nature_ = false;
  SourceInfo info_;
  GstElement* pipeline_ = nullptr;
  GstElement* app_sink_ = nullptr;
  GstBus* bus_ = nullptr;
  SamplePtr pending_;
  cv::Mat yuv_scratch_;  // contiguous 4:2:0 planes for cvtColor
  std::int64_t frames_delivered_ = 0;
  std::string first_error_;
  std::map<const GstObject*, guint64> decoder_drops_;  // per decoder: frames dropped so far
};

}  // namespace

std::string complete_gstreamer_launch(const std::string& description) {
  if (description.find("appsink") != std::string::npos) return description;
  return description + " ! videoconvert ! video/x-raw,format=BGR ! appsink name=" + kSinkName;
}

std::unique_ptr<Source> open_gstreamer_source(const GstreamerSourceOptions& options, bool* live_by_nature) {
  initialise_gstreamer("the source");
  auto source = std::make_unique<GstreamerSource>(options);
  if (live_by_nature) *live_by_nature = source->live_by_nature();
  return source;
}

}  // namespace detflow::detail
