// Health, Prometheus metrics and the status document, all read from one RunProbe.
#include "detflow/service/run_probe.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "detflow/pipeline/pipeline.h"
#include "detflow/service/outbox.h"

namespace detflow::service {
namespace {

// Shortest decimal text Prometheus parses back to the same double ("+Inf" for infinity).
std::string number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  std::ostringstream text;
  text.precision(15);
  text << value;
  return text.str();
}

class Exposition {
 public:
  void family(const std::string& name, const std::string& type, const std::string& help) {
    out_ << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
  }
  void sample(const std::string& name, const std::string& labels, double value) {
    out_ << name;
    if (!labels.empty()) out_ << '{' << labels << '}';
    out_ << ' ' << number(value) << '\n';
  }
  void single(const std::string& name, const std::string& type, const std::string& help, double value) {
    family(name, type, help);
    sample(name, {}, value);
  }
  void histogram(const std::string& name, const std::string& labels, const LatencyRecorder& recorder) {
    // One pass over the buckets per bound; count is read last so +Inf >= every bound's count.
    const std::string separator = labels.empty() ? "" : ",";
    std::int64_t previous = 0;
    for (const double bound : histogram_bounds_s()) {
      const std::int64_t count = std::max(previous, recorder.count_at_most(bound * 1000.0));
      sample(name + "_bucket", labels + separator + "le=\"" + number(bound) + "\"", static_cast<double>(count));
      previous = count;
    }
    const std::int64_t total = std::max(previous, recorder.count());
    sample(name + "_bucket", labels + separator + "le=\"+Inf\"", static_cast<double>(total));
    sample(name + "_sum", labels, recorder.sum_ms() / 1000.0);
    sample(name + "_count", labels, static_cast<double>(total));
  }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

std::int64_t in_flight(const Statistics& statistics) {
  return std::max<std::int64_t>(
      0, statistics.frames_read - statistics.frames_processed - statistics.frames_failed - statistics.frames_dropped);
}

nlohmann::json latency_ms(const LatencySummary& summary) {
  return {{"count", summary.count}, {"mean", summary.mean_ms}, {"p50", summary.p50_ms},
          {"p95", summary.p95_ms},  {"p99", summary.p99_ms},   {"max", summary.max_ms}};
}

}  // namespace

RunProbe probe_pipeline(const Pipeline& pipeline, std::shared_ptr<LatestFrame> latest,
                        std::shared_ptr<const FileOutputCounters> json_output, double stall_timeout_s) {
  RunProbe probe;
  probe.statistics = [&pipeline] { return pipeline.snapshot(); };
  probe.source_counters = [&pipeline] { return pipeline.source_counters(); };
  probe.source = pipeline.source_info();
  probe.recorder = &pipeline.recorder();
  probe.json_output = std::move(json_output);
  probe.latest = std::move(latest);
  probe.events_dropped = [] { return outbox_records_dropped_total(); };
  probe.stall_timeout_s = stall_timeout_s;
  return probe;
}

double default_stall_timeout_s(double source_fps) { return std::max(5.0, source_fps > 0 ? 10.0 / source_fps : 0.0); }

const std::vector<double>& histogram_bounds_s() {
  // From a 1 ms preprocessing step to a 10 s stall; the usual Prometheus 1-2.5-5 ladder.
  static const std::vector<double> bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return bounds;
}

Health judge_health(const RunProbe& probe) {
  Health health;
  const SourceCounters source = probe.source_counters();
  std::optional<Clock::time_point> last_frame;
  if (probe.latest) last_frame = probe.latest->last_frame_time();
  const auto now = Clock::now();
  if (last_frame) health.seconds_since_frame = std::chrono::duration<double>(now - *last_frame).count();
  const bool reconnecting = source.state != SourceState::up;
  if (!last_frame) {
    const double waited = std::chrono::duration<double>(now - probe.started).count();
    health.reason =
        "no frame yet (waiting " + number(std::round(waited * 10) / 10) + " s; source " + to_string(source.state) + ")";
    // Model loading and the first connection take a while: alive, not ready.
    health.alive = true;
  } else if (health.seconds_since_frame > probe.stall_timeout_s) {
    health.reason = "no frame for " + number(std::round(health.seconds_since_frame * 10) / 10) + " s (stall timeout " +
                    number(probe.stall_timeout_s) + " s; source " + to_string(source.state) +
                    (source.last_error.empty() ? "" : ": " + source.last_error) + ")";
    health.alive = reconnecting;
  } else {
    health.ready = true;
    health.alive = true;
  }
  if (probe.latest && probe.latest->closed() && !health.ready && health.reason.empty()) health.reason = "run ended";
  return health;
}

std::int64_t resident_memory_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

std::string prometheus_text(const RunProbe& probe, int preview_clients) {
  const Statistics statistics = probe.statistics();
  const SourceCounters source = probe.source_counters();
  const Health health = judge_health(probe);
  Exposition out;

  out.family("detflow_frames_total", "counter", "Frames by outcome: processed, dropped (live), failed, corrupt");
  out.sample("detflow_frames_total", "outcome=\"processed\"", static_cast<double>(statistics.frames_processed));
  out.sample("detflow_frames_total", "outcome=\"dropped\"", static_cast<double>(statistics.frames_dropped));
  out.sample("detflow_frames_total", "outcome=\"failed\"", static_cast<double>(statistics.frames_failed));
  out.sample("detflow_frames_total", "outcome=\"corrupt\"", static_cast<double>(statistics.frames_corrupt));
  out.single("detflow_frames_read_total", "counter", "Frames handed over by the source",
             static_cast<double>(statistics.frames_read));
  out.single("detflow_detections_total", "counter", "Detections reported to the sinks",
             static_cast<double>(statistics.detections));
  out.single("detflow_source_reconnects_total", "counter", "Successful reopenings of the source after a loss",
             static_cast<double>(source.reconnects));
  out.single("detflow_source_stalls_total", "counter", "Source restarts because no frame came in time",
             static_cast<double>(source.stalls));
  out.single("detflow_source_disconnected_seconds_total", "counter",
             "Time the source spent down or connecting after its first frame", source.seconds_disconnected);
  out.single("detflow_source_read_errors_total", "counter", "Read errors the source survived",
             static_cast<double>(source.read_errors));
  out.single("detflow_source_up", "gauge", "1 while the source delivers frames, 0 while down or connecting",
             source.state == SourceState::up ? 1 : 0);
  out.family("detflow_source_state", "gauge", "The source's connection state (1 for the current one)");
  for (const SourceState state : {SourceState::connecting, SourceState::up, SourceState::down}) {
    out.sample("detflow_source_state", std::string("state=\"") + to_string(state) + "\"", source.state == state);
  }
  out.single("detflow_ready", "gauge", "1 when a frame reached the outputs within the stall timeout",
             health.ready ? 1 : 0);
  out.single("detflow_last_frame_age_seconds", "gauge", "Seconds since the last frame reached the outputs (-1: none)",
             health.seconds_since_frame);
  out.single("detflow_frames_in_flight", "gauge", "Frames between capture and output now",
             static_cast<double>(in_flight(statistics)));
  out.single("detflow_resident_memory_bytes", "gauge", "Resident set size of the process",
             static_cast<double>(resident_memory_bytes()));
  out.single("detflow_peak_resident_memory_bytes", "gauge", "Peak resident set size of the process",
             static_cast<double>(statistics.peak_resident_kb) * 1024.0);
  out.single("detflow_run_seconds", "gauge", "Seconds since the run started", statistics.elapsed_s);
  out.single("detflow_preview_clients", "gauge", "MJPEG preview streams open", preview_clients);
  out.single("detflow_events_dropped_total", "counter",
             "MQTT events dropped from a full outbox (oldest first) before the broker acknowledged them",
             probe.events_dropped ? static_cast<double>(probe.events_dropped()) : 0.0);
  if (probe.latest) {
    out.single("detflow_preview_encodings_total", "counter", "Preview frames encoded as JPEG (once per frame at most)",
               static_cast<double>(probe.latest->encodings()));
  }
  if (probe.json_output) {
    out.single("detflow_output_lines_written_total", "counter", "JSON Lines written",
               static_cast<double>(probe.json_output->lines_written.load()));
    out.single("detflow_output_lines_lost_total", "counter", "JSON Lines lost because the disk was full",
               static_cast<double>(probe.json_output->lines_lost.load()));
    out.single("detflow_output_rotations_total", "counter", "JSON Lines file rotations",
               static_cast<double>(probe.json_output->rotations.load()));
    out.single("detflow_output_disk_full", "gauge", "1 while the JSON Lines output cannot write for lack of space",
               probe.json_output->disk_full.load() ? 1 : 0);
  }
  if (probe.recorder) {
    const StatisticsRecorder& recorder = *probe.recorder;
    out.family("detflow_stage_duration_seconds", "histogram", "Time a frame spent in each stage");
    out.histogram("detflow_stage_duration_seconds", "stage=\"preprocess\"", recorder.preprocess);
    out.histogram("detflow_stage_duration_seconds", "stage=\"inference\"", recorder.inference);
    out.histogram("detflow_stage_duration_seconds", "stage=\"postprocess\"", recorder.postprocess);
    out.histogram("detflow_stage_duration_seconds", "stage=\"sinks\"", recorder.sinks);
    out.family("detflow_capture_to_output_seconds", "histogram", "Time from capture until the outputs had the frame");
    out.histogram("detflow_capture_to_output_seconds", {}, recorder.capture_to_output);
  }
  return out.text();
}

nlohmann::json status_json(const RunProbe& probe, int preview_clients) {
  const Statistics statistics = probe.statistics();
  const SourceCounters source = probe.source_counters();
  const Health health = judge_health(probe);
  nlohmann::json stages = nlohmann::json::object();
  for (const auto& [stage, summary] : statistics.stages) stages[stage] = latency_ms(summary);
  return {
      {"source",
       {{"kind", probe.source.kind},
        {"description", probe.source.description},
        {"live", probe.source.live},
        {"state", to_string(source.state)},
        {"reconnects", source.reconnects},
        {"stalls", source.stalls},
        {"seconds_disconnected", source.seconds_disconnected},
        {"last_error", source.last_error}}},
      {"frames",
       {{"read", statistics.frames_read},
        {"processed", statistics.frames_processed},
        {"dropped", statistics.frames_dropped},
        {"failed", statistics.frames_failed},
        {"corrupt", statistics.frames_corrupt},
        {"in_flight", in_flight(statistics)},
        {"total", statistics.frames_total}}},
      {"detections", statistics.detections},
      {"elapsed_s", statistics.elapsed_s},
      {"fps", statistics.fps},
      {"latency_ms", {{"capture_to_output", latency_ms(statistics.capture_to_output)}, {"stages", stages}}},
      {"resident_memory_bytes", resident_memory_bytes()},
      {"preview_clients", preview_clients},
      {"output_lines_lost", probe.json_output ? probe.json_output->lines_lost.load() : 0},
      {"ready", health.ready},
      {"alive", health.alive},
      {"reason", health.reason},
      {"seconds_since_frame", health.seconds_since_frame},
  };
}

}  // namespace detflow::service
