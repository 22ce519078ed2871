#include "loopback.h"

#include <stdexcept>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace detflow::test {

int free_loopback_port(bool udp) {
  const int probe = ::socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (probe < 0) throw std::runtime_error("no socket for a free loopback port");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(probe);
    throw std::runtime_error("no free loopback port");
  }
  ::close(probe);
  return ntohs(address.sin_port);
}

}  // namespace detflow::test
