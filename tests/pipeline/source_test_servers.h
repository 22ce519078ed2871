// source_test_servers.h — network servers on 127.0.0.1 for the source tests: what a
// camera or a media server would serve, in the test process, on a free port.
//
//   LoopbackHttpServer  files (with Range requests, like any web server) and endless
//                       multipart/x-mixed-replace MJPEG streams (what IP cameras serve);
//                       streams can go silent or be cut, as a rebooting camera does.
//   LoopbackRtspServer  a GStreamer RTSP server (when built with gstreamer-rtsp-server);
//                       restartable on the same port, and silenceable through a valve.
//   UdpMpegTsSender     H.264 in MPEG-TS to udp://127.0.0.1:PORT (what ffmpeg -f mpegts sends).
//
// Each owns its threads and closes every connection in its destructor. Methods may be
// called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gst/gst.h>

#if DETFLOW_HAVE_RTSP_SERVER
#include <gst/rtsp-server/rtsp-server.h>
#endif

#include "loopback.h"  // free_loopback_port, for the callers of these servers

namespace detflow::test {

// JPEG images of size `width` x `height`, each different (a moving disc), for MJPEG streams.
std::vector<std::string> make_jpeg_frames(int count, int width, int height);

class LoopbackHttpServer {
 public:
  LoopbackHttpServer();
  ~LoopbackHttpServer();
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const;
  // GET (whole or "Range: bytes=N-M") and HEAD of `bytes` at `path`.
  void serve_file(const std::string& path, std::string bytes, std::string content_type);
  // An endless multipart/x-mixed-replace stream cycling through `jpegs`, one every `interval`.
  void serve_mjpeg(const std::string& path, std::vector<std::string> jpegs, std::chrono::milliseconds interval);
  // false: open streams stay connected but send nothing (a stuck camera).
  void set_sending(bool sending) { sending_.store(sending); }
  // Ends every stream open now (a camera rebooting); new requests are served.
  void cut_streams();
  int requests() const { return requests_.load(); }

 private:
  struct Route {
    std::string content_type;
    std::string bytes;               // files
    std::vector<std::string> jpegs;  // streams
    std::chrono::milliseconds interval{0};
  };
  void accept_connections();
  void serve(int connection);
  void send_stream(int connection, const Route& route);

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> quit_{false};
  std::atomic<bool> sending_{true};
  std::atomic<int> cut_generation_{0};
  std::atomic<int> requests_{0};
  std::mutex mutex_;  // routes_, connections_, workers_
  std::map<std::string, Route> routes_;
  std::vector<int> connections_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

class UdpMpegTsSender {
 public:
  // 320x240 at 15 fps, a key frame every second.
  explicit UdpMpegTsSender(int port);
  ~UdpMpegTsSender();
  UdpMpegTsSender(const UdpMpegTsSender&) = delete;
  UdpMpegTsSender& operator=(const UdpMpegTsSender&) = delete;
  void start();
  void stop();

 private:
  GstElement* pipeline_ = nullptr;
};

#if DETFLOW_HAVE_RTSP_SERVER
class LoopbackRtspServer {
 public:
  // Serves `launch` (an RTSP media description with a payloader named pay0 and, to be
  // silenced, a valve named "gate") at /test. port 0: a free one.
  explicit LoopbackRtspServer(const std::string& launch, int port = 0);
  ~LoopbackRtspServer();  // closes every client connection first
  LoopbackRtspServer(const LoopbackRtspServer&) = delete;
  LoopbackRtspServer& operator=(const LoopbackRtspServer&) = delete;
  int port() const { return port_; }
  std::string url() const;
  // false: the valve drops everything; clients stay connected but get no frames.
  void set_sending(bool sending);

 private:
  static void on_media_configure(GstRTSPMediaFactory* factory, GstRTSPMedia* media, gpointer self);

  GMainContext* context_ = nullptr;
  GMainLoop* loop_ = nullptr;
  GstRTSPServer* server_ = nullptr;
  guint source_id_ = 0;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;  // valves_, sending_
  std::vector<GstElement*> valves_;
  bool sending_ = true;
};
// A live 320x240 MJPEG test pattern at 15 fps behind a valve named gate.
std::string live_rtsp_launch();
#endif

}  // namespace detflow::test
