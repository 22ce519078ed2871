#include "detflow/bench/harness.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <opencv2/core.hpp>

#include "detflow/bench/bench_report.h"
#include "detflow/bench/detection_agreement.h"
#include "detflow/bench/feature_cost.h"
#include "detflow/bench/frame_store.h"
#include "detflow/bench/handwritten_loop.h"
#include "detflow/bench/process_probe.h"
#include "detflow/error.h"
#include "detflow/pipeline/config.h"
#include "detflow/pipeline/pipeline.h"
#include "detflow/pipeline/sinks.h"

namespace detflow::bench {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// What every child does first: the same frames, then the memory baseline they set.
struct ChildFrames {
  std::shared_ptr<const DecodedFrames> frames;
  std::int64_t baseline_kb = 0;
  bool peak_was_reset = false;
};

ChildFrames decode_in_child(const BenchOptions& options) {
  ChildFrames child;
  child.frames = decode_frames(options.source, options.frames, options.memory_budget_bytes);
  child.peak_was_reset = reset_peak_resident();
  child.baseline_kb = resident_kb();
  return child;
}

json memory_json(const ChildFrames& child) {
  const std::int64_t peak = peak_resident_kb();
  return {
      {"baseline_kb", child.baseline_kb},
      {"peak_kb", peak},
      {"added_kb", std::max<std::int64_t>(0, peak - child.baseline_kb)},
      {"method", child.peak_was_reset ? "forked child; VmHWM reset after decoding the frames; added = peak - baseline"
                                      : "forked child; VmHWM could not be reset, so peak includes decoding"}};
}

EngineOptions engine_options_for(const std::string& backend, const std::string& target, int threads) {
  EngineOptions engine;
  engine.backend = backend;
  engine.target = target;
  engine.intra_op_threads = threads;
  return engine;
}

// Keeps every frame's detections in frame order, for the agreement with the loop.
class CollectingSink final : public Sink {
 public:
  std::string name() const override { return "bench detections"; }
  void open(const SourceInfo&) override {}
  bool consume(const FrameResult& result) override {
    if (result.failed) ++failed_;
    detections_.push_back(result.detections);
    events_ += static_cast<std::int64_t>(result.events.size());
    for (const auto& event : result.events) {
      if (event.type != track::EventType::line_cross) continue;
      auto& [in, out] = line_counts_[event.line];
      ++(event.direction == track::Direction::in ? in : out);
    }
    return true;
  }
  void finish() override {}

  const DetectionsPerFrame& detections() const { return detections_; }
  std::int64_t failed() const { return failed_; }
  std::int64_t events() const { return events_; }
  // Line crossings per line name: {in, out}.
  const std::map<std::string, std::pair<std::int64_t, std::int64_t>>& line_counts() const { return line_counts_; }

 private:
  DetectionsPerFrame detections_;
  std::int64_t failed_ = 0;
  std::int64_t events_ = 0;
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> line_counts_;
};

std::vector<std::unique_ptr<Sink>> output_sinks(const BenchOptions& options, const std::filesystem::path& directory,
                                                const std::string& stem) {
  if (!options.output_video) return {};
  SinkSettings settings;
  settings.video = directory / (stem + ".mp4");
  settings.json = directory / (stem + ".jsonl");
  settings.display = DisplayMode::off;
  return make_sinks(settings);
}

json stages_json(const std::map<std::string, LatencySummary>& stages) {
  json result = json::object();
  for (const auto& [name, summary] : stages) result[name == "sinks" ? "output" : name] = to_json(summary);
  return result;
}

std::string layout_label(int workers, int threads) {  // "2 workers x 1 thread"
  return std::to_string(workers) + (workers == 1 ? " worker x " : " workers x ") + std::to_string(threads) +
         (threads == 1 ? " thread" : " threads");
}

// ---- modes, each run inside its own child process -------------------------------------

json setup_mode(const BenchOptions& options) {
  const ChildFrames child = decode_in_child(options);
  DetectorSetup detector(options.model, engine_options_for(options.backend, options.target, 1));
  json result;
  result["describe"] = detector.describe();
  result["family"] = std::string(detector.family().family->name);
  result["family_reason"] = detector.family().reason;
  result["backend"] = detector.engine_report().backend;
  result["engine_targets"] = detector.engine_report().targets;
  result["input_width"] = detector.preprocess_spec().width;
  result["input_height"] = detector.preprocess_spec().height;
  result["available_engines"] = available_engines();
  const DecodedFrames& frames = *child.frames;
  result["frames"] = frames.size();
  result["frame_width"] = frames.images.front().cols;
  result["frame_height"] = frames.images.front().rows;
  result["source_fps"] = frames.source.fps;
  result["source_description"] = frames.source.description;
  result["source_frame_count"] = frames.source.frame_count;
  result["stopped_at_memory_budget"] = frames.stopped_at_memory_budget;
  result["decoded_bytes"] = frames.byte_size();
  try {
    result["loop_model"] = to_json(loop_model_from(detector));
  } catch (const Error& error) {
    result["loop_unavailable"] = error.what();
  }
  return result;
}

// Inference alone: `workers` engines (one thread each drives one) over preprocessed tensors.
json engine_mode(const BenchOptions& options, const std::string& engine_name, int workers, int threads) {
  const ChildFrames child = decode_in_child(options);
  const auto separator = engine_name.find(':');
  const std::string backend = engine_name.substr(0, separator);
  const std::string target = separator == std::string::npos ? "cpu" : engine_name.substr(separator + 1);
  DetectorSetup detector(options.model, engine_options_for(backend, target, threads));
  std::vector<std::unique_ptr<Engine>> engines;
  for (int worker = 0; worker < workers; ++worker) engines.push_back(detector.make_engine());

  const std::size_t distinct = std::min<std::size_t>(child.frames->size(), 16);
  std::vector<Tensor> tensors;
  Preprocessor preprocessor(detector.preprocess_spec());
  for (std::size_t index = 0; index < distinct; ++index) {
    tensors.push_back(detector.make_input_tensor());
    preprocessor.run(child.frames->images[index], tensors.back());
  }
  const auto runs = static_cast<std::int64_t>(
      std::min<std::int64_t>(static_cast<std::int64_t>(child.frames->size()), options.engine_frames));

  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(workers));
  std::barrier start_line(workers + 1);
  std::atomic<std::int64_t> next_run{0};
  std::vector<std::thread> threads_running;
  std::mutex failure_mutex;
  std::string failure;
  for (int worker = 0; worker < workers; ++worker) {
    threads_running.emplace_back([&, worker] {
      Engine& engine = *engines[static_cast<std::size_t>(worker)];
      std::vector<Tensor> outputs;
      try {
        for (int warm_up = 0; warm_up < 2; ++warm_up) engine.run(std::span<const Tensor>(&tensors[0], 1), outputs);
      } catch (const std::exception& error) {
        const std::lock_guard lock(failure_mutex);
        failure = error.what();
      }
      start_line.arrive_and_wait();
      {
        const std::lock_guard lock(failure_mutex);
        if (!failure.empty()) return;
      }
      try {
        for (std::int64_t run = next_run++; run < runs; run = next_run++) {
          const auto begin = SteadyClock::now();
          engine.run(std::span<const Tensor>(&tensors[static_cast<std::size_t>(run) % distinct], 1), outputs);
          latencies[static_cast<std::size_t>(worker)].push_back(
              std::chrono::duration<double, std::milli>(SteadyClock::now() - begin).count());
        }
      } catch (const std::exception& error) {
        const std::lock_guard lock(failure_mutex);
        failure = error.what();
        next_run = runs;  // the other workers stop too
      }
    });
  }
  start_line.arrive_and_wait();
  const double cpu_start = process_cpu_seconds();
  const auto start = SteadyClock::now();
  for (auto& thread : threads_running) thread.join();
  const double elapsed = seconds_since(start);
  const double cpu = process_cpu_seconds() - cpu_start;
  if (!failure.empty()) throw std::runtime_error(engine_name + ": " + failure);

