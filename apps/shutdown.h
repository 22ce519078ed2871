// shutdown.h — SIGINT/SIGTERM handling for the command line.
//
// block_termination_signals() must run first in main(), before any thread exists, so
// every thread inherits the blocked mask and SIGINT and SIGTERM (and SIGUSR1, used
// internally to wake the watcher when it ends) are only ever received by the watcher
// thread (sigtimedwait): no code runs in signal-handler context.
//
// ShutdownWatcher owns that thread. Its policy:
//   - a signal while no run is registered: exit at once (status 130);
//   - the first signal during a run: Pipeline::request_stop(); the run drains, finishes
//     its sinks and returns normally;
//   - a second signal: finish() the registered file sinks (so a video still plays), then
//     _exit(130) without waiting for the pipeline.
// Thread-safety: watch()/forget() may be called from any thread; forget() returns only
// when the watcher no longer uses the pipeline or the sinks, so they may be destroyed next.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace detflow {
class Pipeline;
class Sink;
}  // namespace detflow

namespace detflow::app {

void block_termination_signals();

class ShutdownWatcher {
 public:
  ShutdownWatcher();
  ~ShutdownWatcher();
  ShutdownWatcher(const ShutdownWatcher&) = delete;
  ShutdownWatcher& operator=(const ShutdownWatcher&) = delete;

  // Registers a run: `pipeline` gets request_stop(); `sinks_to_finish` are finished on a
  // second signal. Neither is owned.
  void watch(Pipeline* pipeline, std::vector<Sink*> sinks_to_finish);
  void forget();
  // Signals received so far.
  int signals_received() const { return signals_received_.load(); }

 private:
  void wait_for_signals();

  std::mutex mutex_;  // guards pipeline_ and sinks_ against forget() while a signal is handled
  Pipeline* pipeline_ = nullptr;
  std::vector<Sink*> sinks_;
  std::atomic<bool> quit_{false};
  std::atomic<int> signals_received_{0};
  std::thread thread_;
};

}  // namespace detflow::app
