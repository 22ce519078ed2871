// detflow/service/http_server.h — the HTTP endpoint of a run.
//
//   GET /healthz       200 "ok" while the process serves (liveness)
//   GET /readyz        200 when a frame reached the outputs within the stall timeout,
//                      503 with the reason otherwise
//   GET /metrics       Prometheus text format (see run_probe.h)
//   GET /status.json   the status page's data
//   GET /snapshot.jpg  the newest annotated frame (503 before the first)
//   GET /stream.mjpg   MJPEG preview (multipart/x-mixed-replace), at most max_clients at
//                      once (503 beyond); each stream sends the newest frame whenever it
//                      can, skipping the ones it was too slow for, and at most preview_fps
//                      frames per second (the encoding runs on the cores the graph uses)
//   GET /              a self-contained status page (inline CSS and JS, no external assets)
//
// Bearer token: when set, every path but /healthz and /readyz needs
// "Authorization: Bearer TOKEN" or "?token=TOKEN" (for browsers and <img>); 401 otherwise.
// Nothing here blocks the graph: handlers only read the RunProbe and the LatestFrame.
// Threads: a fixed pool of max_clients + 4 (streams hold one each; short requests share the
// rest); a client that stops reading is dropped after a 5 s write timeout.
// Thread-safety: construct and destroy from one thread; the accessors may be called from any.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "detflow/service/run_probe.h"

namespace detflow::service {

struct ListenAddress {
  std::string host;  // "127.0.0.1", "0.0.0.0", "::1"
  int port = 0;      // 0: any free port
};
// "8080" or ":8080" (loopback), "ADDR:8080", "[V6]:8080". Throws detflow::Error naming the
// text and what is accepted.
ListenAddress parse_listen_address(const std::string& text);

// The token from the first line of `token_file`, else the DETFLOW_HTTP_TOKEN environment
// variable, else empty (no token). Throws detflow::Error when the file cannot be read or
// holds no token.
std::string load_http_token(const std::filesystem::path& token_file);

struct HttpSettings {
  std::string listen;  // as http.listen
  std::string token;   // empty: no authentication
  int max_clients = 4;
  double preview_fps = 15;  // each MJPEG stream sends at most this many frames per second
};

class HttpServer {
 public:
  // Binds and starts serving on background threads. Throws detflow::Error when the address
  // is invalid or cannot be bound (in use, no permission).
  HttpServer(const HttpSettings& settings, RunProbe probe);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // "127.0.0.1:8080" with the port actually bound.
  std::string address() const;
  int port() const;
  // Streams end within about a second; idempotent.
  void stop();
  int preview_clients() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace detflow::service