  std::vector<double> all;
  for (const auto& samples : latencies) all.insert(all.end(), samples.begin(), samples.end());
  json result;
  result["mode"] = "engine";
  result["engine"] = engine_name;
  result["workers"] = workers;
  result["threads"] = threads;
  result["label"] = "engine " + engine_name + " alone, " + layout_label(workers, threads);
  result["frames"] = runs;
  result["elapsed_s"] = elapsed;
  result["fps"] = elapsed > 0 ? static_cast<double>(runs) / elapsed : 0.0;
  result["cpu_s"] = cpu;
  result["cpu_cores_used"] = elapsed > 0 ? cpu / elapsed : 0.0;
  result["stages"] = {{"inference", to_json(summarize_latencies(all))}};
  result["engine_targets"] = detector.engine_report().targets;
  result["memory"] = memory_json(child);
  return result;
}

// detflow's stages one after another, one thread, CPU time per frame each.
json stage_cost_mode(const BenchOptions& options, const std::string& backend, const std::filesystem::path& directory) {
  const ChildFrames child = decode_in_child(options);
  cv::setNumThreads(1);
  DetectorSetup detector(options.model, engine_options_for(backend, options.target, 1));
  std::unique_ptr<Engine> engine = detector.make_engine();
  Preprocessor preprocessor(detector.preprocess_spec());
  Tensor input = detector.make_input_tensor();
  std::vector<Tensor> outputs;
  const auto count = static_cast<std::size_t>(
      std::min<std::int64_t>(static_cast<std::int64_t>(child.frames->size()), options.engine_frames));

  std::vector<FrameResult> results(count);
  std::vector<Detection> warm_up_detections;
  for (std::size_t index = 0; index < std::min<std::size_t>(2, count); ++index) {
    const Geometry geometry = preprocessor.run(child.frames->images[index], input);
    engine->run(std::span<const Tensor>(&input, 1), outputs);
    detector.postprocess(outputs, geometry, warm_up_detections);
  }
  double preprocess_s = 0, inference_s = 0, postprocess_s = 0;
  for (std::size_t index = 0; index < count; ++index) {
    const double begin = process_cpu_clock_seconds();
    const Geometry geometry = preprocessor.run(child.frames->images[index], input);
    const double preprocessed = process_cpu_clock_seconds();
    engine->run(std::span<const Tensor>(&input, 1), outputs);
    const double inferred = process_cpu_clock_seconds();
    detector.postprocess(outputs, geometry, results[index].detections);
    const double postprocessed = process_cpu_clock_seconds();
    preprocess_s += preprocessed - begin;
    inference_s += inferred - preprocessed;
    postprocess_s += postprocessed - inferred;
  }

  double output_s = 0;
  std::vector<std::unique_ptr<Sink>> sinks = output_sinks(options, directory, "stage-costs");
  if (!sinks.empty()) {
    ReplaySettings replay;
    replay.nominal_fps = child.frames->source.fps;
    const MemorySource source(child.frames, replay);
    const double begin = process_cpu_clock_seconds();
    for (auto& sink : sinks) sink->open(source.info());
    for (std::size_t index = 0; index < count; ++index) {
      auto frame = std::make_shared<Frame>();
      frame->index = static_cast<std::int64_t>(index);
      frame->pts_ms = child.frames->pts_ms[index];
      frame->captured = Clock::now();
      frame->image = child.frames->images[index];
      results[index].frame = std::move(frame);
      for (auto& sink : sinks) sink->consume(results[index]);
    }
    for (auto& sink : sinks) sink->finish();
    output_s = process_cpu_clock_seconds() - begin;
  }

  const double frames = static_cast<double>(count);
  json costs = {{"preprocess", 1000.0 * preprocess_s / frames},
                {"inference", 1000.0 * inference_s / frames},
                {"postprocess", 1000.0 * postprocess_s / frames},
                {"output", 1000.0 * output_s / frames}};
  double total = 0;
  for (const auto& [name, value] : costs.items()) total += value.get<double>();
  return {{"mode", "stage_costs"},
          {"backend", backend},
          {"frames", count},
          {"cpu_ms_per_frame", costs},
          {"total_cpu_ms_per_frame", total},
          {"outputs_included", options.output_video},
          {"method",
           "process CPU time (CLOCK_PROCESS_CPUTIME_ID) around each stage, one frame at a time, "
           "engine with 1 intra-op thread, cv::setNumThreads(1); output = annotate + encode MP4 + "
           "JSON Lines through detflow's sinks, CPU of all their threads; decoding excluded"}};
}

json loop_mode(const BenchOptions& options, const LoopModel& model, const std::string& backend, int threads,
               const std::filesystem::path& directory) {
  const ChildFrames child = decode_in_child(options);
  LoopSettings settings;
  settings.backend = backend;
  settings.threads = threads;
  settings.video_fps = child.frames->source.fps > 0 ? child.frames->source.fps : default_video_fps;
  if (options.output_video) {
    settings.video_output = directory / ("loop-" + backend + ".mp4");
    settings.json_output = directory / ("loop-" + backend + ".jsonl");
  }
  HandwrittenLoop loop(model, settings);
  const double cpu_start = process_cpu_seconds();
  const LoopResult run = loop.run(child.frames->images);
  const double cpu = process_cpu_seconds() - cpu_start;
  json result;
  result["mode"] = "loop";
  result["backend"] = backend;
  result["threads"] = threads;
  result["label"] = "hand-written loop, " + backend + ", " + std::to_string(threads) + " threads";
  result["frames"] = run.frames;
  result["elapsed_s"] = run.elapsed_s;
  result["fps"] = run.elapsed_s > 0 ? static_cast<double>(run.frames) / run.elapsed_s : 0.0;
  result["cpu_s"] = cpu;
  result["cpu_cores_used"] = run.elapsed_s > 0 ? cpu / run.elapsed_s : 0.0;
  result["stages"] = stages_json(run.stages);
  result["capture_to_output"] = to_json(run.capture_to_output);
  result["memory"] = memory_json(child);
  result["detections"] = detections_to_json(run.detections);
  return result;
}

