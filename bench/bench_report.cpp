#include "detflow/bench/bench_report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

namespace detflow::bench {
namespace {

using nlohmann::json;

double value_or(const json& object, const char* key, double fallback = 0.0) {
  const auto found = object.find(key);
  return found != object.end() && found->is_number() ? found->get<double>() : fallback;
}

std::string fixed(double value, int precision) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(precision) << value;
  return text.str();
}

// "1.2/3.4" from a latency object's p50 and p99; "-" when absent.
std::string p50_p99(const json& mode, const char* stage) {
  if (!mode.contains("stages") || !mode["stages"].contains(stage)) return "-";
  const json& summary = mode["stages"][stage];
  return fixed(value_or(summary, "p50_ms"), 1) + "/" + fixed(value_or(summary, "p99_ms"), 1);
}

std::string latency(const json& mode) {
  if (!mode.contains("capture_to_output")) return "-";
  return fixed(value_or(mode["capture_to_output"], "p50_ms"), 1) + "/" +
         fixed(value_or(mode["capture_to_output"], "p99_ms"), 1);
}

// "61.2 60.8 62.0": the FPS of every round.
std::string runs_text(const json& values) {
  std::string text;
  for (const auto& value : values) text += (text.empty() ? "" : " ") + fixed(value.get<double>(), 1);
  return text;
}

std::string megabytes(const json& mode, const char* key) {
  if (!mode.contains("memory")) return "-";
  return fixed(value_or(mode["memory"], key) / 1024.0, 0);
}

}  // namespace

LatencySummary summarize_latencies(std::vector<double> samples_ms) {
  LatencySummary summary;
  if (samples_ms.empty()) return summary;
  std::sort(samples_ms.begin(), samples_ms.end());
  const auto count = samples_ms.size();
  // Nearest rank: the smallest sample with at least p of the samples at or below it.
  const auto percentile = [&](double p) {
    const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(count)));
    return samples_ms[std::clamp<std::size_t>(rank, 1, count) - 1];
  };
  summary.count = static_cast<std::int64_t>(count);
  summary.mean_ms = std::accumulate(samples_ms.begin(), samples_ms.end(), 0.0) / static_cast<double>(count);
  summary.p50_ms = percentile(0.50);
  summary.p95_ms = percentile(0.95);
  summary.p99_ms = percentile(0.99);
  summary.max_ms = samples_ms.back();
  return summary;
}

nlohmann::json to_json(const LatencySummary& summary) {
  return {{"count", summary.count},   {"mean_ms", summary.mean_ms}, {"p50_ms", summary.p50_ms},
          {"p95_ms", summary.p95_ms}, {"p99_ms", summary.p99_ms},   {"max_ms", summary.max_ms}};
}

LatencySummary latency_summary_from_json(const nlohmann::json& json) {
  LatencySummary summary;
  summary.count = json.value("count", std::int64_t{0});
  summary.mean_ms = json.value("mean_ms", 0.0);
  summary.p50_ms = json.value("p50_ms", 0.0);
  summary.p95_ms = json.value("p95_ms", 0.0);
  summary.p99_ms = json.value("p99_ms", 0.0);
  summary.max_ms = json.value("max_ms", 0.0);
  return summary;
}

