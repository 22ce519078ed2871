#include "detflow/pipeline/statistics.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

namespace detflow {
namespace {

// Buckets are spaced by a constant ratio so the relative error is the same for a 0.1 ms
// preprocessing step and a 2 s stall.
const double kLogMinimum = std::log(LatencyRecorder::kMinimumMs);
const double kLogStep =
    (std::log(LatencyRecorder::kMaximumMs) - kLogMinimum) / static_cast<double>(LatencyRecorder::kBucketCount);

int bucket_of(double milliseconds) {
  if (!(milliseconds > LatencyRecorder::kMinimumMs)) return 0;
  const double position = (std::log(milliseconds) - kLogMinimum) / kLogStep;
  return std::clamp(static_cast<int>(position), 0, LatencyRecorder::kBucketCount - 1);
}

double bucket_centre(int bucket) { return std::exp(kLogMinimum + (static_cast<double>(bucket) + 0.5) * kLogStep); }

void atomic_max(std::atomic<double>& target, double value) {
  double current = target.load(std::memory_order_relaxed);
  while (value > current && !target.compare_exchange_weak(current, value, std::memory_order_relaxed)) {
  }
}

nlohmann::json latency_json(const LatencySummary& summary) {
  return {{"count", summary.count},   {"mean_ms", summary.mean_ms}, {"p50_ms", summary.p50_ms},
          {"p95_ms", summary.p95_ms}, {"p99_ms", summary.p99_ms},   {"max_ms", summary.max_ms}};
}

std::string class_name(const std::string& label, int class_id) {
  return label.empty() ? "class_" + std::to_string(class_id) : label;
}

std::string latency_row(const std::string& name, const LatencySummary& summary) {
  std::ostringstream row;
  row << std::fixed << std::setprecision(2) << "  " << std::left << std::setw(18) << name << std::right << std::setw(8)
      << summary.count << std::setw(10) << summary.mean_ms << std::setw(10) << summary.p50_ms << std::setw(10)
      << summary.p95_ms << std::setw(10) << summary.p99_ms << std::setw(10) << summary.max_ms << "\n";
  return row.str();
}

// "line door: in 3, out 2 (person: in 3, out 1; car: in 0, out 1)" and
// "zone bench: occupancy 1, entered 4 (person: occupancy 1, entered 4)", one per line / zone.
std::string counts_text(const track::CountsSnapshot& counts) {
  std::ostringstream text;
  for (const auto& line : counts.lines) {
    text << "line " << line.name << ": in " << line.in() << ", out " << line.out();
    const char* separator = " (";
    for (const auto& entry : line.classes) {
      text << separator << class_name(entry.label, entry.class_id) << ": in " << entry.in << ", out " << entry.out;
      separator = "; ";
    }
    text << (line.classes.empty() ? "" : ")") << "\n";
  }
  for (const auto& zone : counts.zones) {
    text << "zone " << zone.name << ": occupancy " << zone.occupancy() << ", entered " << zone.entered();
    const char* separator = " (";
    for (const auto& entry : zone.classes) {
      text << separator << class_name(entry.label, entry.class_id) << ": occupancy " << entry.occupancy << ", entered "
           << entry.entered;
      separator = "; ";
    }
    text << (zone.classes.empty() ? "" : ")") << "\n";
  }
  return text.str();
}

}  // namespace

void LatencyRecorder::record(double milliseconds) {
  if (!std::isfinite(milliseconds) || milliseconds < 0) milliseconds = 0;
  buckets_[static_cast<std::size_t>(bucket_of(milliseconds))].fetch_add(1, std::memory_order_relaxed);
  sum_ms_.fetch_add(milliseconds, std::memory_order_relaxed);
  atomic_max(max_ms_, milliseconds);
  count_.fetch_add(1, std::memory_order_release);
}

LatencySummary LatencyRecorder::summary() const {
  LatencySummary summary;
  // Buckets are read one by one while other threads may still record: the snapshot can be
  // off by the samples recorded meanwhile, never inconsistent enough to matter.
  std::array<std::int64_t, kBucketCount> counts{};
  std::int64_t total = 0;
  for (std::size_t bucket = 0; bucket < counts.size(); ++bucket) {
    counts[bucket] = buckets_[bucket].load(std::memory_order_relaxed);
    total += counts[bucket];
  }
  if (total == 0) return summary;
  summary.count = total;
  summary.max_ms = max_ms_.load(std::memory_order_relaxed);
  summary.mean_ms = sum_ms_.load(std::memory_order_relaxed) / static_cast<double>(count_.load());
  const auto percentile = [&](double fraction) {
    const auto rank = static_cast<std::int64_t>(std::ceil(fraction * static_cast<double>(total)));
    std::int64_t seen = 0;
    for (int bucket = 0; bucket < kBucketCount; ++bucket) {
      seen += counts[static_cast<std::size_t>(bucket)];
      if (seen >= std::max<std::int64_t>(rank, 1)) return std::min(bucket_centre(bucket), summary.max_ms);
    }
    return summary.max_ms;
  };
  summary.p50_ms = percentile(0.50);
  summary.p95_ms = percentile(0.95);
  summary.p99_ms = percentile(0.99);
  return summary;
}

std::int64_t LatencyRecorder::count_at_most(double milliseconds) const {
  if (std::isnan(milliseconds) || milliseconds < 0) return 0;
  // Samples above kMaximumMs are clamped into the last bucket, so any larger bound
  // (Prometheus' +Inf among them) counts every sample.
  if (milliseconds >= kMaximumMs) return count();
  const int last = bucket_of(milliseconds);
  std::int64_t total = 0;
  for (int bucket = 0; bucket <= last; ++bucket) {
    total += buckets_[static_cast<std::size_t>(bucket)].load(std::memory_order_relaxed);
  }
  return total;
}

StatisticsRecorder::StatisticsRecorder() { start(); }

void StatisticsRecorder::start() {
  stopped_.store(0);
  started_.store(Clock::now().time_since_epoch().count());
}

void StatisticsRecorder::stop_clock() { stopped_.store(Clock::now().time_since_epoch().count()); }

Statistics StatisticsRecorder::snapshot() const {
  Statistics statistics;
  statistics.frames_read = frames_read.load();
  statistics.frames_processed = frames_processed.load();
  statistics.frames_detected = frames_detected.load();
  statistics.frames_dropped = frames_dropped.load();
  statistics.frames_failed = frames_failed.load();
  statistics.frames_corrupt = frames_corrupt.load();
  statistics.detections = detections.load();
  statistics.frames_total = frames_total.load();
  const Clock::time_point started{Clock::duration{started_.load()}};
  const Clock::rep stopped = stopped_.load();
  const Clock::time_point end = stopped != 0 ? Clock::time_point{Clock::duration{stopped}} : Clock::now();
  statistics.elapsed_s = std::chrono::duration<double>(end - started).count();
  statistics.fps =
      statistics.elapsed_s > 0 ? static_cast<double>(statistics.frames_processed) / statistics.elapsed_s : 0.0;
  statistics.stages["preprocess"] = preprocess.summary();
  statistics.stages["inference"] = inference.summary();
  statistics.stages["postprocess"] = postprocess.summary();
  statistics.stages["sinks"] = sinks.summary();
  statistics.capture_to_output = capture_to_output.summary();
  statistics.peak_resident_kb = peak_resident_kb();
  return statistics;
}

std::int64_t peak_resident_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      std::int64_t kilobytes = 0;
      fields >> kilobytes;
      return kilobytes;
    }
  }
  return 0;
}

