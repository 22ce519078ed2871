// stream_reader.h — a raw MJPEG client for the service tests: reads multipart/x-mixed-replace
// part by part at the test's pace (or not at all, to play a stuck client).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace detflow::service {

// A raw client that reads the multipart stream part by part, at its own pace.
class StreamReader {
 public:
  explicit StreamReader(int port, const std::string& path = "/stream.mjpg") {
    descriptor_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int small = 4096;  // little kernel buffering, so a pause really holds the server back
    ::setsockopt(descriptor_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(descriptor_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    timeval timeout{10, 0};  // a test never hangs on a silent server
    ::setsockopt(descriptor_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (connected_) connected_ = ::send(descriptor_, request.data(), request.size(), 0) > 0;
  }
  ~StreamReader() { ::close(descriptor_); }
  bool connected() const { return connected_; }

  // The status line and headers of the response.
  std::string head() { return until("\r\n\r\n"); }
  // The next part's frame index, or -1 when the stream ended; reads the JPEG too.
  std::int64_t next_part() {
    const std::string headers = until("\r\n\r\n");
    const auto index_at = headers.find("X-Frame-Index: ");
    const auto length_at = headers.find("Content-Length: ");
    if (index_at == std::string::npos || length_at == std::string::npos) return -1;
    const auto length = std::stoul(headers.substr(length_at + 16));
    if (take(length + 2).size() != length + 2) return -1;
    return std::stoll(headers.substr(index_at + 15));
  }

 private:
  std::string until(const std::string& end) {
    std::string text;
    char c;
    while (text.size() < 65536 && ::recv(descriptor_, &c, 1, 0) == 1) {
      text += c;
      if (text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0) return text;
    }
    return text;
  }
  std::string take(std::size_t size) {
    std::string data(size, '\0');
    std::size_t have = 0;
    while (have < size) {
      const ssize_t got = ::recv(descriptor_, data.data() + have, size - have, 0);
      if (got <= 0) break;
      have += static_cast<std::size_t>(got);
    }
    data.resize(have);
    return data;
  }
  int descriptor_ = -1;
  bool connected_ = false;
};

}  // namespace detflow::service
