// detflow/service/run_probe.h — what the service side observes of a run, and how it says it.
//
// RunProbe is a read-only view of a running Pipeline (or of a fake, in tests): statistics,
// source state, latency histograms, file-output losses and the newest frame. Health is
// judged from it the same way for /readyz, the status page and systemd's watchdog:
//
//   ready    a frame reached the sinks within stall_timeout_s
//   alive    ready, or the source is reconnecting (its supervisor is doing its job)
//
// The Prometheus text (exposition format 0.0.4) uses base units: seconds and bytes.
// Thread-safety: the probe's functions are called from HTTP and notifier threads; every
// member it points to must be safe to read concurrently with the run (Pipeline's are).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "detflow/pipeline/sinks.h"
#include "detflow/pipeline/source.h"
#include "detflow/pipeline/statistics.h"
#include "detflow/service/preview.h"

namespace detflow {
class Pipeline;
}

namespace detflow::service {

// One stream of a multi-stream run (pipeline.h), for the per-camera series of /metrics.
struct StreamProbe {
  std::string name;                                       // the camera label; letters, digits, '-', '_', '.'
  std::function<Statistics()> statistics;                 // required
  std::function<SourceCounters()> source_counters;        // required
  const StatisticsRecorder* recorder = nullptr;           // histograms; none when null
  std::shared_ptr<const FileOutputCounters> json_output;  // optional
  std::shared_ptr<LatestFrame> latest;                    // optional; its last frame counts for readiness
};

// With several streams the top-level members are the totals: statistics summed over the
// streams, source_counters combined (counters summed; state up only when every stream is up,
// else connecting when one is, else down; the first stream's last error), `latest` the first
// stream's preview (what /snapshot.jpg and /stream.mjpg show), and readiness counts the newest
// frame of any stream. `streams` then has one entry per stream; it is empty for one stream.
struct RunProbe {
  std::function<Statistics()> statistics;           // required
  std::function<SourceCounters()> source_counters;  // required
  SourceInfo source;
  const StatisticsRecorder* recorder = nullptr;           // histograms; none when null
  std::shared_ptr<const FileOutputCounters> json_output;  // JSON Lines losses; optional
  std::shared_ptr<LatestFrame> latest;                    // newest frame; optional
  std::function<std::int64_t()> events_dropped;           // MQTT events dropped from full outboxes; empty: 0
  double stall_timeout_s = 5;                             // no frame for this long: not ready
  Clock::time_point started = Clock::now();
  std::vector<StreamProbe> streams;
};

// A probe of `pipeline` (which must outlive it) and of the given extras; events_dropped reads
// outbox_records_dropped_total() (outbox.h: every MQTT outbox of this process).
RunProbe probe_pipeline(const Pipeline& pipeline, std::shared_ptr<LatestFrame> latest,
                        std::shared_ptr<const FileOutputCounters> json_output, double stall_timeout_s);

// A probe of a multi-stream `pipeline`: the totals as above plus one StreamProbe per stream,
// with latest[i] and json_outputs[i] (either vector may be empty, or hold null entries).
RunProbe probe_pipeline(const Pipeline& pipeline, const std::vector<std::shared_ptr<LatestFrame>>& latest,
                        const std::vector<std::shared_ptr<const FileOutputCounters>>& json_outputs,
                        double stall_timeout_s);
// The source counters of several streams as one (see RunProbe).
SourceCounters combine_source_counters(const std::vector<SourceCounters>& streams);

// The default stall timeout the issue sets for live sources: max(5 s, 10 frame intervals).
double default_stall_timeout_s(double source_fps);

struct Health {
  bool ready = false;
  bool alive = false;
  std::string reason;               // why not ready, one line; empty when ready
  double seconds_since_frame = -1;  // -1 before the first frame
};
Health judge_health(const RunProbe& probe);

// Histogram bucket bounds in seconds, shared by every detflow histogram.
const std::vector<double>& histogram_bounds_s();

// /metrics. `preview_clients` is the number of MJPEG streams open now. With probe.streams, the
// totals are followed by per-stream families detflow_stream_* labelled camera="NAME" (frames by
// outcome, frames read, detections, frames per second, source up/state/reconnects/stalls,
// JSON Lines lost, stage and capture-to-output histograms); one stream: no such family.
std::string prometheus_text(const RunProbe& probe, int preview_clients);

// /status.json: source, counters, rates, latencies (ms, as the run's statistics) and health;
// with several streams also "streams": [{camera, state, last_error, processed, dropped, failed, fps}].
nlohmann::json status_json(const RunProbe& probe, int preview_clients);

// Resident set size of this process now (VmRSS), in bytes; 0 when unknown.
std::int64_t resident_memory_bytes();

}  // namespace detflow::service
