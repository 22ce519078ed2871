// Health, Prometheus metrics and the status document, all read from one RunProbe.
#include "detflow/service/run_probe.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <type_traits>

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

std::string camera_label(const std::string& name) { return "camera=\"" + name + "\""; }

// JSON Lines counters of the run: the single stream's, or summed over the streams'.
struct JsonOutputTotals {
  bool present = false;
  std::int64_t written = 0, lost = 0, rotations = 0;
  bool disk_full = false;
  void add(const FileOutputCounters& counters) {
    present = true;
    written += counters.lines_written.load();
    lost += counters.lines_lost.load();
    rotations += counters.rotations.load();
    disk_full = disk_full || counters.disk_full.load();
  }
};

JsonOutputTotals json_output_totals(const RunProbe& probe) {
  JsonOutputTotals totals;
  if (probe.json_output) totals.add(*probe.json_output);
  for (const auto& stream : probe.streams) {
    if (stream.json_output) totals.add(*stream.json_output);
  }
  return totals;
}

// The per-camera families after the totals (several streams only).
void stream_families(Exposition& out, const RunProbe& probe) {
  std::vector<Statistics> statistics;
  std::vector<SourceCounters> sources;
  for (const auto& stream : probe.streams) {
    statistics.push_back(stream.statistics());
    sources.push_back(stream.source_counters());
  }
  const auto each = [&](const std::string& name, const std::string& type, const std::string& help,
                        const std::function<double(std::size_t)>& value) {
    out.family(name, type, help);
    for (std::size_t i = 0; i < probe.streams.size(); ++i) {
      out.sample(name, camera_label(probe.streams[i].name), value(i));
    }
  };
  out.family("detflow_stream_frames_total", "counter", "One stream's frames by outcome");
  for (std::size_t i = 0; i < probe.streams.size(); ++i) {
    const std::string camera = camera_label(probe.streams[i].name) + ",outcome=";
    const Statistics& own = statistics[i];
    out.sample("detflow_stream_frames_total", camera + "\"processed\"", static_cast<double>(own.frames_processed));
    out.sample("detflow_stream_frames_total", camera + "\"dropped\"", static_cast<double>(own.frames_dropped));
    out.sample("detflow_stream_frames_total", camera + "\"failed\"", static_cast<double>(own.frames_failed));
    out.sample("detflow_stream_frames_total", camera + "\"corrupt\"", static_cast<double>(own.frames_corrupt));
  }
  each("detflow_stream_frames_read_total", "counter", "Frames handed over by one stream's source",
       [&](std::size_t i) { return static_cast<double>(statistics[i].frames_read); });
  each("detflow_stream_detections_total", "counter", "One stream's detections reported to its sinks",
       [&](std::size_t i) { return static_cast<double>(statistics[i].detections); });
  each("detflow_stream_frames_per_second", "gauge", "One stream's frames processed per second since its start",
       [&](std::size_t i) { return statistics[i].fps; });
  each("detflow_stream_frames_in_flight", "gauge", "One stream's frames between capture and output now",
       [&](std::size_t i) { return static_cast<double>(in_flight(statistics[i])); });
  each("detflow_stream_source_up", "gauge", "1 while the stream's source delivers frames, 0 while down or connecting",
       [&](std::size_t i) { return sources[i].state == SourceState::up ? 1.0 : 0.0; });
  out.family("detflow_stream_source_state", "gauge", "One stream's source connection state (1 for the current one)");
  for (std::size_t i = 0; i < probe.streams.size(); ++i) {
    for (const SourceState state : {SourceState::connecting, SourceState::up, SourceState::down}) {
      out.sample("detflow_stream_source_state",
                 camera_label(probe.streams[i].name) + ",state=\"" + to_string(state) + "\"",
                 sources[i].state == state);
    }
  }
  each("detflow_stream_source_reconnects_total", "counter", "Successful reopenings of one stream's source",
       [&](std::size_t i) { return static_cast<double>(sources[i].reconnects); });
  each("detflow_stream_source_stalls_total", "counter", "Restarts of one stream's source because no frame came",
       [&](std::size_t i) { return static_cast<double>(sources[i].stalls); });
  each("detflow_stream_source_disconnected_seconds_total", "counter",
       "Time one stream's source spent down or connecting after its first frame",
       [&](std::size_t i) { return sources[i].seconds_disconnected; });
  each("detflow_stream_output_lines_lost_total", "counter", "One stream's JSON Lines lost because the disk was full",
       [&](std::size_t i) {
         const auto& json = probe.streams[i].json_output;
         return json ? static_cast<double>(json->lines_lost.load()) : 0.0;
       });
  out.family("detflow_stream_stage_duration_seconds", "histogram", "Time one stream's frames spent in each stage");
  for (const auto& stream : probe.streams) {
    if (!stream.recorder) continue;
    const std::string camera = camera_label(stream.name) + ",stage=";
    out.histogram("detflow_stream_stage_duration_seconds", camera + "\"preprocess\"", stream.recorder->preprocess);
    out.histogram("detflow_stream_stage_duration_seconds", camera + "\"inference\"", stream.recorder->inference);
    out.histogram("detflow_stream_stage_duration_seconds", camera + "\"postprocess\"", stream.recorder->postprocess);
    out.histogram("detflow_stream_stage_duration_seconds", camera + "\"sinks\"", stream.recorder->sinks);
  }
  out.family("detflow_stream_capture_to_output_seconds", "histogram",
             "Time from capture until one stream's outputs had the frame");
  for (const auto& stream : probe.streams) {
    if (stream.recorder) {
      out.histogram("detflow_stream_capture_to_output_seconds", camera_label(stream.name),
                    stream.recorder->capture_to_output);
    }
  }
}

}  // namespace