std::string format_report_table(const nlohmann::json& report) {
  std::ostringstream out;
  const json& model = report["model"];
  const json& source = report["source"];
  out << "detflow bench: " << model.value("path", "") << " (" << model.value("family", "") << ", "
      << model.value("input_width", 0) << "x" << model.value("input_height", 0) << ", " << model.value("backend", "")
      << ")\n";
  out << "frames: " << source.value("frames", 0) << " decoded into memory once per mode (" << source.value("width", 0)
      << "x" << source.value("height", 0) << ") from " << source.value("uri", "")
      << (source.value("stopped_at_memory_budget", false) ? " (stopped at the memory budget)" : "") << "\n";
  const json& machine = report["machine"];
  out << "cores: " << machine.value("cores", 0) << ", load average at start "
      << fixed(machine["load_average_at_start"][0].get<double>(), 2) << "; outputs: "
      << (report["outputs"].value("annotated_video_and_jsonl", false) ? "annotated MP4 + JSON Lines"
                                                                      : "none (detections only)")
      << "\n\n";

  // One width per column, shared by the header and the rows.
  constexpr int label_width = 56;
  const std::array<std::pair<const char*, int>, 8> columns{{{"FPS", 8},
                                                            {"cores", 7},
                                                            {"+RSS MiB", 10},
                                                            {"pre p50/99", 13},
                                                            {"infer p50/99", 15},
                                                            {"post p50/99", 13},
                                                            {"out p50/99", 13},
                                                            {"latency p50/99", 17}}};
  out << std::left << std::setw(label_width) << "mode" << std::right;
  for (const auto& [title, width] : columns) out << std::setw(width) << title;
  out << "\n";
  for (const auto& mode : report["modes"]) {
    std::string label = mode.value("label", mode.value("mode", ""));
    if (label.size() >= label_width) label = label.substr(0, label_width - 1);
    out << std::left << std::setw(label_width) << label << std::right;
    if (mode.contains("error")) {
      out << "  failed: " << mode["error"].get<std::string>() << "\n";
      continue;
    }
    const std::array<std::string, 8> cells{fixed(value_or(mode, "fps"), 1), fixed(value_or(mode, "cpu_cores_used"), 2),
                                           megabytes(mode, "added_kb"),     p50_p99(mode, "preprocess"),
                                           p50_p99(mode, "inference"),      p50_p99(mode, "postprocess"),
                                           p50_p99(mode, "output"),         latency(mode)};
    for (std::size_t column = 0; column < columns.size(); ++column)
      out << std::setw(columns[column].second) << cells[column];
    out << "\n";
  }
  out << "(latencies in ms; cores = CPU seconds / wall seconds; +RSS = peak resident memory above the decoded "
         "frames)\n";

  if (!report["sweep"].empty()) {
    out << "\nsweep (workers x threads -> FPS):";
    for (const auto& entry : report["sweep"]) {
      out << "  " << entry.value("workers", 0) << "x" << entry.value("threads", 0) << " "
          << fixed(value_or(entry, "fps"), 1);
    }
    out << "\nbest: " << report["best_config"].value("workers", 0) << " workers x "
        << report["best_config"].value("threads", 0) << " threads\n";
  }

  const json& costs = report["stage_costs"];
  out << "\nsingle-thread CPU cost per frame (" << costs.value("backend", "") << ", " << costs.value("frames", 0)
      << " frames):";
  for (const char* stage : {"preprocess", "inference", "postprocess", "output"}) {
    out << " " << stage << " " << fixed(value_or(costs["cpu_ms_per_frame"], stage), 2) << " ms,";
  }
  out << " total " << fixed(value_or(costs, "total_cpu_ms_per_frame"), 2) << " ms\n";
  out << "CPU-bound limit: " << machine.value("cores", 0) << " cores / "
      << fixed(value_or(costs, "total_cpu_ms_per_frame"), 2) << " ms = " << fixed(value_or(report, "limit_fps"), 1)
      << " FPS\n";

  out << "\nratios:";
  for (const auto& [name, value] : report["ratios"].items())
    out << " " << name << " " << (value.is_number() ? fixed(value.get<double>(), 2) : std::string("n/a")) << ";";
  out << "\n";
  if (report.contains("agreement")) {
    const json& agreement = report["agreement"];
    out << "agreement of the pipeline's detections with the loop's: F1 " << fixed(value_or(agreement, "f1"), 4)
        << " (tp " << agreement.value("true_positives", 0) << ", fp " << agreement.value("false_positives", 0)
        << ", fn " << agreement.value("false_negatives", 0) << ", mean |score diff| "
        << fixed(value_or(agreement, "mean_abs_score_diff"), 4) << ")\n";
  }
  if (report.contains("loop_unavailable"))
    out << "hand-written loop not run: " << report["loop_unavailable"].get<std::string>() << "\n";
  out << "targets:\n";
  for (const auto& item : report["targets"]) {
    out << "  " << (item.value("met", false) ? "met   " : "MISSED") << " " << item.value("name", "") << ": "
        << fixed(value_or(item, "value"), 3) << " (goal " << item.value("comparison", "") << " "
        << fixed(value_or(item, "goal"), 2) << ")\n";
  }
  out << "bottleneck: " << report["bottleneck"].value("text", "") << "\n";

  if (report.contains("features")) {
    const json& comparison = report["features"];
    out << "\nfeature costs (" << comparison.value("workers", 0) << " workers x " << comparison.value("threads", 0)
        << " threads, " << comparison.value("rounds", 0)
        << " rounds, plain and features interleaved; ratio = median over rounds of feature FPS / plain FPS of the "
           "same round):\n";
    out << "  plain" << std::string(10, ' ') << fixed(value_or(comparison["plain"], "fps_median"), 1) << " FPS (runs "
        << runs_text(comparison["plain"]["fps_runs"]) << ")\n";
    for (const auto& name_json : comparison["feature_order"]) {
      const std::string name = name_json.get<std::string>();
      const json& item = comparison["features"][name];
      out << "  " << std::left << std::setw(14) << name << std::right << " ";
      if (item.contains("error")) {
        out << "failed: " << item["error"].get<std::string>() << "\n";
        continue;
      }
      out << fixed(value_or(item, "fps_median"), 1) << " FPS (runs " << runs_text(item["fps_runs"]) << "), ratio "
          << fixed(value_or(item, "ratio_over_plain"), 3) << " (rounds " << fixed(value_or(item, "ratio_min"), 3) << "-"
          << fixed(value_or(item, "ratio_max"), 3) << ")";
      if (item.contains("ratio_over_tracking"))
        out << ", over tracking " << fixed(value_or(item, "ratio_over_tracking"), 3);
      if (item.contains("events_per_second") && name == "mqtt")
        out << ", " << fixed(value_or(item, "events_per_second"), 1) << " events/s";
      if (item.contains("line_count_agreement"))
        out << ", line counts agree " << fixed(value_or(item, "line_count_agreement"), 3) << " with interval 1";
      out << "\n";
      if (item.contains("line_counts") && (name == "tracking" || item.contains("line_count_agreement"))) {
        out << "  " << std::string(15, ' ') << "line crossings in/out:";
        for (const auto& [line, counts] : item["line_counts"].items())
          out << " " << line << " " << counts.value("in", 0) << "/" << counts.value("out", 0);
        out << "\n";
      }
      if (item.contains("last_run") && item["last_run"].contains("preview")) {
        const json& preview = item["last_run"]["preview"];
        out << "  " << std::string(15, ' ') << "last round: " << preview.value("jpeg_encodings", 0)
            << " JPEG encodings; clients (frames, bytes, connections):";
        for (const auto& client : preview["clients"]) {
          out << " " << (client.value("slow", false) ? "slow " : "") << client.value("frames", 0) << "/"
              << client.value("bytes", 0) << "/" << client.value("connections", 0);
        }
        out << "\n";
      }
      if (item.contains("last_run") && item["last_run"].contains("mqtt")) {
        const json& mqtt = item["last_run"]["mqtt"];
        out << "  " << std::string(15, ' ') << "last round: " << item.value("events", 0) << " events, "
            << mqtt.value("events_acknowledged", 0) << " acknowledged, " << mqtt.value("events_pending", 0)
            << " pending, " << mqtt.value("events_dropped", 0) << " dropped by " << comparison.value("mqtt_broker", "")
            << "\n";
      }
    }
  }

  if (report.contains("streams")) {
    const json& comparison = report["streams"];
    const int count = comparison.value("streams", 0);
    out << "\nstreams (" << count << " streams of the same frames in one pipeline, " << comparison.value("workers", 0)
        << " workers x " << comparison.value("threads", 0) << " threads, " << comparison.value("rounds", 0)
        << " rounds interleaved with the single-stream pipeline; ratio = median over rounds of aggregate FPS / "
           "single-stream FPS of the same round):\n";
    const json& single = comparison["single"];
    const json& multi = comparison["multi"];
    out << "  1 stream     " << fixed(value_or(single, "fps_median"), 1) << " FPS (runs "
        << runs_text(single["fps_runs"]) << "), +RSS " << fixed(value_or(single, "added_kb_median") / 1024.0, 0)
        << " MiB\n";
    out << "  " << std::left << std::setw(11) << (std::to_string(count) + " streams") << std::right << "  "
        << fixed(value_or(multi, "fps_median"), 1) << " FPS aggregate (runs " << runs_text(multi["fps_runs"])
        << "), ratio " << fixed(value_or(comparison, "multi_over_single"), 3) << " (rounds "
        << fixed(value_or(comparison, "ratio_min"), 3) << "-" << fixed(value_or(comparison, "ratio_max"), 3)
        << "), +RSS " << fixed(value_or(multi, "added_kb_median") / 1024.0, 0) << " MiB, "
        << fixed(value_or(comparison, "added_kb_per_extra_stream") / 1024.0, 1) << " MiB per extra stream\n";
    if (multi.contains("last_run") && multi["last_run"].contains("per_stream")) {
      out << "  last round, per stream (frames, FPS, capture-to-output p99 ms):";
      for (const auto& stream : multi["last_run"]["per_stream"]) {
        out << " " << stream.value("name", "") << " " << stream.value("frames", 0) << "/"
            << fixed(value_or(stream, "fps"), 1) << "/" << fixed(value_or(stream["capture_to_output"], "p99_ms"), 1);
      }
      out << "\n";
    }
  }

  if (report.contains("live")) {
    const json& live = report["live"];
    out << "\nlive (" << live.value("source", "") << ", " << live.value("workers", 0) << " workers x "
        << live.value("threads", 0) << " threads"
        << "): " << live.value("frames_read", 0) << " frames read, " << live.value("frames_processed", 0)
        << " processed, " << live.value("frames_dropped", 0) << " dropped over " << fixed(value_or(live, "seconds"), 1)
        << " s\n";
    const json& latency_summary = live["capture_to_output"];
    out << "  capture-to-output p50 " << fixed(value_or(latency_summary, "p50_ms"), 1) << " ms, p95 "
        << fixed(value_or(latency_summary, "p95_ms"), 1) << " ms, p99 " << fixed(value_or(latency_summary, "p99_ms"), 1)
        << " ms; inference alone p50 "
        << fixed(live.contains("stages") && live["stages"].contains("inference")
                     ? value_or(live["stages"]["inference"], "p50_ms")
                     : 0.0,
                 1)
        << " ms\n  resident MiB each second:";
    for (const auto& sample : live["resident_kb_each_second"]) out << " " << fixed(sample.get<double>() / 1024.0, 0);
    out << "\n";
  }
  if (report.contains("config_written"))
    out << "\nconfiguration written to " << report["config_written"].get<std::string>() << "\n";
  return out.str();
}

}  // namespace detflow::bench