// A pipeline's run with its wall time and the process's CPU time; throws when it failed.
struct TimedRun {
  RunSummary summary;
  double elapsed_s = 0;
  double cpu_s = 0;
};
TimedRun timed_run(Pipeline& pipeline, const std::string& what) {
  const double cpu_start = process_cpu_seconds();
  const auto start = SteadyClock::now();
  TimedRun run{pipeline.run(), 0, 0};
  run.elapsed_s = seconds_since(start);
  run.cpu_s = process_cpu_seconds() - cpu_start;
  if (run.summary.failed) throw std::runtime_error(what + " failed: " + run.summary.failure);
  return run;
}

// The pipeline over the frames in memory; with `feature` (FeatureSetup::feature not empty)
// that feature on as well (feature_cost.h), everything else identical.
json pipeline_mode(const BenchOptions& options, const std::string& backend, int workers, int threads,
                   const std::filesystem::path& directory, const FeatureSetup* feature = nullptr) {
  const ChildFrames child = decode_in_child(options);
  DetectorSetup detector(options.model, engine_options_for(backend, options.target, threads));
  std::string stem = "pipeline-" + std::to_string(workers) + "x" + std::to_string(threads);
  if (feature != nullptr) stem += "-" + (feature->feature.empty() ? std::string("plain") : feature->feature);
  std::vector<std::unique_ptr<Sink>> sinks = output_sinks(options, directory, stem);
  auto collector = std::make_unique<CollectingSink>();
  const CollectingSink& collected = *collector;
  sinks.push_back(std::move(collector));
  PipelineSettings settings;
  settings.workers = workers;
  settings.max_in_flight = options.max_in_flight;
  settings.progress = false;
  std::optional<FeatureRun> feature_run;
  if (feature != nullptr) {
    feature_run.emplace(*feature);
    feature_run->prepare(settings, sinks);
  }
  ReplaySettings replay;
  replay.nominal_fps = child.frames->source.fps;
  Pipeline pipeline(detector, std::make_unique<MemorySource>(child.frames, replay), std::move(sinks), settings);
  if (feature_run) feature_run->start(pipeline);

  const auto [summary, elapsed, cpu] = timed_run(pipeline, "pipeline");
  const json feature_report = feature_run ? feature_run->finish(elapsed) : json();

  const Statistics& statistics = summary.statistics;
  json result;
  result["mode"] = "pipeline";
  result["backend"] = backend;
  result["workers"] = workers;
  result["threads"] = threads;
  result["label"] = "detflow pipeline, " + backend + ", " + layout_label(workers, threads);
  result["frames"] = statistics.frames_processed;
  result["frames_failed"] = statistics.frames_failed + collected.failed();
  result["frames_dropped"] = statistics.frames_dropped;
  result["elapsed_s"] = elapsed;
  result["fps"] = elapsed > 0 ? static_cast<double>(statistics.frames_processed) / elapsed : 0.0;
  result["cpu_s"] = cpu;
  result["cpu_cores_used"] = elapsed > 0 ? cpu / elapsed : 0.0;
  result["stages"] = stages_json(statistics.stages);
  result["capture_to_output"] = to_json(statistics.capture_to_output);
  result["memory"] = memory_json(child);
  result["detections"] = detections_to_json(collected.detections());
  if (settings.tracking) {
    result["events"] = collected.events();
    json counts = json::object();
    for (const auto& line : settings.analytics.lines) counts[line.name] = {{"in", 0}, {"out", 0}};
    for (const auto& [name, in_out] : collected.line_counts())
      counts[name] = {{"in", in_out.first}, {"out", in_out.second}};
    result["line_counts"] = counts;
  }
  if (!feature_report.is_null()) result["feature"] = feature_report;
  return result;
}

json live_mode(const BenchOptions& options, const std::string& backend, int workers, int threads,
               const std::filesystem::path& directory) {
  ChildFrames child;
  std::unique_ptr<Source> source;
  if (options.live_source.empty()) {
    child = decode_in_child(options);
    ReplaySettings replay;
    replay.live = true;
    replay.fps = options.live_fps;
    replay.duration_s = options.live_seconds;
    source = std::make_unique<MemorySource>(child.frames, replay);
  } else {
    child.peak_was_reset = reset_peak_resident();
    child.baseline_kb = resident_kb();
    SourceSettings settings;
    settings.uri = options.live_source;
    settings.mode = SourceMode::live;
    source = open_source(settings);
  }
  const std::string source_description = source->info().description;
  DetectorSetup detector(options.model, engine_options_for(backend, options.target, threads));
  PipelineSettings settings;
  settings.workers = workers;
  settings.max_in_flight = options.max_in_flight;
  settings.progress = false;
  Pipeline pipeline(detector, std::move(source), output_sinks(options, directory, "live"), settings);

  std::vector<std::int64_t> resident_samples;
  std::mutex done_mutex;
  std::condition_variable done_signal;
  bool done = false;
  const auto start = SteadyClock::now();
  std::thread sampler([&] {
    std::unique_lock lock(done_mutex);
    for (int second = 1;; ++second) {
      if (done_signal.wait_until(lock, start + std::chrono::seconds(second), [&] { return done; })) return;
      resident_samples.push_back(resident_kb());
      // A live URI never ends by itself: stop it after the requested time.
      if (!options.live_source.empty() && second >= options.live_seconds) pipeline.request_stop();
    }
  });
  RunSummary summary;
  try {
    summary = pipeline.run();
  } catch (...) {
    {
      const std::lock_guard lock(done_mutex);
      done = true;
    }
    done_signal.notify_all();
    sampler.join();
    throw;
  }
  {
    const std::lock_guard lock(done_mutex);
    done = true;
  }
  done_signal.notify_all();
  sampler.join();
  const double elapsed = seconds_since(start);
  if (summary.failed) throw std::runtime_error("live pipeline failed: " + summary.failure);

  const Statistics& statistics = summary.statistics;
  json result;
  result["mode"] = "live";
  result["backend"] = backend;
  result["workers"] = workers;
  result["threads"] = threads;
  result["source"] = source_description;
  result["rate_fps"] = options.live_source.empty() ? options.live_fps : 0.0;
  result["seconds"] = elapsed;
  result["frames_read"] = statistics.frames_read;
  result["frames_processed"] = statistics.frames_processed;
  result["frames_dropped"] = statistics.frames_dropped;
  result["frames_failed"] = statistics.frames_failed;
  result["fps"] = elapsed > 0 ? static_cast<double>(statistics.frames_processed) / elapsed : 0.0;
  result["capture_to_output"] = to_json(statistics.capture_to_output);
  result["stages"] = stages_json(statistics.stages);
  result["resident_kb_each_second"] = resident_samples;
  result["memory"] = memory_json(child);
  return result;
}

