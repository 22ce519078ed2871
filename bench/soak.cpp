#include "detflow/bench/soak.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <thread>

#include "detflow/bench/process_probe.h"
#include "detflow/error.h"
#include "detflow/pipeline/pipeline.h"
#include "detflow/pipeline/source.h"

namespace detflow::bench {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr double seconds_per_hour = 3600.0;
constexpr double kib_per_mib = 1024.0;

std::string fixed(double value, int digits) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(digits) << value;
  return text.str();
}

struct Sample {
  double seconds = 0;
  std::int64_t resident_kb = 0;
};

// In the child: the pipeline on the live source, VmRSS each second.
json soak_in_child(const SoakOptions& options) {
  SourceSettings source_settings;
  source_settings.uri = options.source;
  source_settings.mode = SourceMode::live;
  std::unique_ptr<Source> source = open_source(source_settings);
  const std::string description = source->info().description;
  EngineOptions engine;
  engine.backend = options.backend;
  engine.target = options.target;
  engine.intra_op_threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  DetectorSetup detector(options.model, engine);
  PipelineSettings settings;
  settings.workers = options.workers;
  settings.progress = false;
  Pipeline pipeline(detector, std::move(source), {}, settings);

  std::vector<Sample> samples;
  std::mutex mutex;
  std::condition_variable finished_signal;
  bool finished = false;
  const auto start = SteadyClock::now();
  std::thread sampler([&] {
    std::unique_lock lock(mutex);
    for (int second = 1;; ++second) {
      if (finished_signal.wait_until(lock, start + std::chrono::seconds(second), [&] { return finished; })) return;
      samples.push_back({std::chrono::duration<double>(SteadyClock::now() - start).count(), resident_kb()});
      if (second >= options.seconds) pipeline.request_stop();  // a live source never ends by itself
    }
  });
  const auto stop_sampler = [&] {
    {
      const std::lock_guard lock(mutex);
      finished = true;
    }
    finished_signal.notify_all();
    sampler.join();
  };
  RunSummary summary;
  try {
    summary = pipeline.run();
  } catch (...) {
    stop_sampler();
    throw;
  }
  stop_sampler();
  const double elapsed = std::chrono::duration<double>(SteadyClock::now() - start).count();
  if (summary.failed) throw std::runtime_error("soak pipeline failed: " + summary.failure);

  json result;
  result["source"] = description;
  result["backend"] = detector.engine_report().backend;
  result["workers"] = options.workers;
  result["threads"] = engine.intra_op_threads;
  result["elapsed_s"] = elapsed;
  const Statistics& statistics = summary.statistics;
  result["frames_read"] = statistics.frames_read;
  result["frames_processed"] = statistics.frames_processed;
  result["frames_dropped"] = statistics.frames_dropped;
  result["frames_failed"] = statistics.frames_failed;
  result["fps"] = elapsed > 0 ? static_cast<double>(statistics.frames_processed) / elapsed : 0.0;
  json sample_list = json::array();
  for (const auto& sample : samples) sample_list.push_back({{"t_s", sample.seconds}, {"rss_kb", sample.resident_kb}});
  result["samples"] = sample_list;
  return result;
}

}  // namespace

LineFit fit_line(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size() || x.size() < 2) {
    throw Error("a line fit needs at least 2 points with x and y of equal count (got " + std::to_string(x.size()) +
                " and " + std::to_string(y.size()) + ")");
  }
  const auto count = static_cast<double>(x.size());
  double mean_x = 0, mean_y = 0;
  for (std::size_t index = 0; index < x.size(); ++index) {
    mean_x += x[index];
    mean_y += y[index];
  }
  mean_x /= count;
  mean_y /= count;
  double sxx = 0, sxy = 0;
  for (std::size_t index = 0; index < x.size(); ++index) {
    sxx += (x[index] - mean_x) * (x[index] - mean_x);
    sxy += (x[index] - mean_x) * (y[index] - mean_y);
  }
  if (!(sxx > 0)) throw Error("a line fit needs x values that vary");
  LineFit fit;
  fit.slope = sxy / sxx;
  fit.intercept = mean_y - fit.slope * mean_x;
  if (x.size() > 2) {
    double residuals = 0;
    for (std::size_t index = 0; index < x.size(); ++index) {
      const double residual = y[index] - (fit.intercept + fit.slope * x[index]);
      residuals += residual * residual;
    }
    fit.slope_standard_error = std::sqrt(residuals / (count - 2) / sxx);
  }
  return fit;
}

