#include "source_test_servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <stdexcept>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace detflow::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBoundary = "detflowframe";

bool send_all(int connection, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t written = ::send(connection, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (written <= 0) return false;
    sent += static_cast<std::size_t>(written);
  }
  return true;
}

// The request head (up to the blank line), or empty when the client went away.
std::string read_request(int connection) {
  std::string request;
  char buffer[2048];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
    const ssize_t received = ::recv(connection, buffer, sizeof buffer, 0);
    if (received <= 0) return {};
    request.append(buffer, static_cast<std::size_t>(received));
  }
  return request;
}

std::string header_value(const std::string& request, const std::string& name) {
  std::istringstream lines(request);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > name.size() && strncasecmp(line.c_str(), name.c_str(), name.size()) == 0 &&
        line[name.size()] == ':') {
      std::string value = line.substr(name.size() + 1);
      value.erase(0, value.find_first_not_of(' '));
      if (!value.empty() && value.back() == '\r') value.pop_back();
      return value;
    }
  }
  return {};
}

}  // namespace

std::vector<std::string> make_jpeg_frames(int count, int width, int height) {
  std::vector<std::string> frames;
  for (int index = 0; index < count; ++index) {
    cv::Mat image(height, width, CV_8UC3, cv::Scalar(40, 90 + index * 3, 160));
    cv::circle(image, {(index * 17) % width, height / 2}, height / 6, cv::Scalar(255, 255, 255), cv::FILLED);
    std::vector<unsigned char> jpeg;
    cv::imencode(".jpg", image, jpeg);
    frames.emplace_back(jpeg.begin(), jpeg.end());
  }
  return frames;
}

// ---- HTTP ----

LoopbackHttpServer::LoopbackHttpServer() {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int yes = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(listener_, 16) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(listener_);
    throw std::runtime_error(std::string("test HTTP server cannot listen: ") + std::strerror(errno));
  }
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { accept_connections(); });
}

LoopbackHttpServer::~LoopbackHttpServer() {
  quit_.store(true);
  acceptor_.join();
  {
    std::lock_guard lock(mutex_);
    for (int connection : connections_) ::shutdown(connection, SHUT_RDWR);
  }
  for (auto& worker : workers_) worker.join();
  ::close(listener_);
}

std::string LoopbackHttpServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void LoopbackHttpServer::serve_file(const std::string& path, std::string bytes, std::string content_type) {
  std::lock_guard lock(mutex_);
  routes_[path] = Route{std::move(content_type), std::move(bytes), {}, 0ms};
}

void LoopbackHttpServer::serve_mjpeg(const std::string& path, std::vector<std::string> jpegs,
                                     std::chrono::milliseconds interval) {
  std::lock_guard lock(mutex_);
  routes_[path] =
      Route{std::string("multipart/x-mixed-replace; boundary=") + kBoundary, {}, std::move(jpegs), interval};
}

void LoopbackHttpServer::cut_streams() { cut_generation_.fetch_add(1); }

void LoopbackHttpServer::accept_connections() {
  while (!quit_.load()) {
    pollfd waiting{listener_, POLLIN, 0};
    if (::poll(&waiting, 1, 50) <= 0) continue;
    const int connection = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) continue;
    // A client that stops reading must not hold a stream thread for ever.
    timeval timeout{1, 0};
    ::setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    std::lock_guard lock(mutex_);
    connections_.push_back(connection);
    workers_.emplace_back([this, connection] { serve(connection); });
  }
}

