// The HTTP endpoint on cpp-httplib: routes, the bearer token, capped preview streams.
#include "detflow/service/http_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "http_status_page.h"

namespace detflow::service {
namespace {

constexpr const char* kBoundary = "detflowframe";
// A stream wakes at least this often to notice a stopping server or a closed run.
constexpr std::chrono::milliseconds kStreamPoll{500};

bool all_digits(const std::string& text) {
  return !text.empty() && text.size() <= 5 && text.find_first_not_of("0123456789") == std::string::npos;
}

bool authorised(const httplib::Request& request, const std::string& token) {
  if (token.empty()) return true;
  if (request.get_header_value("Authorization") == "Bearer " + token) return true;
  return request.has_param("token") && request.get_param_value("token") == token;
}

}  // namespace

ListenAddress parse_listen_address(const std::string& text) {
  const auto refuse = [&text](const std::string& why) {
    return Error("http.listen '" + text + "': " + why +
                 "; accepted: PORT (loopback), ADDR:PORT or [IPV6]:PORT with PORT 0 to 65535");
  };
  ListenAddress address{"127.0.0.1", 0};
  std::string port = text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close == std::string::npos) throw refuse("an IPv6 address needs ']:PORT' after it");
    address.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else if (const auto colon = text.rfind(':'); colon != std::string::npos) {
    if (colon > 0) address.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (!all_digits(port) || std::stoi(port) > 65535) throw refuse("not a port");
  if (address.host.empty()) throw refuse("empty address");
  address.port = std::stoi(port);
  return address;
}

std::string load_http_token(const std::filesystem::path& token_file) {
  if (token_file.empty()) {
    const char* from_environment = std::getenv("DETFLOW_HTTP_TOKEN");
    return from_environment ? std::string(from_environment) : std::string();
  }
  std::ifstream file(token_file);
  if (!file) throw Error("http.token_file " + token_file.string() + ": cannot be read");
  std::string token;
  std::getline(file, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) token.pop_back();
  if (token.empty())
    throw Error("http.token_file " + token_file.string() + ": the first line is empty; expected a token");
  return token;
}

struct HttpServer::Impl {
  HttpSettings settings;
  RunProbe probe;
  ListenAddress bound;
  httplib::Server server;
  std::thread listener;
  std::atomic<int> streams{0};
  std::atomic<bool> stopped{false};

  void add_routes();
  void stream(const httplib::Request& request, httplib::Response& response);
};

void HttpServer::Impl::add_routes() {
  const int pool_threads = settings.max_clients + 4;
  server.new_task_queue = [pool_threads] { return new httplib::ThreadPool(static_cast<std::size_t>(pool_threads)); };
  server.set_keep_alive_timeout(2);  // an idle keep-alive connection must not hold a pool thread long
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.set_default_headers({{"Cache-Control", "no-store"}});
  server.set_pre_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
    if (request.path == "/healthz" || request.path == "/readyz" || authorised(request, settings.token)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    response.status = 401;
    response.set_header("WWW-Authenticate", "Bearer realm=\"detflow\"");
    response.set_content("unauthorised: send Authorization: Bearer TOKEN or ?token=TOKEN\n", "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });

  server.Get("/healthz",
             [](const httplib::Request&, httplib::Response& response) { response.set_content("ok\n", "text/plain"); });
  server.Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    const Health health = judge_health(probe);
    response.status = health.ready ? 200 : 503;
    response.set_content(health.ready ? std::string("ready\n") : "not ready: " + health.reason + "\n", "text/plain");
  });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(prometheus_text(probe, streams.load()), "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/status.json", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(status_json(probe, streams.load()).dump(), "application/json");
  });
  server.Get("/snapshot.jpg", [this](const httplib::Request&, httplib::Response& response) {
    const EncodedFramePtr frame = probe.latest ? probe.latest->latest() : nullptr;
    if (!frame) {
      response.status = 503;
      response.set_content("no frame yet\n", "text/plain");
      return;
    }
    response.set_header("X-Frame-Index", std::to_string(frame->frame_index));
    response.set_content(reinterpret_cast<const char*>(frame->jpeg.data()), frame->jpeg.size(), "image/jpeg");
  });
  server.Get("/stream.mjpg",
             [this](const httplib::Request& request, httplib::Response& response) { stream(request, response); });
  server.Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(status_page_html(), "text/html; charset=utf-8");
  });
}

