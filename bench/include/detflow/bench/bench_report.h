// detflow/bench/bench_report.h — turning measurements into numbers people read: latency
// summaries, the bench's JSON report and its table.
//
// Plain functions on values; safe from any thread. Units: milliseconds for latencies,
// frames per second for rates, KiB for memory (MiB in the table).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "detflow/pipeline/statistics.h"

namespace detflow::bench {

// count, mean, p50, p95, p99 (nearest rank) and max of the samples; all 0 when empty.
LatencySummary summarize_latencies(std::vector<double> samples_ms);

nlohmann::json to_json(const LatencySummary& summary);
LatencySummary latency_summary_from_json(const nlohmann::json& json);

// The human-readable table of a finished report (the JSON that run_bench() returns).
std::string format_report_table(const nlohmann::json& report);

}  // namespace detflow::bench
