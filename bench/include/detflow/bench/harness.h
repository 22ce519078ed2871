// detflow/bench/harness.h — `detflow bench`: detflow against what a user would write
// instead, in one run, on the same decoded frames, model and cores.
//
// run_bench() runs these modes, each in a forked child process of its own (see
// process_probe.h) that decodes the first N frames of the source into memory before
// anything is measured, so every mode sees the same pixels, none pays for decoding, and
// each mode's CPU time and peak resident memory are its own:
//
//   setup        DetectorSetup once: family, input size, thresholds, engine chosen; the
//                hand-written loop's model description (loop_model_from)
//   engine       each available engine alone (onnxruntime:cpu, opencv:cpu) on preprocessed
//                tensors: inference-only throughput and latency; plus the pipeline's
//                workers x threads running engines concurrently (its inference ceiling)
//   stage costs  detflow's stages one after another with one thread each, CPU time per
//                frame: preprocess, inference, postprocess, annotate + write; their sum
//                gives the CPU-bound limit (cores / CPU seconds per frame)
//   loop         the hand-written sequential loop (handwritten_loop.h) on the pipeline's
//                backend, and on OpenCV DNN when that is a different backend
//   pipeline     detflow's Pipeline over an in-memory file-mode source, with the same
//                outputs as the loop (annotated MP4 + JSON Lines when output_video)
//   sweep        the pipeline over workers x threads that fit the cores; the best wins
//   live         the pipeline on a live source at a fixed rate for some seconds: latency
//                distribution, drops, resident memory each second
//   features     (options.features) the plain pipeline and the pipeline with tracking +
//                lines, the MJPEG preview with three clients, MQTT, ... (feature_cost.h), in
//                the pipeline's layout, interleaved over rounds: FPS ratio feature / plain
////   streams      (options.streams = N >= 2) the same frames as N streams of one Pipeline
//                (one detector, shared workers, each stream with the pipeline's outputs),
//                interleaved over rounds with the single-stream pipeline: aggregate and
//                per-stream FPS, per-stream capture-to-output latency, peak memory; ratio
//                aggregate / single-stream FPS and the memory each extra stream adds
//
// Peak memory: each child resets VmHWM after decoding; "added" memory is the child's peak
// minus its resident set at that point (the decoded frames are the same in every mode and
// are not charged to any). Ratios compare modes of the same run only.
//
// Thread-safety: run_bench() forks; call it from a process that has not started thread
// pools (ONNX Runtime, oneTBB, GStreamer) yet, from one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "detflow/pipeline/detector.h"
#include "detflow/pipeline/source.h"
#include "detflow/track/analytics.h"

namespace detflow::bench {

struct BenchOptions {
  ModelSettings model;           // path, family, thresholds (unset: the family's defaults)
  std::string backend = "auto";  // engine of the loop and the pipeline: auto | onnxruntime | opencv
  std::string target = "cpu";    // engine target for the pipeline (the loop always runs on the CPU)
  SourceSettings source;         // decoded once per mode, file mode
  std::int64_t frames = 0;       // frames to decode; 0: all, up to memory_budget_bytes
  std::int64_t memory_budget_bytes = std::int64_t{2} << 30;
  int workers = 0;                         // pipeline inference workers; 0: as `detflow run` (1), or the sweep's best
  int threads = 0;                         // intra-op threads per worker; 0: cores / workers
  int max_in_flight = 0;                   // pipeline frames in flight; 0: workers + 1 (as `detflow run`)
  int loop_threads = 0;                    // the loop's intra-op threads; 0: cores (what the runtimes use by default)
  int cores = 0;                           // cores the run may use; 0: std::thread::hardware_concurrency()
  bool output_video = false;               // loop and pipeline annotate to MP4 and write JSON Lines
  std::filesystem::path output_directory;  // where those outputs go; empty: a temporary folder, removed after
  bool opencv_loop = true;                 // also run the loop on OpenCV DNN when the pipeline's backend differs
  bool engine_only = true;                 // run the engine-only mode
  std::int64_t engine_frames = 200;        // frames for the engine-only and stage-cost modes (capped by frames decoded)
  bool sweep = false;
  std::filesystem::path write_config;  // after a sweep (or with the given workers/threads): a `detflow run -c` YAML
  double live_seconds = 0;             // > 0: run the live mode this long
  double live_fps = 30;
  std::string live_source;  // empty: the decoded frames replayed at live_fps; else a live URI (gst:...)
  // Feature costs (feature_cost.h): after the pipeline mode, the plain pipeline and the
  // pipeline with each of these on ("tracking", "preview", "mqtt", "interval2", "interval3"),
  // same frames, workers and threads, interleaved over feature_rounds rounds; medians.
  std::vector<std::string> features;
  int feature_rounds = 3;
  std::vector<track::LineSettings> lines;  // tracking features; empty: default_bench_lines()
  std::string mqtt_url;                    // mqtt feature; empty: a Mosquitto started by the bench
  // > 1: also the same frames as this many streams of one Pipeline, next to the single-stream
  // pipeline in the same layout, interleaved over feature_rounds rounds (0: not run; 1 is refused).
  int streams = 0;
  // Called with one line before each step (e.g. "loop onnxruntime: 795 frames"); may be empty.
  std::function<void(const std::string&)> on_step;
};

// Runs every mode and returns the report as JSON. Top-level keys: "model", "source",
// "machine", "modes" (one object per mode: fps, cpu, memory, stage latencies, ...),
// "stage_costs", "limit_fps", "ratios" {"pipeline_over_loop", "pipeline_over_limit",
// "opencv_loop_over_loop", "peak_rss_pipeline_over_loop"}, "agreement" (F1 of the
// pipeline's detections against the loop's), "targets" (each with met: true/false),
// "bottleneck", "sweep", "live", "best_config", and with options.features "features" (per
// feature: FPS of every round, median, ratio to the plain run of the same round) and
// "ratios" {"<feature>_over_plain", ...}; with options.streams "streams" (FPS and added memory
// of every round for the single-stream and the multi-stream pipeline, the last multi-stream
// run's per-stream FPS and latency, "added_kb_per_extra_stream") and "ratios"
// {"multi_over_single"}. Throws detflow::Error for a setup problem
// (unreadable model, no frames, a family the loop cannot run, bad options).
nlohmann::json run_bench(const BenchOptions& options);

// The YAML `detflow run -c FILE` reads for the given model, backend and worker layout.
std::string bench_config_yaml(const BenchOptions& options, int workers, int threads, const std::string& comment);

}  // namespace detflow::bench
