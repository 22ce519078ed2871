#include "progress.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include <spdlog/spdlog.h>

namespace detflow::detail {
namespace {

constexpr auto kRedrawPeriod = std::chrono::milliseconds(500);

std::int64_t frames_done(const Statistics& statistics) {
  return statistics.frames_processed + statistics.frames_failed;
}

std::string clock_text(double seconds) {
  const auto total = static_cast<long long>(std::llround(seconds));
  std::ostringstream text;
  if (total >= 3600) text << total / 3600 << ":" << (total / 60 % 60 < 10 ? "0" : "");
  text << total / 60 % 60 << ":" << (total % 60 < 10 ? "0" : "") << total % 60;
  return text.str();
}

}  // namespace

double estimated_seconds_left(const Statistics& statistics) {
  const std::int64_t done = frames_done(statistics);
  if (statistics.frames_total <= 0 || done <= 0 || statistics.elapsed_s <= 0) return -1.0;
  const double rate = static_cast<double>(done) / statistics.elapsed_s;
  return static_cast<double>(std::max<std::int64_t>(0, statistics.frames_total - done)) / rate;
}

std::string format_progress_bar(const Statistics& statistics, int width) {
  const std::int64_t done = frames_done(statistics);
  std::ostringstream tail;
  tail << std::fixed << std::setprecision(1) << "  " << done;
  double fraction = 0.0;
  if (statistics.frames_total > 0) {
    fraction = std::clamp(static_cast<double>(done) / static_cast<double>(statistics.frames_total), 0.0, 1.0);
    tail << "/" << statistics.frames_total << "  " << static_cast<int>(fraction * 100.0) << " %";
  }
  tail << "  " << statistics.fps << " fps";
  if (const double left = estimated_seconds_left(statistics); left >= 0) tail << "  ETA " << clock_text(left);
  if (statistics.frames_dropped > 0) tail << "  " << statistics.frames_dropped << " dropped";
  if (statistics.frames_failed > 0) tail << "  " << statistics.frames_failed << " failed";
  const std::string suffix = tail.str();
  if (statistics.frames_total <= 0) return suffix.substr(2);
  const int bar_width = std::max(10, width - static_cast<int>(suffix.size()) - 2);
  const int filled = static_cast<int>(std::floor(fraction * bar_width));
  std::string bar;
  bar.reserve(static_cast<std::size_t>(bar_width) + suffix.size() + 2);
  bar.push_back('[');
  bar.append(static_cast<std::size_t>(filled), '#');
  bar.append(static_cast<std::size_t>(bar_width - filled), '.');
  bar.push_back(']');
  bar.append(suffix);
  return bar;
}

std::string format_progress_line(const Statistics& statistics) {
  std::ostringstream line;
  line << std::fixed << std::setprecision(1) << "frames " << frames_done(statistics);
  if (statistics.frames_total > 0) {
    line << "/" << statistics.frames_total << " ("
         << static_cast<int>(100.0 * std::min(1.0, static_cast<double>(frames_done(statistics)) /
                                                       static_cast<double>(statistics.frames_total)))
         << " %)";
  }
  line << ", " << statistics.fps << " fps";
  if (const double left = estimated_seconds_left(statistics); left >= 0) line << ", ETA " << clock_text(left);
  line << ", " << statistics.frames_dropped << " dropped, " << statistics.frames_failed << " failed";
  return line.str();
}

ProgressReporter::ProgressReporter(const StatisticsRecorder& statistics, const PipelineSettings& settings,
                                   std::FILE* stream, bool terminal)
    : ProgressReporter([&statistics] { return statistics.snapshot(); }, {}, settings, stream, terminal) {}

ProgressReporter::ProgressReporter(Snapshot total, StreamSnapshots per_stream, const PipelineSettings& settings,
                                   std::FILE* stream, bool terminal)
    : total_(std::move(total)),
      per_stream_(std::move(per_stream)),
      settings_(settings),
      stream_(stream),
      terminal_(terminal) {
  if (settings_.progress || settings_.stats_interval_s > 0) thread_ = std::thread([this] { loop(); });
}

ProgressReporter::~ProgressReporter() { stop(); }

void ProgressReporter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ProgressReporter::loop() {
  using namespace std::chrono;
  const auto started = steady_clock::now();
  const auto every = [](double seconds) {
    return duration_cast<steady_clock::duration>(duration<double>(std::max(seconds, 0.1)));
  };
  const auto progress_period = terminal_ ? steady_clock::duration(kRedrawPeriod) : every(settings_.progress_interval_s);
  const auto statistics_period = every(settings_.stats_interval_s);
  auto next_progress = started + progress_period;
  auto next_statistics = started + statistics_period;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto next = settings_.progress ? next_progress : steady_clock::time_point::max();
    if (settings_.stats_interval_s > 0) next = std::min(next, next_statistics);
    wake_.wait_until(lock, next, [&] { return stopping_; });
    if (stopping_) break;
    const auto now = steady_clock::now();
    const Statistics snapshot = total_();
    if (settings_.stats_interval_s > 0 && now >= next_statistics) {
      next_statistics += statistics_period;
      if (bar_drawn_) std::fputs("\r\033[K", stream_);
      std::vector<Statistics> reports;
      if (per_stream_) reports = per_stream_();
      if (reports.empty()) reports.push_back(snapshot);
      for (const Statistics& report : reports) {
        if (settings_.on_statistics) {
          settings_.on_statistics(report);
        } else {
          spdlog::info("statistics: {}", report.to_line());
        }
      }
    }
    if (settings_.progress && now >= next_progress) {
      next_progress += progress_period;
      if (terminal_) {
        std::fprintf(stream_, "\r\033[K%s", format_progress_bar(snapshot, 100).c_str());
        bar_drawn_ = true;
      } else {
        std::fprintf(stream_, "%s\n", format_progress_line(snapshot).c_str());
      }
      std::fflush(stream_);
    }
  }
  if (bar_drawn_) {
    std::fprintf(stream_, "\r\033[K%s\n", format_progress_bar(total_(), 100).c_str());
    std::fflush(stream_);
  }
}

}  // namespace detflow::detail
