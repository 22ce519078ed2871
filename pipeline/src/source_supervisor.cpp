// Supervision of live sources: reopen after a loss with exponential backoff and jitter,
// and a stall watchdog. The graph keeps calling read(); a loss shows as a gap between
// frames and as state changes in counters(), never as the end of the stream (unless the
// reopenings are bounded and run out).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>

#include "detflow/error.h"
#include "source_internal.h"

namespace detflow::detail {
namespace {

using Seconds = std::chrono::duration<double>;

// The watchdog looks this often at a read in progress (at most; shorter for short timeouts).
constexpr Seconds kLongestWatchdogPeriod{0.25};
// The default stall timeout: max(5 s, 10 frame intervals).
constexpr Seconds kShortestDefaultStall{5.0};
constexpr double kFrameIntervalsBeforeStall = 10;
// A reopened stream has this long (or the stall timeout, if longer) to deliver its first
// frame: an H.264 camera sends its first decodable frame at the next key frame, seconds away.
constexpr std::chrono::milliseconds kShortestReopenTimeout{10000};
// Each backoff wait is scaled by a random factor in [1 - jitter, 1 + jitter], so boards
// that lost the same camera do not all knock at the same instant.
constexpr double kJitter = 0.2;

std::string seconds_text(Seconds seconds) {
  char text[32];
  std::snprintf(text, sizeof text, seconds.count() < 1 ? "%.2f s" : "%.1f s", seconds.count());
  return text;
}

class SupervisedSource final : public Source {
 public:
  SupervisedSource(std::unique_ptr<Source> first, SourceOpener reopen, const SupervisionSettings& settings)
      : reopen_(std::move(reopen)),
        settings_(settings),
        info_(first->info()),
        stall_timeout_(stall_timeout_for(settings, info_)),
        reopen_timeout_(
            std::max(kShortestReopenTimeout, std::chrono::duration_cast<std::chrono::milliseconds>(stall_timeout_))),
        inner_(std::move(first)),
        errors_at_open_(inner_->counters().read_errors),
        random_(std::random_device{}()) {
    watchdog_ = std::thread([this] { watch_for_stalls(); });
  }

  ~SupervisedSource() override {
    {
      std::lock_guard lock(mutex_);
      quit_watchdog_ = true;
    }
    wake_.notify_all();
    watchdog_.join();
  }

  const SourceInfo& info() const override { return info_; }

  bool read(Frame& frame) override {
    while (!stopped_.load()) {
      // Only this thread replaces inner_, so it may use the pointer without the lock. It is
      // null only after read() threw because the reopenings ran out.
      if (!inner_) return false;
      Source& inner = *inner_;
      {
        std::lock_guard lock(mutex_);
        reading_ = true;
        read_started_ = Clock::now();
      }
      bool delivered = false;
      try {
        delivered = inner.read(frame);
      } catch (...) {
        std::lock_guard lock(mutex_);
        reading_ = false;
        throw;  // a frame the source cannot convert: not a connection problem
      }
      bool stalled = false;
      {
        std::lock_guard lock(mutex_);
        reading_ = false;
        stalled = stalled_;
      }
      if (delivered) {
        continue_timeline(frame);
        return true;
      }
      if (stopped_.load()) return false;
      if (!stalled && settings_.end_of_stream_is_final && !ended_by_error(inner)) return false;
      lose(stalled ? "no frame for " + seconds_text(stall_timeout_) + " (stalled)" : why_it_ended(inner), stalled);
      if (!reconnect()) return false;
    }
    return false;
  }

  void stop() override {
    stopped_.store(true);
    {
      std::lock_guard lock(mutex_);
      if (inner_) inner_->stop();
    }
    wake_.notify_all();
  }

  SourceCounters counters() const override {
    std::lock_guard lock(mutex_);
    SourceCounters counters = own_;
    const SourceCounters inner = inner_ ? inner_->counters() : SourceCounters{};
    counters.corrupt_frames = closed_.corrupt_frames + inner.corrupt_frames;
    counters.read_errors = closed_.read_errors + inner.read_errors;
    counters.last_warning = inner.last_warning.empty() ? closed_.last_warning : inner.last_warning;
    if (counters.state != SourceState::up) counters.seconds_disconnected += Seconds(Clock::now() - down_since_).count();
    return counters;
  }

