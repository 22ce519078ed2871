#include "shutdown.h"

#include <csignal>
#include <ctime>
#include <exception>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "detflow/pipeline/pipeline.h"
#include "detflow/pipeline/sink.h"

namespace detflow::app {

namespace {

// SIGUSR1 only wakes the watcher when it should end (see ~ShutdownWatcher).
constexpr int wake_signal = SIGUSR1;

sigset_t watched_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, wake_signal);
  return signals;
}

}  // namespace

void block_termination_signals() {
  const sigset_t signals = watched_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

ShutdownWatcher::ShutdownWatcher() : thread_([this] { wait_for_signals(); }) {}

ShutdownWatcher::~ShutdownWatcher() {
  quit_.store(true);
  pthread_kill(thread_.native_handle(), wake_signal);
  thread_.join();
}

void ShutdownWatcher::watch(Pipeline* pipeline, std::vector<Sink*> sinks_to_finish) {
  std::lock_guard lock(mutex_);
  pipeline_ = pipeline;
  sinks_ = std::move(sinks_to_finish);
}

void ShutdownWatcher::forget() {
  std::lock_guard lock(mutex_);
  pipeline_ = nullptr;
  sinks_.clear();
}

void ShutdownWatcher::wait_for_signals() {
  const sigset_t signals = watched_signals();
  // The timeout is only a safety net; the destructor wakes the thread with wake_signal.
  const timespec poll_interval{1, 0};
  while (!quit_.load()) {
    const int signal_number = sigtimedwait(&signals, nullptr, &poll_interval);
    if (signal_number < 0 || signal_number == wake_signal) continue;  // timeout, EINTR or wake-up
    const int count = signals_received_.fetch_add(1) + 1;
    std::lock_guard lock(mutex_);
    if (!pipeline_) {
      spdlog::warn("interrupted ({}) before processing started", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
      std::_Exit(exit_interrupted);
    }
    if (count == 1) {
      spdlog::warn("{}: stopping after the frames in flight (send it again to quit at once)",
                   signal_number == SIGINT ? "SIGINT" : "SIGTERM");
      pipeline_->request_stop();
      continue;
    }
    spdlog::warn("second signal: closing the output files and quitting at once");
    for (Sink* sink : sinks_) {
      try {
        sink->finish();
      } catch (const std::exception& error) {
        spdlog::error("{}", error.what());
      }
    }
    spdlog::default_logger()->flush();
    ::_exit(exit_interrupted);
  }
}

}  // namespace detflow::app
