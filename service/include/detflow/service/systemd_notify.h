// detflow/service/systemd_notify.h — telling systemd how a run is going (sd_notify protocol).
//
// The protocol is one datagram per message on the AF_UNIX socket named by NOTIFY_SOCKET
// (a path, or "@name" for the abstract namespace), "KEY=value" lines. Spoken directly:
// no libsystemd needed, and nothing happens when NOTIFY_SOCKET is unset (not under systemd).
//
// ServiceNotifier watches a run through its RunProbe on its own thread:
//   READY=1      once, after the first frame reached the outputs (Type=notify: systemd
//                counts the service as started only then)
//   WATCHDOG=1   every WATCHDOG_USEC / 3 while the run is alive (judge_health: frames
//                within the stall timeout, or the source reconnecting); a hung graph stops
//                the pings and systemd restarts the service after WatchdogSec
//   STATUS=...   one line ("source up, 24.8 frames/s, 1520 processed, 0 dropped") when
//                the state changes and every 10 s
//   STOPPING=1   when stopped
// Thread-safety: construct and stop() from one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "detflow/service/run_probe.h"

namespace detflow::service {

class SystemdNotifier {
 public:
  // NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment.
  static SystemdNotifier from_environment();
  SystemdNotifier() = default;
  SystemdNotifier(std::string socket_path, double watchdog_interval_s);

  bool active() const { return !socket_path_.empty(); }
  // 0 when systemd expects no watchdog pings.
  double watchdog_interval_s() const { return watchdog_interval_s_; }
  // Sends one message ("READY=1", "STATUS=..."); false when inactive or the send failed.
  bool notify(const std::string& message) const;

 private:
  std::string socket_path_;
  double watchdog_interval_s_ = 0;
};

class ServiceNotifier {
 public:
  // Starts the watching thread when `notifier` is active; otherwise does nothing.
  ServiceNotifier(RunProbe probe, SystemdNotifier notifier);
  ~ServiceNotifier();  // stop()
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  // Sends STOPPING=1 with `status` as the last STATUS line; idempotent.
  void stop(const std::string& status = "stopping");

 private:
  void watch();

  RunProbe probe_;
  SystemdNotifier notifier_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace detflow::service