nlohmann::json Statistics::to_json() const {
  nlohmann::json stage_json = nlohmann::json::object();
  for (const auto& [name, summary] : stages) stage_json[name] = latency_json(summary);
  nlohmann::json json = {{"frames_read", frames_read},
                         {"frames_processed", frames_processed},
                         {"frames_detected", frames_detected},
                         {"frames_dropped", frames_dropped},
                         {"frames_failed", frames_failed},
                         {"frames_corrupt", frames_corrupt},
                         {"frames_total", frames_total},
                         {"detections", detections},
                         {"elapsed_s", elapsed_s},
                         {"fps", fps},
                         {"stages", stage_json},
                         {"capture_to_output", latency_json(capture_to_output)},
                         {"peak_resident_kb", peak_resident_kb}};
  if (counts) json["counts"] = track::to_json(*counts);
  if (!camera.empty()) json["camera"] = camera;
  if (!streams.empty()) {
    json["streams"] = nlohmann::json::array();
    for (const auto& stream : streams) json["streams"].push_back(stream.to_json());
  }
  return json;
}

std::string Statistics::to_text() const {
  std::ostringstream text;
  text << std::fixed << std::setprecision(2);
  text << "frames: " << frames_read << " read, " << frames_processed << " processed, " << frames_dropped << " dropped, "
       << frames_failed << " failed, " << frames_corrupt << " corrupt\n";
  text << "detections: " << detections;
  if (frames_detected > 0 && frames_detected != frames_processed) {
    text << " (detector ran on " << frames_detected << " of " << frames_processed << " frames)";
  }
  text << "\n";
  text << "elapsed: " << elapsed_s << " s, " << fps << " fps\n";
  text << "latency (ms)          count      mean       p50       p95       p99       max\n";
  // Pipeline order rather than the map's alphabetical order.
  for (const char* name : {"preprocess", "inference", "postprocess", "sinks"}) {
    const auto found = stages.find(name);
    if (found != stages.end()) text << latency_row(name, found->second);
  }
  for (const auto& [name, summary] : stages) {
    if (name != "preprocess" && name != "inference" && name != "postprocess" && name != "sinks") {
      text << latency_row(name, summary);
    }
  }
  text << latency_row("capture-to-output", capture_to_output);
  text << "peak resident memory: " << (peak_resident_kb + 512) / 1024 << " MiB\n";
  if (counts) text << counts_text(*counts);
  // A multi-stream run: the total above, then each camera's own table.
  for (const auto& stream : streams) {
    text << "\ncamera " << (stream.camera.empty() ? std::string("(unnamed)") : stream.camera) << ":\n"
         << stream.to_text();
  }
  return text.str();
}

std::string Statistics::to_line() const {
  std::ostringstream line;
  if (!camera.empty()) line << "camera " << camera << ": ";
  line << std::fixed << std::setprecision(1) << "frames " << frames_processed + frames_failed;
  if (frames_total > 0) {
    line << "/" << frames_total << " ("
         << std::min(100.0,
                     100.0 * static_cast<double>(frames_processed + frames_failed) / static_cast<double>(frames_total))
         << " %)";
  }
  line << ", " << fps << " fps, " << frames_dropped << " dropped, " << frames_failed << " failed";
  if (capture_to_output.count > 0) line << ", p95 latency " << capture_to_output.p95_ms << " ms";
  if (counts) {
    for (const auto& counted : counts->lines) {
      line << ", line " << counted.name << " in " << counted.in() << " out " << counted.out();
    }
    for (const auto& counted : counts->zones) {
      line << ", zone " << counted.name << " now " << counted.occupancy() << " entered " << counted.entered();
    }
  }
  return line.str();
}

}  // namespace detflow