// The same frames as `count` streams of one Pipeline (one detector, shared workers), each
// stream with the single-stream pipeline's outputs and options.
json streams_mode(const BenchOptions& options, const std::string& backend, int workers, int threads, int count,
                  const std::filesystem::path& directory) {
  const ChildFrames child = decode_in_child(options);
  DetectorSetup detector(options.model, engine_options_for(backend, options.target, threads));
  ReplaySettings replay;
  replay.nominal_fps = child.frames->source.fps;
  std::vector<StreamSetup> streams;
  std::vector<const CollectingSink*> collected;
  for (int index = 0; index < count; ++index) {
    StreamSetup stream;
    stream.name = "stream" + std::to_string(index + 1);
    stream.source = std::make_unique<MemorySource>(child.frames, replay);
    stream.sinks = output_sinks(options, directory, "streams" + std::to_string(count) + "-" + stream.name);
    auto collector = std::make_unique<CollectingSink>();
    collected.push_back(collector.get());
    stream.sinks.push_back(std::move(collector));
    stream.options.max_in_flight = options.max_in_flight;
    streams.push_back(std::move(stream));
  }
  PipelineSettings settings;
  settings.workers = workers;
  settings.progress = false;
  Pipeline pipeline(detector, std::move(streams), settings);

  const auto [summary, elapsed, cpu] = timed_run(pipeline, "multi-stream pipeline");

  std::int64_t frames = 0;
  json per_stream = json::array();
  for (std::size_t index = 0; index < summary.streams.size(); ++index) {
    const Statistics& statistics = summary.streams[index].statistics;
    frames += statistics.frames_processed;
    per_stream.push_back({{"name", summary.streams[index].name},
                          {"frames", statistics.frames_processed},
                          {"frames_failed", statistics.frames_failed + collected[index]->failed()},
                          {"elapsed_s", statistics.elapsed_s},
                          {"fps", statistics.fps},
                          {"capture_to_output", to_json(statistics.capture_to_output)}});
  }
  json result = {
      {"mode", "streams"}, {"streams", count}, {"backend", backend}, {"workers", workers}, {"threads", threads}};
  result["label"] = "detflow pipeline, " + std::to_string(count) + " streams, " + layout_label(workers, threads);
  result["frames"] = frames;
  result["elapsed_s"] = elapsed;
  result["fps"] = elapsed > 0 ? static_cast<double>(frames) / elapsed : 0.0;  // aggregate
  result["cpu_s"] = cpu;
  result["cpu_cores_used"] = elapsed > 0 ? cpu / elapsed : 0.0;
  result["stages"] = stages_json(summary.statistics.stages);
  result["capture_to_output"] = to_json(summary.statistics.capture_to_output);
  result["per_stream"] = per_stream;
  result["memory"] = memory_json(child);
  return result;
}

// ---- the parent: orchestration and the report -----------------------------------------

json run_child(const BenchOptions& options, const std::string& what, const std::function<json()>& work) {
  if (options.on_step) options.on_step(what);
  return json::parse(run_in_child(what, [&work] { return work().dump(); }));
}

double number_at(const json& object, const char* key) {
  const auto found = object.find(key);
  return found != object.end() && found->is_number() ? found->get<double>() : 0.0;
}

double stage_mean(const json& mode, const char* stage) {
  if (!mode.contains("stages") || !mode["stages"].contains(stage)) return 0.0;
  return number_at(mode["stages"][stage], "mean_ms");
}

json target(const std::string& name, double value, const std::string& comparison, double goal) {
  const bool met = comparison == ">=" ? value >= goal : value <= goal;
  return {{"name", name}, {"value", value}, {"comparison", comparison}, {"goal", goal}, {"met", met}};
}

// Which stage holds the pipeline back: the largest single-thread CPU cost, and the stage
// whose measured time caps throughput in the pipeline's layout.
json find_bottleneck(const json& stage_costs, const json& pipeline, const json& engine_ceiling, int cores) {
  json result;
  std::string largest;
  double largest_ms = 0, total_ms = 0;
  for (const auto& [name, value] : stage_costs["cpu_ms_per_frame"].items()) {
    total_ms += value.get<double>();
    if (value.get<double>() > largest_ms) {
      largest_ms = value.get<double>();
      largest = name;
    }
  }
  result["largest_cpu_stage"] = largest;
  result["largest_cpu_ms_per_frame"] = largest_ms;
  result["largest_cpu_share"] = total_ms > 0 ? largest_ms / total_ms : 0.0;

  const int workers = pipeline.value("workers", 1);
  // Throughput each stage would allow on its own in the pipeline: inference runs on
  // `workers` engines, the sinks on one thread, pre/post on the oneTBB pool.
  json caps = json::object();
  const double inference = stage_mean(pipeline, "inference");
  const double output = stage_mean(pipeline, "output");
  const double preprocess = stage_mean(pipeline, "preprocess");
  const double postprocess = stage_mean(pipeline, "postprocess");
  if (inference > 0) caps["inference"] = 1000.0 * workers / inference;
  if (output > 0) caps["output"] = 1000.0 / output;
  if (preprocess > 0) caps["preprocess"] = 1000.0 * cores / preprocess;
  if (postprocess > 0) caps["postprocess"] = 1000.0 * cores / postprocess;
  std::string limiting;
  double limiting_fps = 0;
  for (const auto& [name, value] : caps.items()) {
    if (limiting.empty() || value.get<double>() < limiting_fps) {
      limiting = name;
      limiting_fps = value.get<double>();
    }
  }
  result["stage_fps_caps"] = caps;
  result["limiting_stage"] = limiting;
  result["limiting_stage_fps"] = limiting_fps;
  const double cores_used = number_at(pipeline, "cpu_cores_used");
  result["pipeline_cores_used"] = cores_used;
  // Time a frame spends waiting between stages (queues, tokens), on average.
  const double waiting = pipeline.contains("capture_to_output") ? number_at(pipeline["capture_to_output"], "mean_ms") -
                                                                      (preprocess + inference + postprocess + output)
                                                                : 0.0;
  result["pipeline_mean_wait_ms"] = waiting;
  std::ostringstream text;
  text.setf(std::ios::fixed);
  text.precision(1);
  text << "largest CPU cost per frame: " << largest << " " << largest_ms << " ms (" << 100.0 * largest_ms / total_ms
       << " % of " << total_ms << " ms); in the pipeline " << limiting << " caps throughput at " << limiting_fps
       << " FPS (mean stage time with its parallelism); the pipeline kept " << cores_used << " of " << cores
       << " cores busy; a frame waited " << waiting << " ms on average between stages";
  if (cores_used < 0.9 * cores) {
    text << " — cores idle: the stages do not overlap enough (more frames in flight or another workers x threads "
            "layout would fill them)";
  }
  // Inference alone in the pipeline's layout: does it use the cores it is given?
  if (!engine_ceiling.is_null() && !engine_ceiling.contains("error")) {
    const int layout_cores = engine_ceiling.value("workers", 1) * engine_ceiling.value("threads", 1);
    const double ceiling_cores = number_at(engine_ceiling, "cpu_cores_used");
    result["engine_ceiling_fps"] = number_at(engine_ceiling, "fps");
    result["engine_ceiling_cores_used"] = ceiling_cores;
    if (ceiling_cores < 0.75 * std::min(layout_cores, cores)) {
      text << "; the engines alone in this layout reach only " << number_at(engine_ceiling, "fps") << " FPS on "
           << ceiling_cores << " of " << std::min(layout_cores, cores)
           << " cores: concurrent inference does not scale in this run (other runnable threads on the cores? see "
              "bench/README.md)";
    }
  }
  result["text"] = text.str();
  return result;
}

