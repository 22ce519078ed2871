// detflow/bench/soak.h — `detflow bench --soak SECONDS`: does resident memory grow while
// the pipeline runs on a live source?
//
// The soak runs detflow's Pipeline (no sinks: detections are counted) on a live source for
// the requested time in a forked child process (process_probe.h), sampling the child's
// resident set (VmRSS) once a second. The first part is warm-up and not judged (allocator
// arenas, OpenCV and oneTBB pools, GStreamer buffer pools fill up there): the larger of 10 s
// and 20 % of the soak, unless that leaves fewer than 10 samples, in which case 20 %. A
// least-squares line through the remaining samples gives the growth in MiB per hour, with
// its standard error (a two-minute soak resolves a few MiB per hour, not less: allocator
// noise of a few hundred KiB dominates short runs, so long soaks give the trustworthy number).
//
// Thread-safety: run_soak() forks; call it from one thread of a process that has not
// started thread pools (as run_bench()).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "detflow/pipeline/detector.h"

namespace detflow::bench {

// The live source a soak uses when none is given: GStreamer's test pattern at 30 FPS, VGA.
inline constexpr const char* default_soak_source =
    "gst:videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=30/1";

struct SoakOptions {
  ModelSettings model;
  std::string backend = "auto";
  std::string target = "cpu";
  std::string source = default_soak_source;  // a live URI (gst:..., rtsp://, camera)
  double seconds = 120;                      // > 0
  int workers = 1;                           // as `detflow run` on a live source
  int threads = 0;                           // intra-op threads; 0: all cores
  double goal_mib_per_hour = 1.0;
};

// A least-squares line y = intercept + slope x, and the standard error of the slope (0 when
// fewer than 3 points).
struct LineFit {
  double slope = 0;
  double intercept = 0;
  double slope_standard_error = 0;
};
// Throws detflow::Error when there are fewer than 2 points or x does not vary.
LineFit fit_line(const std::vector<double>& x, const std::vector<double>& y);

// Seconds of warm-up for a soak of `seconds` (see the file comment).
double soak_warm_up_seconds(double seconds);

// Runs the soak and returns its report. Keys: source, seconds, warm_up_s, samples
// [{t_s, rss_kb}], judged_samples, start_rss_mib, end_rss_mib, peak_rss_mib,
// slope_mib_per_hour, slope_standard_error_mib_per_hour, goal_mib_per_hour, met, fps,
// frames_read, frames_processed, frames_dropped, frames_failed, backend, workers, threads.
// Throws detflow::Error for bad options or a source/model that cannot open.
nlohmann::json run_soak(const SoakOptions& options);

// The soak section of the bench table.
std::string format_soak_table(const nlohmann::json& soak);

}  // namespace detflow::bench