void HttpServer::Impl::stream(const httplib::Request&, httplib::Response& response) {
  if (!probe.latest) {
    response.status = 404;
    response.set_content("no preview in this run\n", "text/plain");
    return;
  }
  if (streams.fetch_add(1) >= settings.max_clients) {
    streams.fetch_sub(1);
    response.status = 503;
    response.set_header("Retry-After", "5");
    response.set_content("too many preview clients (http.max_clients = " + std::to_string(settings.max_clients) + ")\n",
                         "text/plain");
    return;
  }
  auto sent = std::make_shared<std::int64_t>(0);
  auto next_send = std::make_shared<Clock::time_point>(Clock::now());
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / settings.preview_fps));
  std::shared_ptr<LatestFrame> latest = probe.latest;
  response.set_content_provider(
      std::string("multipart/x-mixed-replace; boundary=") + kBoundary,
      [this, latest, sent, next_send, interval](std::size_t, httplib::DataSink& sink) {
        if (stopped.load()) return false;
        // Pacing: frames that come sooner are skipped, not encoded for this client.
        const auto now = Clock::now();
        if (now < *next_send) std::this_thread::sleep_for(std::min<Clock::duration>(*next_send - now, kStreamPoll));
        if (Clock::now() < *next_send) return true;
        // Blocks this client's thread only; the graph never waits for it.
        const EncodedFramePtr frame = latest->wait_newer(*sent, kStreamPoll);
        if (!frame) return !latest->closed();
        *sent = frame->sequence;
        *next_send = Clock::now() + interval;
        const std::string header = std::string("--") + kBoundary + "\r\nContent-Type: image/jpeg\r\nX-Frame-Index: " +
                                   std::to_string(frame->frame_index) +
                                   "\r\nContent-Length: " + std::to_string(frame->jpeg.size()) + "\r\n\r\n";
        return sink.write(header.data(), header.size()) &&
               sink.write(reinterpret_cast<const char*>(frame->jpeg.data()), frame->jpeg.size()) &&
               sink.write("\r\n", 2);
      },
      [this](bool) { streams.fetch_sub(1); });
}

HttpServer::HttpServer(const HttpSettings& settings, RunProbe probe) : impl_(std::make_unique<Impl>()) {
  if (!(settings.preview_fps > 0)) {
    throw Error("http.preview_fps " + std::to_string(settings.preview_fps) + " is invalid (expected more than 0)");
  }
  if (settings.max_clients < 1) {
    throw Error("http.max_clients " + std::to_string(settings.max_clients) + " is invalid (expected 1 or more)");
  }
  impl_->settings = settings;
  impl_->probe = std::move(probe);
  impl_->bound = parse_listen_address(settings.listen);
  impl_->add_routes();
  auto& server = impl_->server;
  // httplib's default sets SO_REUSEPORT, which lets a second process bind the same port and
  // take half of the connections: a port in use must be an error. SO_REUSEADDR alone still
  // allows a restart while old connections sit in TIME_WAIT.
  server.set_socket_options([](socket_t socket) {
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<void*>(&yes), sizeof(yes));
  });
  if (impl_->bound.port == 0) {
    impl_->bound.port = server.bind_to_any_port(impl_->bound.host);
    if (impl_->bound.port <= 0) impl_->bound.port = -1;
  } else if (!server.bind_to_port(impl_->bound.host, impl_->bound.port)) {
    impl_->bound.port = -1;
  }
  if (impl_->bound.port < 0) {
    throw Error("http.listen '" + settings.listen + "': cannot listen on " + impl_->bound.host +
                " (port in use, address not on this machine, or no permission)");
  }
  impl_->listener = std::thread([this] { impl_->server.listen_after_bind(); });
  // httplib's stop() does nothing before the accept loop runs, so a server stopped at once
  // would never end its thread: wait (briefly) for the loop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::stop() {
  if (impl_->stopped.exchange(true)) return;
  impl_->server.stop();
  if (impl_->listener.joinable()) impl_->listener.join();
}

std::string HttpServer::address() const {
  const bool v6 = impl_->bound.host.find(':') != std::string::npos;
  return (v6 ? "[" + impl_->bound.host + "]" : impl_->bound.host) + ":" + std::to_string(impl_->bound.port);
}

int HttpServer::port() const { return impl_->bound.port; }

int HttpServer::preview_clients() const { return impl_->streams.load(); }

}  // namespace detflow::service