std::string compact(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

std::filesystem::path make_temporary_directory() {
  std::string pattern = (std::filesystem::temp_directory_path() / "detflow-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw Error("cannot create a temporary folder under /tmp for the outputs");
  return pattern;
}

json strip_detections(json mode) {
  mode.erase("detections");
  return mode;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2.0;
}

// 1 - (sum over lines of |in - in_ref| + |out - out_ref|) / (crossings in the reference, >= 1).
double line_count_agreement(const json& counts, const json& reference) {
  double difference = 0, total = 0;
  for (const auto& [name, value] : reference.items()) {
    const json other = counts.contains(name) ? counts[name] : json{{"in", 0}, {"out", 0}};
    total += value["in"].get<double>() + value["out"].get<double>();
    difference += std::abs(other["in"].get<double>() - value["in"].get<double>()) +
                  std::abs(other["out"].get<double>() - value["out"].get<double>());
  }
  return 1.0 - difference / std::max(1.0, total);
}

// Every round runs each variant once, the order rotated by one per round, so slow drifts of
// the machine (other builds starting or ending) hit every variant alike.
void run_interleaved(int rounds, const std::vector<std::string>& variants,
                     const std::function<void(int round, const std::string& variant)>& run) {
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::string> order = variants;
    std::rotate(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(round % order.size()), order.end());
    for (const std::string& variant : order) run(round, variant);
  }
}

// Ratios of the same round: numerators[i] / denominators[i].
std::vector<double> same_round_ratios(const std::vector<double>& numerators, const std::vector<double>& denominators) {
  std::vector<double> result;
  for (std::size_t index = 0; index < std::min(numerators.size(), denominators.size()); ++index) {
    if (denominators[index] > 0) result.push_back(numerators[index] / denominators[index]);
  }
  return result;
}

// The plain pipeline and the pipeline with each feature, in the same layout, interleaved:
// every round runs each once, the order rotated by one per round, so slow drifts of the
// machine (other builds starting or ending) hit every variant alike. A feature's ratio is the
// median over rounds of its FPS over the plain FPS of the same round. Adds
// "<feature>_over_plain" (and "<feature>_over_tracking" for mqtt and intervalN) to `ratios`
// and one target per feature of `detflow run` (tracking, preview, mqtt: >= 0.97) to `targets`.
json compare_features(const BenchOptions& options, const std::string& backend, int workers, int threads,
                      const json& setup, const std::filesystem::path& directory, json& ratios, json& targets) {
  std::vector<std::string> features = options.features;
  const bool wants_interval = std::any_of(features.begin(), features.end(),
                                          [](const std::string& name) { return name.rfind("interval", 0) == 0; });
  // Intervals are compared with tracking on every frame: it runs too.
  if (wants_interval && std::find(features.begin(), features.end(), "tracking") == features.end()) {
    features.insert(features.begin(), "tracking");
  }
  FeatureSetup base;
  base.lines = options.lines.empty()
                   ? default_bench_lines(setup["frame_width"].get<int>(), setup["frame_height"].get<int>())
                   : options.lines;
  base.source_uri = options.source.uri;
  std::optional<LocalBroker> broker;
  std::string broker_note;
  if (std::find(features.begin(), features.end(), "mqtt") != features.end()) {
    base.mqtt_url = options.mqtt_url;
    if (base.mqtt_url.empty()) {
      if (options.on_step) options.on_step("starting mosquitto for the mqtt feature");
      broker.emplace(find_mosquitto());
      base.mqtt_url = broker->url();
      broker_note = "mosquitto started by the bench on " + base.mqtt_url;
    } else {
      broker_note = "given broker " + base.mqtt_url;
    }
  }
  base.work_directory = make_temporary_directory();

  std::vector<std::string> variants{""};  // "": plain
  variants.insert(variants.end(), features.begin(), features.end());
  std::map<std::string, std::vector<double>> fps;
  std::map<std::string, json> last;
  std::map<std::string, std::string> errors;
  const int rounds = std::max(1, options.feature_rounds);
  run_interleaved(rounds, variants, [&](int round, const std::string& variant) {
    if (errors.count(variant) > 0) return;
    FeatureSetup feature = base;
    feature.feature = variant;
    const std::string label = "features round " + std::to_string(round + 1) + "/" + std::to_string(rounds) + ", " +
                              (variant.empty() ? std::string("plain") : variant);
    try {
      json result = run_child(options, label,
                              [&] { return pipeline_mode(options, backend, workers, threads, directory, &feature); });
      fps[variant].push_back(result["fps"].get<double>());
      last[variant] = strip_detections(std::move(result));
    } catch (const std::exception& error) {
      if (variant.empty()) throw;  // without the plain run there is nothing to compare with
      errors[variant] = error.what();
    }
  });
  std::error_code ignored;
  std::filesystem::remove_all(base.work_directory, ignored);

  json report;
  report["rounds"] = rounds;
  report["workers"] = workers;
  report["threads"] = threads;
  report["order"] = "interleaved: each round runs plain and every feature once, the order rotated by one per round";
  json lines = json::array();
  for (const auto& line : base.lines) {
    lines.push_back({{"name", line.name}, {"points", {line.start.x, line.start.y, line.end.x, line.end.y}}});
  }
  report["lines"] = lines;
  if (!broker_note.empty()) report["mqtt_broker"] = broker_note;
  const std::vector<double>& plain = fps[""];
  report["plain"] = {{"fps_runs", plain}, {"fps_median", median(plain)}};
  json per_feature = json::object();
  const auto ratio_runs = [&fps](const std::string& variant, const std::string& reference) {
    return same_round_ratios(fps[variant], fps[reference]);
  };
  for (const std::string& feature : features) {
    json item;
    if (errors.count(feature) > 0) {
      item["error"] = errors[feature];
      ratios[feature + "_over_plain"] = nullptr;
      per_feature[feature] = item;
      if (feature == "tracking" || feature == "preview" || feature == "mqtt") {
        targets.push_back({{"name", feature + " FPS / plain FPS (failed: " + errors[feature] + ")"},
                           {"value", nullptr},
                           {"comparison", ">="},
                           {"goal", 0.97},
                           {"met", false}});
      }
      continue;
    }
    const std::vector<double> runs = ratio_runs(feature, "");
    const double ratio = median(runs);
    item["fps_runs"] = fps[feature];
    item["fps_median"] = median(fps[feature]);
    item["ratio_runs"] = runs;
    item["ratio_over_plain"] = ratio;
    item["ratio_min"] = runs.empty() ? 0.0 : *std::min_element(runs.begin(), runs.end());
    item["ratio_max"] = runs.empty() ? 0.0 : *std::max_element(runs.begin(), runs.end());
    const json& run = last[feature];
    item["cpu_cores_used"] = run["cpu_cores_used"];
    item["capture_to_output"] = run["capture_to_output"];
    if (run.contains("feature")) item["last_run"] = run["feature"];
    if (run.contains("line_counts")) item["line_counts"] = run["line_counts"];
    if (run.contains("events")) {
      item["events"] = run["events"];
      const double elapsed = run["elapsed_s"].get<double>();
      item["events_per_second"] = elapsed > 0 ? run["events"].get<double>() / elapsed : 0.0;
    }
    ratios[feature + "_over_plain"] = ratio;
    if ((feature == "mqtt" || feature.rfind("interval", 0) == 0) && feature != "tracking" &&
        fps.count("tracking") > 0 && errors.count("tracking") == 0) {
      const double over_tracking = median(ratio_runs(feature, "tracking"));
      item["ratio_over_tracking"] = over_tracking;
      ratios[feature + "_over_tracking"] = over_tracking;
      if (feature.rfind("interval", 0) == 0 && run.contains("line_counts") &&
          last["tracking"].contains("line_counts")) {
        item["line_count_agreement"] = line_count_agreement(run["line_counts"], last["tracking"]["line_counts"]);
        item["line_counts_interval1"] = last["tracking"]["line_counts"];
      }
    }
    if (feature == "tracking" || feature == "preview" || feature == "mqtt") {
      const std::string what = feature == "tracking"  ? "tracking + " + std::to_string(base.lines.size()) + " lines"
                               : feature == "preview" ? "MJPEG preview, 3 clients (1 slow)"
                                                      : "MQTT sink (with tracking + lines)";
      targets.push_back(
          target(what + " FPS / plain FPS (median of " + std::to_string(runs.size()) + " rounds)", ratio, ">=", 0.97));
    }
    per_feature[feature] = item;
  }
  report["features"] = per_feature;
  report["feature_order"] = features;  // as given (the JSON object sorts its keys)
  return report;
}

// The single-stream pipeline and the same frames as options.streams streams of one Pipeline,
// in the same layout and with the same outputs, interleaved over rounds. Adds
// "multi_over_single" (median over rounds of aggregate FPS / single-stream FPS of the same
// round) to `ratios`, and the two targets (>= 0.9; <= 25 MiB per extra stream).
json compare_streams(const BenchOptions& options, const std::string& backend, int workers, int threads,
                     const std::filesystem::path& directory, json& ratios, json& targets) {
  const int count = options.streams;
  const int rounds = std::max(1, options.feature_rounds);
  std::map<std::string, std::vector<double>> fps, added_kb;
  json last_multi;
  run_interleaved(rounds, {"single", "multi"}, [&](int round, const std::string& variant) {
    const std::string label = "streams round " + std::to_string(round + 1) + "/" + std::to_string(rounds) + ", " +
                              (variant == "single" ? std::string("1 stream") : std::to_string(count) + " streams");
    json result = run_child(options, label, [&] {
      return variant == "single" ? pipeline_mode(options, backend, workers, threads, directory)
                                 : streams_mode(options, backend, workers, threads, count, directory);
    });
    fps[variant].push_back(result["fps"].get<double>());
    added_kb[variant].push_back(result["memory"]["added_kb"].get<double>());
    if (variant == "multi") last_multi = std::move(result);
  });

  const std::vector<double> ratio_runs = same_round_ratios(fps["multi"], fps["single"]);
  std::vector<double> per_extra_kb_runs;
  for (std::size_t index = 0; index < std::min(added_kb["multi"].size(), added_kb["single"].size()); ++index) {
    per_extra_kb_runs.push_back((added_kb["multi"][index] - added_kb["single"][index]) / (count - 1));
  }
  const double ratio = median(ratio_runs);
  const double per_extra_kb = median(per_extra_kb_runs);
  json report;
  report["streams"] = count;
  report["rounds"] = rounds;
  report["workers"] = workers;
  report["threads"] = threads;
  report["order"] =
      "interleaved: each round runs the single-stream pipeline and the multi-stream one once, the order "
      "rotated by one per round";
  report["single"] = {{"fps_runs", fps["single"]},
                      {"fps_median", median(fps["single"])},
                      {"added_kb_runs", added_kb["single"]},
                      {"added_kb_median", median(added_kb["single"])}};
  report["multi"] = {{"fps_runs", fps["multi"]},
                     {"fps_median", median(fps["multi"])},
                     {"added_kb_runs", added_kb["multi"]},
                     {"added_kb_median", median(added_kb["multi"])},
                     {"last_run", strip_detections(last_multi)}};
  report["ratio_runs"] = ratio_runs;
  report["multi_over_single"] = ratio;
  report["ratio_min"] = ratio_runs.empty() ? 0.0 : *std::min_element(ratio_runs.begin(), ratio_runs.end());
  report["ratio_max"] = ratio_runs.empty() ? 0.0 : *std::max_element(ratio_runs.begin(), ratio_runs.end());
  report["added_kb_per_extra_stream_runs"] = per_extra_kb_runs;
  report["added_kb_per_extra_stream"] = per_extra_kb;
  ratios["multi_over_single"] = ratio;
  targets.push_back(target(std::to_string(count) + " streams aggregate FPS / single-stream FPS (median of " +
                               std::to_string(ratio_runs.size()) + " rounds)",
                           ratio, ">=", 0.9));
  targets.push_back(target("resident memory per extra stream, MiB", per_extra_kb / 1024.0, "<=", 25.0));
  return report;
}

}  // namespace

