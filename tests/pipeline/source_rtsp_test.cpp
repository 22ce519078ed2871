// RTSP on loopback: a GStreamer RTSP server in the test serves a generated MJPEG clip on
// 127.0.0.1 (a free port chosen by the system); open_source reads it as a live source.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include <gst/gst.h>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/source.h"
#include "shared_data.h"

#if DETFLOW_HAVE_RTSP_SERVER
#include <gst/rtsp-server/rtsp-server.h>
#endif

namespace detflow {
namespace {

#if DETFLOW_HAVE_RTSP_SERVER

namespace fs = std::filesystem;

// Serves `launch` (an RTSP media description with a payloader named pay0) at /test.
class LoopbackRtspServer {
 public:
  explicit LoopbackRtspServer(const std::string& launch) {
    gst_init(nullptr, nullptr);
    context_ = g_main_context_new();
    loop_ = g_main_loop_new(context_, FALSE);
    server_ = gst_rtsp_server_new();
    gst_rtsp_server_set_address(server_, "127.0.0.1");
    gst_rtsp_server_set_service(server_, "0");
    GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server_);
    GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(factory, launch.c_str());
    gst_rtsp_media_factory_set_shared(factory, TRUE);
    gst_rtsp_mount_points_add_factory(mounts, "/test", factory);
    g_object_unref(mounts);
    source_id_ = gst_rtsp_server_attach(server_, context_);
    port_ = gst_rtsp_server_get_bound_port(server_);
    thread_ = std::thread([this] { g_main_loop_run(loop_); });
  }
  ~LoopbackRtspServer() {
    g_main_loop_quit(loop_);
    thread_.join();
    if (GSource* source = g_main_context_find_source_by_id(context_, source_id_)) g_source_destroy(source);
    g_object_unref(server_);
    g_main_loop_unref(loop_);
    g_main_context_unref(context_);
  }
  int port() const { return port_; }

 private:
  GMainContext* context_ = nullptr;
  GMainLoop* loop_ = nullptr;
  GstRTSPServer* server_ = nullptr;
  guint source_id_ = 0;
  int port_ = 0;
  std::thread thread_;
};

fs::path write_mjpeg_clip(const fs::path& folder, int frames) {
  const fs::path path = folder / "served.avi";
  cv::VideoWriter writer(path.string(), cv::CAP_OPENCV_MJPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0,
                         cv::Size(320, 240));
  for (int frame = 0; frame < frames; ++frame) {
    cv::Mat image(240, 320, CV_8UC3, cv::Scalar(frame * 5, 100, 200));
    cv::circle(image, {frame * 10, 120}, 20, cv::Scalar(255, 255, 255), cv::FILLED);
    writer.write(image);
  }
  return path;
}

TEST(RtspSource, ReadsAServedFileAsALiveSource) {
  const fs::path folder = test::temporary_directory("detflow_rtsp");
  const fs::path clip = write_mjpeg_clip(folder, 50);
  LoopbackRtspServer server("( filesrc location=" + clip.string() + " ! avidemux ! rtpjpegpay name=pay0 pt=26 )");
  ASSERT_GT(server.port(), 0);

  const std::string url = "rtsp://127.0.0.1:" + std::to_string(server.port()) + "/test";
  auto source = open_source({.uri = url});
  EXPECT_EQ(source->info().kind, "rtsp");
  EXPECT_TRUE(source->info().live);
  EXPECT_EQ(source->info().width, 320);
  EXPECT_EQ(source->info().height, 240);
  int frames = 0;
  Frame frame;
  while (frames < 8 && source->read(frame)) {
    EXPECT_EQ(frame.image.size(), cv::Size(320, 240));
    ++frames;
  }
  EXPECT_EQ(frames, 8);
  source->stop();
  EXPECT_FALSE(source->read(frame));
}

TEST(RtspSource, NothingListeningIsAnError) {
  // Port 9 (discard) on loopback: nothing serves RTSP there.
  EXPECT_THROW(open_source({.uri = "rtsp://127.0.0.1:9/none"}), Error);
}

#else

TEST(RtspSource, ReadsAServedFileAsALiveSource) { GTEST_SKIP() << "built without gstreamer-rtsp-server-1.0"; }

#endif

}  // namespace
}  // namespace detflow