double soak_warm_up_seconds(double seconds) {
  const double preferred = std::max(10.0, 0.2 * seconds);
  return seconds - preferred >= 10.0 ? preferred : 0.2 * seconds;
}

json run_soak(const SoakOptions& options) {
  if (!(options.seconds >= 5)) {
    throw Error("--soak " + fixed(options.seconds, 1) +
                " is too short (expected at least 5 seconds; 120 or more "
                "resolve a slope of a few MiB per hour)");
  }
  if (options.workers < 1) throw Error("soak workers " + std::to_string(options.workers) + " must be 1 or more");
  if (options.source.empty())
    throw Error("soak source is empty; give a live URI such as gst:videotestsrc is-live=true");
  json soak = json::parse(run_in_child("soak for " + fixed(options.seconds, 0) + " s",
                                       [&options] { return soak_in_child(options).dump(); }));
  const double warm_up = soak_warm_up_seconds(options.seconds);
  std::vector<double> hours, mib;
  double peak_kb = 0;
  for (const auto& sample : soak["samples"]) {
    const double seconds = sample["t_s"].get<double>();
    const double resident = sample["rss_kb"].get<double>();
    peak_kb = std::max(peak_kb, resident);
    if (seconds <= warm_up || resident <= 0) continue;
    hours.push_back(seconds / seconds_per_hour);
    mib.push_back(resident / kib_per_mib);
  }
  soak["uri"] = options.source;
  soak["seconds"] = options.seconds;
  soak["warm_up_s"] = warm_up;
  soak["judged_samples"] = hours.size();
  soak["goal_mib_per_hour"] = options.goal_mib_per_hour;
  soak["peak_rss_mib"] = peak_kb / kib_per_mib;
  soak["method"] =
      "VmRSS of a forked child running the pipeline (no sinks) each second; least-squares line through the samples "
      "after warm-up";
  if (hours.size() < 3) {
    soak["slope_mib_per_hour"] = nullptr;
    soak["met"] = false;
    soak["note"] = "too few samples after warm-up to fit a line";
    return soak;
  }
  const LineFit fit = fit_line(hours, mib);
  soak["start_rss_mib"] = mib.front();
  soak["end_rss_mib"] = mib.back();
  soak["slope_mib_per_hour"] = fit.slope;
  soak["slope_standard_error_mib_per_hour"] = fit.slope_standard_error;
  soak["met"] = fit.slope <= options.goal_mib_per_hour;
  return soak;
}

std::string format_soak_table(const json& soak) {
  std::ostringstream out;
  out << "soak (" << soak.value("source", soak.value("uri", "")) << ", " << soak.value("backend", "") << ", "
      << soak.value("workers", 1) << " worker x " << soak.value("threads", 0)
      << " threads): " << fixed(soak.value("elapsed_s", 0.0), 0) << " s, " << soak.value("frames_processed", 0)
      << " frames at " << fixed(soak.value("fps", 0.0), 1) << " FPS, " << soak.value("frames_dropped", 0)
      << " dropped, " << soak.value("frames_failed", 0) << " failed\n";
  if (soak["slope_mib_per_hour"].is_null()) {
    out << "  resident memory: " << soak.value("note", std::string("no slope")) << "\n";
    return out.str();
  }
  out << "  resident memory after " << fixed(soak.value("warm_up_s", 0.0), 0)
      << " s warm-up: " << fixed(soak.value("start_rss_mib", 0.0), 1) << " MiB -> "
      << fixed(soak.value("end_rss_mib", 0.0), 1) << " MiB (peak " << fixed(soak.value("peak_rss_mib", 0.0), 1)
      << " MiB)\n";
  out << "  slope " << fixed(soak.value("slope_mib_per_hour", 0.0), 2) << " +/- "
      << fixed(soak.value("slope_standard_error_mib_per_hour", 0.0), 2) << " MiB/hour over "
      << soak.value("judged_samples", 0) << " samples (goal <= " << fixed(soak.value("goal_mib_per_hour", 1.0), 1)
      << "): " << (soak.value("met", false) ? "met" : "NOT met") << "\n";
  return out.str();
}

}  // namespace detflow::bench