void LoopbackHttpServer::serve(int connection) {
  const std::string request = read_request(connection);
  if (!request.empty()) {
    requests_.fetch_add(1);
    std::istringstream first_line(request.substr(0, request.find("\r\n")));
    std::string method, path;
    first_line >> method >> path;
    path = path.substr(0, path.find_first_of("?#"));  // routes ignore the query
    Route route;
    bool found = false;
    {
      std::lock_guard lock(mutex_);
      if (const auto entry = routes_.find(path); entry != routes_.end()) {
        route = entry->second;
        found = true;
      }
    }
    if (!found) {
      send_all(connection, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    } else if (!route.jpegs.empty()) {
      send_all(connection, "HTTP/1.1 200 OK\r\nContent-Type: " + route.content_type +
                               "\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n");
      if (method != "HEAD") send_stream(connection, route);
    } else {
      // Files: whole, or the byte range asked for (FFmpeg and souphttpsrc seek this way).
      std::size_t first = 0;
      std::size_t last = route.bytes.empty() ? 0 : route.bytes.size() - 1;
      const std::string range = header_value(request, "Range");
      const bool partial = range.rfind("bytes=", 0) == 0;
      if (partial) {
        const std::string span = range.substr(6);
        const auto dash = span.find('-');
        first = std::stoul(span.substr(0, dash));
        if (dash + 1 < span.size()) last = std::min(last, static_cast<std::size_t>(std::stoul(span.substr(dash + 1))));
      }
      if (partial && first >= route.bytes.size()) {
        send_all(connection, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */" +
                                 std::to_string(route.bytes.size()) +
                                 "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      } else {
        const std::size_t length = last - first + 1;
        std::string head = partial ? "HTTP/1.1 206 Partial Content\r\n" : "HTTP/1.1 200 OK\r\n";
        head += "Content-Type: " + route.content_type +
                "\r\nAccept-Ranges: bytes\r\nContent-Length: " + std::to_string(length) + "\r\nConnection: close\r\n";
        if (partial) {
          head += "Content-Range: bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                  std::to_string(route.bytes.size()) + "\r\n";
        }
        head += "\r\n";
        if (send_all(connection, head) && method != "HEAD") send_all(connection, route.bytes.substr(first, length));
      }
    }
  }
  {
    std::lock_guard lock(mutex_);
    std::erase(connections_, connection);
  }
  ::shutdown(connection, SHUT_RDWR);
  ::close(connection);
}

void LoopbackHttpServer::send_stream(int connection, const Route& route) {
  const int generation = cut_generation_.load();
  for (std::size_t index = 0; !quit_.load() && cut_generation_.load() == generation; ++index) {
    if (sending_.load()) {
      const std::string& jpeg = route.jpegs[index % route.jpegs.size()];
      std::string part = std::string("--") + kBoundary +
                         "\r\nContent-Type: image/jpeg\r\nContent-Length: " + std::to_string(jpeg.size()) + "\r\n\r\n" +
                         jpeg + "\r\n";
      if (!send_all(connection, part)) return;
    }
    std::this_thread::sleep_for(route.interval);
  }
}

// ---- UDP ----

UdpMpegTsSender::UdpMpegTsSender(int port) {
  gst_init(nullptr, nullptr);
  const std::string launch =
      "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! "
      "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! mpegtsmux ! "
      "udpsink host=127.0.0.1 sync=false port=" +
      std::to_string(port);
  GError* error = nullptr;
  pipeline_ = gst_parse_launch(launch.c_str(), &error);
  if (error) {
    const std::string message = error->message;
    g_error_free(error);
    if (pipeline_) gst_object_unref(pipeline_);
    throw std::runtime_error("UDP sender: " + message);
  }
}

UdpMpegTsSender::~UdpMpegTsSender() {
  stop();
  gst_object_unref(pipeline_);
}

void UdpMpegTsSender::start() { gst_element_set_state(pipeline_, GST_STATE_PLAYING); }

void UdpMpegTsSender::stop() {
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  gst_element_get_state(pipeline_, nullptr, nullptr, GST_CLOCK_TIME_NONE);
}

// ---- RTSP ----

#if DETFLOW_HAVE_RTSP_SERVER

std::string live_rtsp_launch() {
  // I420: rtpjpegpay refuses JPEGs of other layouts ("Invalid component").
  return "( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=320,height=240,framerate=15/1 ! "
         "jpegenc ! "
         "valve name=gate ! rtpjpegpay name=pay0 pt=26 )";
}

LoopbackRtspServer::LoopbackRtspServer(const std::string& launch, int port) {
  gst_init(nullptr, nullptr);
  context_ = g_main_context_new();
  loop_ = g_main_loop_new(context_, FALSE);
  server_ = gst_rtsp_server_new();
  gst_rtsp_server_set_address(server_, "127.0.0.1");
  gst_rtsp_server_set_service(server_, std::to_string(port).c_str());
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server_);
  GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
  gst_rtsp_media_factory_set_launch(factory, launch.c_str());
  gst_rtsp_media_factory_set_shared(factory, TRUE);
  g_signal_connect(factory, "media-configure", G_CALLBACK(on_media_configure), this);
  gst_rtsp_mount_points_add_factory(mounts, "/test", factory);
  g_object_unref(mounts);
  source_id_ = gst_rtsp_server_attach(server_, context_);
  port_ = gst_rtsp_server_get_bound_port(server_);
  thread_ = std::thread([this] { g_main_loop_run(loop_); });
}

LoopbackRtspServer::~LoopbackRtspServer() {
  // Clients first: a camera that reboots drops its connections.
  gst_rtsp_server_client_filter(
      server_, [](GstRTSPServer*, GstRTSPClient*, gpointer) { return GST_RTSP_FILTER_REMOVE; }, nullptr);
  g_main_loop_quit(loop_);
  thread_.join();
  if (GSource* source = g_main_context_find_source_by_id(context_, source_id_)) g_source_destroy(source);
  {
    std::lock_guard lock(mutex_);
    for (GstElement* valve : valves_) gst_object_unref(valve);
    valves_.clear();
  }
  g_object_unref(server_);
  g_main_loop_unref(loop_);
  g_main_context_unref(context_);
}

std::string LoopbackRtspServer::url() const { return "rtsp://127.0.0.1:" + std::to_string(port_) + "/test"; }

void LoopbackRtspServer::set_sending(bool sending) {
  std::lock_guard lock(mutex_);
  sending_ = sending;
  for (GstElement* valve : valves_) g_object_set(valve, "drop", sending ? FALSE : TRUE, nullptr);
}

void LoopbackRtspServer::on_media_configure(GstRTSPMediaFactory*, GstRTSPMedia* media, gpointer self) {
  auto* server = static_cast<LoopbackRtspServer*>(self);
  GstElement* element = gst_rtsp_media_get_element(media);
  GstElement* valve = GST_IS_BIN(element) ? gst_bin_get_by_name(GST_BIN(element), "gate") : nullptr;
  gst_object_unref(element);
  if (!valve) return;
  std::lock_guard lock(server->mutex_);
  g_object_set(valve, "drop", server->sending_ ? FALSE : TRUE, nullptr);
  server->valves_.push_back(valve);
}

#endif

}  // namespace detflow::test