 private:
  // Keeps pts increasing across reopenings: a new connection's clock starts anywhere (often
  // at 0), so its first frame is placed after the last one by the wall-clock time between them.
  void continue_timeline(Frame& frame) {
    const auto now = Clock::now();
    if (frame.pts_ms >= 0) {
      if (new_connection_) {
        const double gap_ms = std::chrono::duration<double, std::milli>(now - last_frame_time_).count();
        pts_offset_ms_ = (last_pts_ms_ >= 0 ? last_pts_ms_ + gap_ms : 0.0) - frame.pts_ms;
      }
      frame.pts_ms += pts_offset_ms_;
      last_pts_ms_ = frame.pts_ms;
    }
    new_connection_ = false;
    last_frame_time_ = now;
  }

  bool ended_by_error(const Source& inner) const { return inner.counters().read_errors > errors_at_open_; }

  // The inner source's own explanation when it counted a new error, else the end of the stream.
  std::string why_it_ended(const Source& inner) const {
    const SourceCounters counters = inner.counters();
    if (counters.read_errors > errors_at_open_ && !counters.last_warning.empty()) return counters.last_warning;
    return "the stream ended";
  }

  void lose(const std::string& reason, bool stalled) {
    std::unique_ptr<Source> lost;
    {
      std::lock_guard lock(mutex_);
      const SourceCounters inner = inner_->counters();
      closed_.corrupt_frames += inner.corrupt_frames;
      closed_.read_errors += inner.read_errors;
      if (!inner.last_warning.empty()) closed_.last_warning = inner.last_warning;
      own_.state = SourceState::down;
      own_.last_error = reason;
      if (stalled) ++own_.stalls;
      down_since_ = Clock::now();
      lost = std::move(inner_);
    }
    spdlog::warn("source '{}': lost: {}; reconnecting (first wait {})", settings_.label, reason,
                 seconds_text(settings_.reconnect_initial));
    lost.reset();  // stops its pipeline outside the lock: counters() stays responsive
  }

  // Reopens until a new source delivers (true) or stop() (false); throws when
  // max_reconnects failed reopenings in a row used up the allowance.
  bool reconnect() {
    Seconds wait = settings_.reconnect_initial;
    int failures = 0;
    while (!stopped_.load()) {
      if (!wait_or_stop(jittered(wait))) return false;
      set_state(SourceState::connecting);
      try {
        std::unique_ptr<Source> fresh = reopen_(stopped_, reopen_timeout_);
        if (!fresh) throw Error(ErrorKind::source, "source '" + settings_.label + "': reopening gave no source");
        welcome(std::move(fresh), failures + 1);
        return true;
      } catch (const Error& error) {
        if (stopped_.load()) return false;
        ++failures;
        {
          std::lock_guard lock(mutex_);
          own_.state = SourceState::down;
          own_.last_error = error.what();
        }
        spdlog::debug("source '{}': reopening {} failed: {}", settings_.label, failures, error.what());
        if (settings_.max_reconnects > 0 && failures >= settings_.max_reconnects) {
          throw Error(ErrorKind::source_lost,
                      "source '" + settings_.label + "': given up after " + std::to_string(failures) +
                          " failed reopenings (source.max_reconnects); last error: " + error.what());
        }
        wait = std::min(wait * 2, settings_.reconnect_max);
      }
    }
    return false;
  }

  void welcome(std::unique_ptr<Source> fresh, int attempts) {
    const SourceInfo& fresh_info = fresh->info();
    if (fresh_info.width > 0 && info_.width > 0 &&
        (fresh_info.width != info_.width || fresh_info.height != info_.height)) {
      spdlog::warn("source '{}': came back at {}x{} instead of {}x{}", settings_.label, fresh_info.width,
                   fresh_info.height, info_.width, info_.height);
    }
    Seconds outage{0};
    {
      std::lock_guard lock(mutex_);
      errors_at_open_ = fresh->counters().read_errors;
      inner_ = std::move(fresh);
      stalled_ = false;
      outage = Clock::now() - down_since_;
      own_.seconds_disconnected += outage.count();
      own_.state = SourceState::up;
      ++own_.reconnects;
    }
    // stop() may have come while the new source was being made, before it was inner_.
    if (stopped_.load()) inner_->stop();
    new_connection_ = true;
    spdlog::info("source '{}': up again after {} ({} reopening{})", settings_.label, seconds_text(outage), attempts,
                 attempts == 1 ? "" : "s");
  }