std::string bench_config_yaml(const BenchOptions& options, int workers, int threads, const std::string& comment) {
  std::ostringstream yaml;
  yaml << "# " << comment << "\n";
  yaml << "model:\n  path: "
       << json(std::filesystem::weakly_canonical(std::filesystem::absolute(options.model.path)).string()).dump()
       << "\n";
  if (options.model.family != "auto") yaml << "  family: " << options.model.family << "\n";
  yaml << "engine:\n";
  yaml << "  backend: " << options.backend << "\n";
  yaml << "  target: " << options.target << "\n";
  yaml << "  workers: " << workers << "\n";
  yaml << "  threads: " << threads << "\n";
  return yaml.str();
}

json run_bench(const BenchOptions& input_options) {
  BenchOptions options = input_options;
  const int cores =
      options.cores > 0 ? options.cores : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (options.workers < 0 || options.threads < 0 || options.loop_threads < 0 || options.max_in_flight < 0) {
    throw Error("workers/threads/max in flight must be 0 (automatic) or positive; got workers " +
                std::to_string(options.workers) + ", threads " + std::to_string(options.threads) + ", loop threads " +
                std::to_string(options.loop_threads) + ", max in flight " + std::to_string(options.max_in_flight));
  }
  if (options.engine_frames < 1) {
    throw Error("engine frames " + std::to_string(options.engine_frames) + " is invalid (expected 1 or more)");
  }
  if (options.live_seconds < 0) {
    throw Error("live latency " + std::to_string(options.live_seconds) + " s is invalid (expected 0 or more)");
  }
  if (options.streams < 0 || options.streams == 1) {
    throw Error("streams " + std::to_string(options.streams) +
                " is invalid (expected 2 or more; 0: no multi-stream run)");
  }
  if (options.feature_rounds < 1) {
    throw Error("feature rounds " + std::to_string(options.feature_rounds) + " is invalid (expected 1 or more)");
  }
  // Checked before anything runs: a missing broker must not fail the bench after minutes.
  const bool wants_mqtt = std::find(options.features.begin(), options.features.end(), "mqtt") != options.features.end();
  if (wants_mqtt && options.mqtt_url.empty() && find_mosquitto().empty()) {
    throw Error(
        "--with mqtt needs a broker: pass --mqtt mqtt://HOST:PORT, or install mosquitto (/usr/sbin/mosquitto) so the "
        "bench starts one");
  }
  for (const auto& feature : options.features) {
    if (feature.rfind("interval", 0) == 0 && !detection_interval_available()) {
      throw Error("--with " + feature +
                  ": this build's pipeline has no detection interval (PipelineSettings::detection_interval)");
    }
  }
  const bool temporary_outputs = options.output_directory.empty();
  std::filesystem::path directory = options.output_directory;
  if (options.output_video) {
    if (temporary_outputs) {
      directory = make_temporary_directory();
    } else {
      check_output_folder(directory, "bench outputs");
      std::filesystem::create_directories(directory);
    }
  }

  const auto run_start = SteadyClock::now();
  json report;
  const json setup = run_child(options, "setup: model, family and frames", [&] { return setup_mode(options); });
  const std::string backend = setup["backend"].get<std::string>();
  report["model"] = {{"path", options.model.path.string()},
                     {"family", setup["family"]},
                     {"family_reason", setup["family_reason"]},
                     {"input_width", setup["input_width"]},
                     {"input_height", setup["input_height"]},
                     {"backend", backend},
                     {"describe", setup["describe"]}};
  report["source"] = {{"uri", options.source.uri},
                      {"description", setup["source_description"]},
                      {"frames", setup["frames"]},
                      {"width", setup["frame_width"]},
                      {"height", setup["frame_height"]},
                      {"fps", setup["source_fps"]},
                      {"stopped_at_memory_budget", setup["stopped_at_memory_budget"]},
                      {"decoded_bytes", setup["decoded_bytes"]}};
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 0) load[0] = load[1] = load[2] = -1;
  report["machine"] = {{"cores", cores},
                       {"hardware_threads", std::thread::hardware_concurrency()},
                       {"load_average_at_start", {load[0], load[1], load[2]}}};
  report["outputs"] = {{"annotated_video_and_jsonl", options.output_video},
                       {"directory", options.output_video && !temporary_outputs ? directory.string() : ""}};
  json modes = json::array();

  // The pipeline's layout: given, else the sweep's best, else `detflow run`'s default.
  std::vector<std::pair<int, int>> layouts;
  if (options.sweep) {
    for (int workers = 1; workers <= cores; ++workers) {
      for (int threads = 1; workers * threads <= cores; ++threads) layouts.emplace_back(workers, threads);
    }
  }
  // `detflow run`'s layout for a file (the frames in memory are read as one).
  Config run_layout;
  run_layout.engine.workers = options.workers;
  run_layout.engine.threads = options.threads;
  run_layout = resolve_engine_layout(run_layout, false, cores);
  int workers = run_layout.engine.workers;
  int threads = run_layout.engine.threads > 0 ? run_layout.engine.threads : std::max(1, cores / workers);

  if (options.engine_only) {
    for (const auto& engine : setup["available_engines"]) {
      const std::string name = engine.get<std::string>();
      if (name.size() < 4 || name.substr(name.size() - 4) != ":cpu") continue;
      try {
        modes.push_back(
            run_child(options, "engine " + name + " alone", [&] { return engine_mode(options, name, 1, cores); }));
      } catch (const std::exception& error) {
        modes.push_back({{"mode", "engine"}, {"engine", name}, {"label", "engine " + name}, {"error", error.what()}});
      }
    }
  }

  json stage_costs =
      run_child(options, "single-thread stage costs", [&] { return stage_cost_mode(options, backend, directory); });
  report["stage_costs"] = stage_costs;
  const double total_cost_ms = stage_costs["total_cpu_ms_per_frame"].get<double>();
  const double limit_fps = total_cost_ms > 0 ? 1000.0 * cores / total_cost_ms : 0.0;
  report["limit_fps"] = limit_fps;

  json ratios = json::object();
  const int loop_threads = options.loop_threads > 0 ? options.loop_threads : cores;
  json loop;
  json opencv_loop;
  if (setup.contains("loop_model")) {
    const LoopModel loop_model = loop_model_from_json(setup["loop_model"]);
    loop = run_child(options, "hand-written loop, " + backend,
                     [&] { return loop_mode(options, loop_model, backend, loop_threads, directory); });
    modes.push_back(strip_detections(loop));
    if (options.opencv_loop && backend != "opencv") {
      try {
        opencv_loop = run_child(options, "hand-written loop, opencv",
                                [&] { return loop_mode(options, loop_model, "opencv", loop_threads, directory); });
        modes.push_back(strip_detections(opencv_loop));
      } catch (const std::exception& error) {
        modes.push_back(
            {{"mode", "loop"}, {"backend", "opencv"}, {"label", "hand-written loop, opencv"}, {"error", error.what()}});
      }
    }
  } else {
    report["loop_unavailable"] = setup["loop_unavailable"];
  }
  ratios["pipeline_over_loop"] = nullptr;  // stays null when the loop cannot run this family

  json sweep = json::array();
  json best;
  for (const auto& [sweep_workers, sweep_threads] : layouts) {
    json result = run_child(options, "pipeline sweep, " + layout_label(sweep_workers, sweep_threads),
                            [&] { return pipeline_mode(options, backend, sweep_workers, sweep_threads, directory); });
    if (best.is_null() || result["fps"].get<double>() > best["fps"].get<double>()) best = result;
    sweep.push_back(result);
  }
  if (!best.is_null() && options.workers == 0 && options.threads == 0) {
    workers = best["workers"].get<int>();
    threads = best["threads"].get<int>();
  }
  json pipeline;
  for (const auto& result : sweep) {
    if (result["workers"] == workers && result["threads"] == threads) pipeline = result;
  }
  if (pipeline.is_null()) {
    pipeline = run_child(options, "detflow pipeline, " + layout_label(workers, threads),
                         [&] { return pipeline_mode(options, backend, workers, threads, directory); });
  }
  json engine_ceiling;
  if (options.engine_only && workers > 1) {
    const std::string name = backend + ":" + options.target;
    try {
      engine_ceiling = run_child(options, "engine " + name + " ceiling, " + layout_label(workers, threads),
                                 [&] { return engine_mode(options, name, workers, threads); });
      modes.push_back(engine_ceiling);
    } catch (const std::exception& error) {
      modes.push_back({{"mode", "engine"}, {"engine", name}, {"label", "engine " + name}, {"error", error.what()}});
    }
  }
  modes.push_back(strip_detections(pipeline));
  report["modes"] = modes;
  json sweep_report = json::array();
  for (const auto& result : sweep) {
    sweep_report.push_back({{"workers", result["workers"]},
                            {"threads", result["threads"]},
                            {"fps", result["fps"]},
                            {"cpu_cores_used", result["cpu_cores_used"]},
                            {"capture_to_output", result["capture_to_output"]},
                            {"memory", result["memory"]}});
  }
  report["sweep"] = sweep_report;
  report["best_config"] = {{"workers", workers},
                           {"threads", threads},
                           {"fps", pipeline["fps"]},
                           {"from_sweep", !best.is_null() && options.workers == 0 && options.threads == 0}};

  json targets = json::array();
  const double pipeline_fps = pipeline["fps"].get<double>();
  if (!loop.is_null()) {
    const double loop_fps = loop["fps"].get<double>();
    ratios["pipeline_over_loop"] = loop_fps > 0 ? pipeline_fps / loop_fps : 0.0;
    targets.push_back(target("pipeline FPS / loop FPS", ratios["pipeline_over_loop"], ">=", 1.4));
    const Agreement agreement =
        compare_detections(detections_from_json(pipeline["detections"]), detections_from_json(loop["detections"]));
    report["agreement"] = to_json(agreement);
    report["agreement"]["candidate"] = "pipeline";
    report["agreement"]["reference"] = "loop " + backend;
    report["agreement"]["matching"] = "greedy by score, same class, IoU >= 0.7 (as tools/detmatch.py)";
    targets.push_back(target("F1 pipeline vs loop", agreement.f1, ">=", 0.99));
    const double loop_added = loop["memory"]["added_kb"].get<double>();
    const double pipeline_added = pipeline["memory"]["added_kb"].get<double>();
    ratios["peak_rss_pipeline_over_loop"] = loop_added > 0 ? pipeline_added / loop_added : 0.0;
    const double loop_peak = loop["memory"]["peak_kb"].get<double>();
    ratios["peak_rss_total_pipeline_over_loop"] =
        loop_peak > 0 ? pipeline["memory"]["peak_kb"].get<double>() / loop_peak : 0.0;
    targets.push_back(target("peak RSS pipeline / loop (above the decoded frames)",
                             ratios["peak_rss_pipeline_over_loop"], "<=", 1.5));
  }
  if (!opencv_loop.is_null() && !loop.is_null() && loop["fps"].get<double>() > 0) {
    ratios["opencv_loop_over_loop"] = opencv_loop["fps"].get<double>() / loop["fps"].get<double>();
    ratios["pipeline_over_opencv_loop"] =
        opencv_loop["fps"].get<double>() > 0 ? pipeline_fps / opencv_loop["fps"].get<double>() : 0.0;
  }
  ratios["pipeline_over_limit"] = limit_fps > 0 ? pipeline_fps / limit_fps : 0.0;
  targets.push_back(target("pipeline FPS / CPU-bound limit", ratios["pipeline_over_limit"], ">=", 0.85));
  if (!options.features.empty()) {
    report["features"] = compare_features(options, backend, workers, threads, setup, directory, ratios, targets);
  }
  if (options.streams >= 2) {
    report["streams"] = compare_streams(options, backend, workers, threads, directory, ratios, targets);
  }
  report["ratios"] = ratios;
  report["targets"] = targets;
  const bool all_met = std::all_of(targets.begin(), targets.end(), [](const json& item) { return item["met"]; });
  report["bottleneck"] = find_bottleneck(stage_costs, pipeline, engine_ceiling, cores);
  report["bottleneck"]["targets_all_met"] = all_met;

  if (options.live_seconds > 0) {
    report["live"] = run_child(options, "live source for " + compact(options.live_seconds) + " s",
                               [&] { return live_mode(options, backend, workers, threads, directory); });
  }
  if (!options.write_config.empty()) {
    const std::string comment = "written by detflow bench: " + compact(std::round(pipeline_fps * 10) / 10) +
                                " FPS with " + layout_label(workers, threads) + " on " + options.source.uri;
    BenchOptions resolved = options;
    resolved.backend = backend;
    std::ofstream file(options.write_config);
    file << bench_config_yaml(resolved, workers, threads, comment);
    file.close();
    if (!file) throw Error("cannot write the configuration to " + options.write_config.string());
    // What `detflow run -c` will do with it: it must load and name the same layout.
    const Config written = load_config(options.write_config);
    if (written.engine.workers != workers || resolved_threads(written) != threads) {
      throw Error("the configuration written to " + options.write_config.string() + " does not load back as " +
                  layout_label(workers, threads));
    }
    report["config_written"] = options.write_config.string();
  }
  report["bench_seconds"] = seconds_since(run_start);
  if (options.output_video && temporary_outputs) {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  }
  return report;
}

}  // namespace detflow::bench
