// Network sources: rtsp(s)://, http(s)://, udp://.
//
// What an http(s):// URL is read as (SourceSettings::mode only overrides live/file pacing):
//   1. a path ending in a video file extension (.mp4, .mkv, .avi, .mov, .webm, ...; the
//      query string ignored) is a file: every frame, FFmpeg first as for local files;
//   2. otherwise the first bytes decide (GStreamer typefind, which reads the Content-Type
//      a server sends for multipart streams):
//        multipart/x-mixed-replace (MJPEG, what most IP cameras serve) -> live MJPEG;
//        a container (MP4/QuickTime, AVI, Matroska/WebM, FLV, MPEG program stream, Ogg, ASF)
//          -> a file, as in 1;
//        anything else (MPEG-TS, HLS, raw H.264, ...) -> a live stream through decodebin.
// Live streams (rtsp, udp, MJPEG and other http streams) are supervised: reopened after
// errors, the end of the stream or a stall (source_supervisor.cpp).
#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <string_view>

#include <gst/gst.h>
#include <spdlog/spdlog.h>

#include "detflow/error.h"
#include "gstreamer_support.h"
#include "source_internal.h"

namespace detflow::detail {
namespace {

constexpr const char* kDecodeToBgr = " ! decodebin ! videoconvert ! video/x-raw,format=BGR ! appsink name=detflow_sink";
constexpr const char* kToBgr = " ! videoconvert ! video/x-raw,format=BGR ! appsink name=detflow_sink";
constexpr std::chrono::milliseconds kProbeTimeout{10000};

constexpr std::array<std::string_view, 14> kVideoFileExtensions{
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg", ".wmv", ".asf", ".3gp", ".ogv", ".mjpeg"};
// typefind's names for containers that hold a finite file.
constexpr std::array<std::string_view, 9> kFileMediaTypes{"video/quicktime", "video/x-msvideo", "video/x-matroska",
                                                          "video/webm",      "video/x-flv",     "video/mpeg",
                                                          "application/ogg", "video/x-ms-asf",  "application/mxf"};
constexpr std::string_view kMultipart = "multipart/x-mixed-replace";

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char character) { return static_cast<char>(std::tolower(character)); });
  return text;
}

// ".mp4" for "http://host:8080/media/clip.MP4?token=1"; empty when the path has none.
std::string url_path_extension(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  if (const auto scheme = path.find("://"); scheme != std::string::npos) {
    const auto path_start = path.find('/', scheme + 3);
    path = path_start == std::string::npos ? std::string() : path.substr(path_start);
  }
  const std::string name = path.substr(path.rfind('/') + 1);
  const auto dot = name.rfind('.');
  return dot == std::string::npos || dot == 0 ? std::string() : lower(name.substr(dot));
}

bool is_video_file_extension(const std::string& extension) {
  return std::find(kVideoFileExtensions.begin(), kVideoFileExtensions.end(), extension) != kVideoFileExtensions.end();
}

bool is_file_media_type(const std::string& media_type) {
  return std::find(kFileMediaTypes.begin(), kFileMediaTypes.end(), media_type) != kFileMediaTypes.end();
}

// A live stream: opened now, and again by the supervisor after a loss.
std::unique_ptr<Source> open_supervised_stream(GstreamerSourceOptions options, const SourceSettings& settings) {
  options.supervised = true;
  auto first = open_gstreamer_source(options);
  SourceOpener reopen = [options](const std::atomic<bool>& cancel, std::chrono::milliseconds timeout) {
    GstreamerSourceOptions again = options;
    again.cancel = &cancel;
    again.start_timeout = timeout;
    return open_gstreamer_source(again);
  };
  return supervise_source(std::move(first), std::move(reopen), supervision_settings(settings));
}

std::unique_ptr<Source> open_rtsp(const SourceSettings& settings) {
  GstreamerSourceOptions options;
  options.label = settings.uri;
  options.mode = settings.mode;
  options.info.live = true;
  // Low jitter-buffer latency; only the video stream goes to the decoder.
  options.info.kind = "rtsp";
  options.launch = std::string("rtspsrc name=detflow_rtsp latency=100 drop-on-latency=true") +
                   " ! application/x-rtp,media=video" + kDecodeToBgr;
  options.properties = {{"detflow_rtsp", "location", settings.uri}};
  return open_supervised_stream(options, settings);
}

std::unique_ptr<Source> open_udp(const SourceSettings& settings) {
  // udp:// carries an MPEG transport stream (what ffmpeg -f mpegts udp://... sends).
  GstreamerSourceOptions options;
  options.label = settings.uri;
  options.mode = settings.mode;
  options.info.live = true;
  options.info.kind = "udp";
  options.launch = std::string("udpsrc name=detflow_udp") + kDecodeToBgr;
  options.properties = {{"detflow_udp", "uri", settings.uri}};
  return open_supervised_stream(options, settings);
}

