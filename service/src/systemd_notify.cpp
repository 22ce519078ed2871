// sd_notify spoken directly: a datagram per message to NOTIFY_SOCKET.
#include "detflow/service/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <spdlog/spdlog.h>

namespace detflow::service {

SystemdNotifier::SystemdNotifier(std::string socket_path, double watchdog_interval_s)
    : socket_path_(std::move(socket_path)), watchdog_interval_s_(watchdog_interval_s) {}

SystemdNotifier SystemdNotifier::from_environment() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (!socket || !*socket) return {};
  double watchdog = 0;
  if (const char* microseconds = std::getenv("WATCHDOG_USEC"); microseconds && *microseconds) {
    // WATCHDOG_PID names the process systemd watches; pings from another one are ignored.
    const char* pid = std::getenv("WATCHDOG_PID");
    if (!pid || !*pid || std::strtol(pid, nullptr, 10) == static_cast<long>(::getpid())) {
      watchdog = std::strtod(microseconds, nullptr) / 1e6;
    }
  }
  return SystemdNotifier(socket, watchdog > 0 ? watchdog : 0);
}

bool SystemdNotifier::notify(const std::string& message) const {
  if (!active()) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(address.sun_path)) return false;
  std::memcpy(address.sun_path, socket_path_.data(), socket_path_.size());
  socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path_.size());
  if (socket_path_.front() == '@') {
    address.sun_path[0] = '\0';  // abstract namespace: no terminating NUL counted
  } else {
    length += 1;
  }
  const int descriptor = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (descriptor < 0) return false;
  const ssize_t sent = ::sendto(descriptor, message.data(), message.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&address), length);
  ::close(descriptor);
  return sent == static_cast<ssize_t>(message.size());
}

ServiceNotifier::ServiceNotifier(RunProbe probe, SystemdNotifier notifier)
    : probe_(std::move(probe)), notifier_(std::move(notifier)) {
  if (!notifier_.active()) return;
  spdlog::debug("systemd: notifying {} (watchdog every {} s)", "NOTIFY_SOCKET", notifier_.watchdog_interval_s());
  thread_ = std::thread([this] { watch(); });
}

ServiceNotifier::~ServiceNotifier() { stop(); }

void ServiceNotifier::stop(const std::string& status) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    notifier_.notify("STOPPING=1\nSTATUS=" + status);
  }
}

namespace {

std::string status_line(const RunProbe& probe, const Health& health) {
  const Statistics statistics = probe.statistics();
  std::ostringstream line;
  line.precision(1);
  line << std::fixed << "source " << to_string(probe.source_counters().state) << ", " << statistics.fps << " frames/s, "
       << statistics.frames_processed << " processed, " << statistics.frames_dropped << " dropped";
  if (!health.ready) line << "; not ready: " << health.reason;
  return line.str();
}

}  // namespace

void ServiceNotifier::watch() {
  using std::chrono::duration;
  const auto poll = std::chrono::milliseconds(250);  // READY=1 within a quarter second of the first frame
  const double watchdog_every = notifier_.watchdog_interval_s() / 3;
  const double status_every = 10;
  bool ready_sent = false;
  std::string last_state;
  auto last_ping = Clock::now() - std::chrono::hours(1);
  auto last_status = last_ping;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    const Health health = judge_health(probe_);
    const auto now = Clock::now();
    std::string message;
    if (!ready_sent && health.seconds_since_frame >= 0) {
      message += "READY=1\n";
      ready_sent = true;
    }
    if (watchdog_every > 0 && health.alive && duration<double>(now - last_ping).count() >= watchdog_every) {
      message += "WATCHDOG=1\n";
      last_ping = now;
    }
    const std::string state = std::string(to_string(probe_.source_counters().state)) + (health.ready ? "+" : "-");
    if (state != last_state || duration<double>(now - last_status).count() >= status_every) {
      message += "STATUS=" + status_line(probe_, health) + "\n";
      last_state = state;
      last_status = now;
    }
    if (!message.empty()) notifier_.notify(message);
    lock.lock();
    wake_.wait_for(lock, poll, [this] { return stopping_; });
  }
}

}  // namespace detflow::service