SourceCounters combine_source_counters(const std::vector<SourceCounters>& streams) {
  SourceCounters combined;
  bool all_up = !streams.empty();
  bool connecting = false;
  for (const auto& stream : streams) {
    combined.corrupt_frames += stream.corrupt_frames;
    combined.read_errors += stream.read_errors;
    combined.reconnects += stream.reconnects;
    combined.stalls += stream.stalls;
    combined.seconds_disconnected += stream.seconds_disconnected;
    if (combined.last_warning.empty()) combined.last_warning = stream.last_warning;
    if (combined.last_error.empty()) combined.last_error = stream.last_error;
    all_up = all_up && stream.state == SourceState::up;
    connecting = connecting || stream.state == SourceState::connecting;
  }
  combined.state = all_up ? SourceState::up : connecting ? SourceState::connecting : SourceState::down;
  return combined;
}

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

RunProbe probe_pipeline(const Pipeline& pipeline, const std::vector<std::shared_ptr<LatestFrame>>& latest,
                        const std::vector<std::shared_ptr<const FileOutputCounters>>& json_outputs,
                        double stall_timeout_s) {
  const auto at = [](const auto& items, std::size_t i) {
    return i < items.size() ? items[i] : typename std::decay_t<decltype(items)>::value_type{};
  };
  RunProbe probe = probe_pipeline(pipeline, at(latest, 0), nullptr, stall_timeout_s);
  if (pipeline.stream_count() < 2) {
    probe.json_output = at(json_outputs, 0);
    return probe;
  }
  for (std::size_t i = 0; i < pipeline.stream_count(); ++i) {
    StreamProbe stream;
    stream.name = pipeline.stream_name(i);
    stream.statistics = [&pipeline, i] { return pipeline.snapshot(i); };
    stream.source_counters = [&pipeline, i] { return pipeline.source_counters(i); };
    stream.recorder = &pipeline.recorder(i);
    stream.json_output = at(json_outputs, i);
    stream.latest = at(latest, i);
    probe.streams.push_back(std::move(stream));
  }
  probe.source_counters = [&pipeline] {
    std::vector<SourceCounters> streams;
    for (std::size_t i = 0; i < pipeline.stream_count(); ++i) streams.push_back(pipeline.source_counters(i));
    return combine_source_counters(streams);
  };
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
  for (const auto& stream : probe.streams) {  // several streams: the newest frame of any
    const auto own = stream.latest ? stream.latest->last_frame_time() : std::nullopt;
    if (own && (!last_frame || *own > *last_frame)) last_frame = own;
  }
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
  if (const JsonOutputTotals json = json_output_totals(probe); json.present) {
    out.single("detflow_output_lines_written_total", "counter", "JSON Lines written",
               static_cast<double>(json.written));
    out.single("detflow_output_lines_lost_total", "counter", "JSON Lines lost because the disk was full",
               static_cast<double>(json.lost));
    out.single("detflow_output_rotations_total", "counter", "JSON Lines file rotations",
               static_cast<double>(json.rotations));
    out.single("detflow_output_disk_full", "gauge", "1 while the JSON Lines output cannot write for lack of space",
               json.disk_full ? 1 : 0);
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
  if (!probe.streams.empty()) stream_families(out, probe);
  return out.text();
}

nlohmann::json status_json(const RunProbe& probe, int preview_clients) {
  const Statistics statistics = probe.statistics();
  const SourceCounters source = probe.source_counters();
  const Health health = judge_health(probe);
  nlohmann::json stages = nlohmann::json::object();
  for (const auto& [stage, summary] : statistics.stages) stages[stage] = latency_ms(summary);
  nlohmann::json document = {
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
      {"output_lines_lost", json_output_totals(probe).lost},
      {"ready", health.ready},
      {"alive", health.alive},
      {"reason", health.reason},
      {"seconds_since_frame", health.seconds_since_frame},
  };
  if (!probe.streams.empty()) {  // several streams: each camera's state, frames and rate
    document["streams"] = nlohmann::json::array();
    for (const auto& stream : probe.streams) {
      const Statistics own = stream.statistics();
      const SourceCounters own_source = stream.source_counters();
      document["streams"].push_back({{"camera", stream.name},
                                     {"state", to_string(own_source.state)},
                                     {"last_error", own_source.last_error},
                                     {"processed", own.frames_processed},
                                     {"dropped", own.frames_dropped},
                                     {"failed", own.frames_failed},
                                     {"fps", own.fps}});
    }
  }
  return document;
}

}  // namespace detflow::service