// A video file behind a URL: every frame (unless --live), the same readers as local files.
std::unique_ptr<Source> open_http_file(const SourceSettings& settings) {
  const auto with_gstreamer = [&settings] {
    GstreamerSourceOptions options;
    options.label = settings.uri;
    options.mode = settings.mode;
    options.loop = settings.loop;
    options.info.kind = "http";
    options.launch = std::string("souphttpsrc name=detflow_http") + kDecodeToBgr;
    options.properties = {{"detflow_http", "location", settings.uri}};
    return open_gstreamer_source(options);
  };
  if (settings.video_reader == "gstreamer") return with_gstreamer();
  try {
    return open_opencv_video_file(settings.uri, settings, "http");
  } catch (const Error& opencv_error) {
    if (settings.video_reader == "opencv") throw;
    try {
      auto source = with_gstreamer();
      spdlog::warn("{}; reading it with GStreamer instead", opencv_error.what());
      return source;
    } catch (const Error& gstreamer_error) {
      throw Error(ErrorKind::source,
                  std::string(opencv_error.what()) + "; GStreamer cannot read it either: " + gstreamer_error.what());
    }
  }
}

std::unique_ptr<Source> open_http(const SourceSettings& settings) {
  if (settings.video_reader != "auto" && settings.video_reader != "opencv" && settings.video_reader != "gstreamer") {
    throw Error("video_reader '" + settings.video_reader + "' is unknown (accepted: auto, gstreamer, opencv)");
  }
  const std::string extension = url_path_extension(settings.uri);
  const std::string media_type =
      is_video_file_extension(extension) ? std::string() : probe_http_media_type(settings.uri, kProbeTimeout);
  if (media_type.empty() || is_file_media_type(media_type)) {
    spdlog::debug("source '{}': read as a file ({})", settings.uri,
                  media_type.empty() ? "extension " + extension : media_type);
    return open_http_file(settings);
  }
  GstreamerSourceOptions options;
  options.label = settings.uri;
  options.mode = settings.mode;
  options.info.kind = "http";
  options.info.live = true;
  options.properties = {{"detflow_http", "location", settings.uri}};
  // is-live: timestamps from the arrival clock, and no preroll wait on a stream that never ends.
  if (settings.mode != SourceMode::file) options.properties.push_back({"detflow_http", "is-live", "true"});
  if (media_type == kMultipart) {
    // decodebin does not settle on a multipart stream (no frame ever comes out of it);
    // the demuxer and JPEG decoder named outright do.
    options.launch = std::string("souphttpsrc name=detflow_http ! multipartdemux ! jpegdec") + kToBgr;
  } else {
    options.launch = std::string("souphttpsrc name=detflow_http") + kDecodeToBgr;
  }
  spdlog::debug("source '{}': {} read as a live stream", settings.uri, media_type);
  return open_supervised_stream(options, settings);
}

}  // namespace

std::string probe_http_media_type(const std::string& url, std::chrono::milliseconds timeout) {
  initialise_gstreamer("the source");
  const std::string launch = "souphttpsrc name=probe_http ! typefind name=probe_type ! fakesink";
  GError* parse_error = nullptr;
  GstElement* pipeline = gst_parse_launch(launch.c_str(), &parse_error);
  if (parse_error) {
    const std::string message = parse_error->message;
    g_error_free(parse_error);
    if (pipeline) gst_object_unref(pipeline);
    throw Error(ErrorKind::source,
                "source '" + url + "': cannot probe it (" + message + "; is gstreamer1.0-plugins-good installed?)");
  }
  GstElement* http = gst_bin_get_by_name(GST_BIN(pipeline), "probe_http");
  GstElement* typefind = gst_bin_get_by_name(GST_BIN(pipeline), "probe_type");
  g_object_set(http, "location", url.c_str(), nullptr);
  GstBus* bus = gst_element_get_bus(pipeline);

  // PAUSED prerolls the fakesink with the first buffer, which typefind has typed by then.
  std::string media_type;
  std::string error_text;
  gst_element_set_state(pipeline, GST_STATE_PAUSED);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (media_type.empty() && error_text.empty() && std::chrono::steady_clock::now() < deadline) {
    GstCaps* caps = nullptr;
    g_object_get(typefind, "caps", &caps, nullptr);
    if (caps) {
      if (gst_caps_get_size(caps) > 0) media_type = gst_structure_get_name(gst_caps_get_structure(caps, 0));
      gst_caps_unref(caps);
      break;
    }
    if (GstMessage* message = gst_bus_timed_pop_filtered(
            bus, 50 * GST_MSECOND, static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_EOS))) {
      if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
        GError* error = nullptr;
        gst_message_parse_error(message, &error, nullptr);
        error_text = error ? error->message : "unknown error";
        if (error) g_error_free(error);
      } else {
        error_text = "it ended before its type was known";
      }
      gst_message_unref(message);
    }
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(typefind);
  gst_object_unref(http);
  gst_object_unref(pipeline);
  if (!error_text.empty()) throw Error(ErrorKind::source, "source '" + url + "': " + error_text);
  if (media_type.empty()) {
    throw Error(ErrorKind::source, "source '" + url + "': no data within " + std::to_string(timeout.count() / 1000) +
                                       " s to tell what it serves");
  }
  return media_type;
}

std::unique_ptr<Source> open_network_source(const std::string& scheme, const SourceSettings& settings) {
  if (scheme == "rtsp" || scheme == "rtsps") return open_rtsp(settings);
  if (scheme == "http" || scheme == "https") return open_http(settings);
  if (scheme == "udp") return open_udp(settings);
  throw Error("source '" + settings.uri + "': '" + scheme +
              "' is not a network scheme (accepted: rtsp, rtsps, http, https, udp)");
}

}  // namespace detflow::detail
