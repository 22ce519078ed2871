// progress.h — periodic statistics and the progress display of a running Pipeline.
// Internal to detflow_pipeline (and its tests).
#pragma once

#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "detflow/pipeline/pipeline.h"
#include "detflow/pipeline/statistics.h"

namespace detflow::detail {

// "[########............]  120/795  15 %  23.1 fps  ETA 0:29" sized to `width` columns.
std::string format_progress_bar(const Statistics& statistics, int width);
// "frames 120/795 (15 %), 23.1 fps, ETA 29 s, 0 dropped, 0 failed" for logs.
std::string format_progress_line(const Statistics& statistics);
// Seconds until frames_total at the current rate; negative when unknown.
double estimated_seconds_left(const Statistics& statistics);

// Runs a thread that, while alive, calls settings.on_statistics (or logs a line) every
// stats_interval_s and draws progress on `stream` (a bar when `terminal`, else a line
// every progress_interval_s). Does nothing when neither is enabled. stop() (or the
// destructor) ends the thread and closes the bar with a newline.
// Progress shows `total()`; the periodic statistics are `per_stream()`, one report per entry
// (one stream: the run's snapshot, with its line and zone counts), or total() when that is
// empty. Both are called from the reporter's thread.
class ProgressReporter {
 public:
  using Snapshot = std::function<Statistics()>;
  using StreamSnapshots = std::function<std::vector<Statistics>()>;
  ProgressReporter(Snapshot total, StreamSnapshots per_stream, const PipelineSettings& settings, std::FILE* stream,
                   bool terminal);
  // A single recorder (tests).
  ProgressReporter(const StatisticsRecorder& statistics, const PipelineSettings& settings, std::FILE* stream,
                   bool terminal);
  ~ProgressReporter();
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;
  void stop();

 private:
  void loop();

  Snapshot total_;
  StreamSnapshots per_stream_;
  const PipelineSettings& settings_;
  std::FILE* stream_;
  bool terminal_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool bar_drawn_ = false;
  std::thread thread_;
};

}  // namespace detflow::detail