  void set_state(SourceState state) {
    std::lock_guard lock(mutex_);
    own_.state = state;
  }

  Seconds jittered(Seconds wait) {
    std::uniform_real_distribution<double> factor(1.0 - kJitter, 1.0 + kJitter);
    return wait * factor(random_);
  }

  // Waits `duration` unless stop() comes first; false when stopped.
  bool wait_or_stop(Seconds duration) {
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, duration, [this] { return stopped_.load(); });
    return !stopped_.load();
  }

  // A read that has waited longer than the stall timeout is ended by stopping the inner
  // source; read() sees `stalled_` and reopens. Reads are timed, not frames: in file mode
  // the graph may not call read() for a while, which is not a stall.
  void watch_for_stalls() {
    const Seconds period = std::min(kLongestWatchdogPeriod, stall_timeout_ / 4);
    std::unique_lock lock(mutex_);
    while (!quit_watchdog_) {
      wake_.wait_for(lock, period, [this] { return quit_watchdog_; });
      if (reading_ && !stalled_ && inner_ && Clock::now() - read_started_ > stall_timeout_) {
        stalled_ = true;
        inner_->stop();
      }
    }
  }

  const SourceOpener reopen_;
  const SupervisionSettings settings_;
  const SourceInfo info_;  // as first opened; a reopened source is expected to match
  const Seconds stall_timeout_;
  const std::chrono::milliseconds reopen_timeout_;
  std::atomic<bool> stopped_{false};

  mutable std::mutex mutex_;  // guards everything below up to the reading thread's own state
  std::condition_variable wake_;
  std::unique_ptr<Source> inner_;  // null between a loss and the next successful reopening
  SourceCounters own_;             // state, reconnects, stalls, seconds_disconnected, last_error
  SourceCounters closed_;          // corrupt frames, read errors and warnings of closed sources
  Clock::time_point down_since_{};
  bool reading_ = false;
  bool stalled_ = false;  // the watchdog stopped inner_; cleared when a new source replaces it
  Clock::time_point read_started_{};
  bool quit_watchdog_ = false;

  // The reading thread's own state.
  std::int64_t errors_at_open_ = 0;
  bool new_connection_ = false;
  double last_pts_ms_ = -1.0;
  double pts_offset_ms_ = 0;
  Clock::time_point last_frame_time_{};
  std::mt19937 random_;
  std::thread watchdog_;  // last: it uses everything above
};

}  // namespace

Seconds stall_timeout_for(const SupervisionSettings& settings, const SourceInfo& info) {
  if (settings.stall_timeout.count() > 0) return settings.stall_timeout;
  const Seconds frame_intervals{info.fps > 0 ? kFrameIntervalsBeforeStall / info.fps : 0.0};
  return std::max(kShortestDefaultStall, frame_intervals);
}

SupervisionSettings supervision_settings(const SourceSettings& settings) {
  SupervisionSettings supervision;
  supervision.label = settings.uri;
  supervision.reconnect_initial = Seconds(settings.reconnect_initial);
  supervision.reconnect_max = Seconds(std::max(settings.reconnect_max, settings.reconnect_initial));
  supervision.max_reconnects = settings.max_reconnects;
  supervision.stall_timeout = Seconds(settings.stall_timeout);
  return supervision;
}

std::unique_ptr<Source> supervise_source(std::unique_ptr<Source> first, SourceOpener reopen,
                                         const SupervisionSettings& settings) {
  if (!first) throw Error("supervise_source: no source given");
  if (settings.reconnect_initial.count() <= 0 || settings.max_reconnects < 0 || settings.stall_timeout.count() < 0) {
    throw Error("source '" + settings.label +
                "': reconnect_initial must be > 0, max_reconnects >= 0 and stall_timeout >= 0 (seconds)");
  }
  return std::make_unique<SupervisedSource>(std::move(first), std::move(reopen), settings);
}

}  // namespace detflow::detail
