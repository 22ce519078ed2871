// Live sources keep latency bounded: a GStreamer test source at 30 fps feeding a detector
// slower than the source. Capture-to-output p99 must stay under 3x the inference latency
// for the whole run, resident memory must not grow after warm-up, and the frames that
// could not be processed in time must be reported as dropped.
#include <chrono>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "detflow/pipeline/pipeline.h"
#include "detflow/pipeline/sink.h"
#include "detflow/pipeline/source.h"
#include "sanitizers.h"
#include "shared_data.h"

namespace detflow {
namespace {

// Current resident set size in KiB (VmRSS), 0 when /proc is unavailable.
long resident_kb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      long value = 0;
      status >> value;
      return value;
    }
    std::getline(status, key);
  }
  return 0;
}

// Samples the resident set size once per processed frame, with the capture-to-output time.
class MemorySamplingSink final : public Sink {
 public:
  struct Sample {
    double seconds = 0;
    long resident_kb = 0;
  };
  explicit MemorySamplingSink(std::vector<Sample>& samples) : samples_(samples) {}
  std::string name() const override { return "memory sampler"; }
  void open(const SourceInfo&) override { start_ = Clock::now(); }
  bool consume(const FrameResult&) override {
    samples_.push_back({std::chrono::duration<double>(Clock::now() - start_).count(), resident_kb()});
    return true;
  }
  void finish() override {}

 private:
  std::vector<Sample>& samples_;
  Clock::time_point start_;
};

TEST(LiveLatency, StaysBoundedWhenInferenceIsSlowerThanTheSource) {
  DETFLOW_SHARED_FILE(model_file, "models/yolov8n.onnx");
  ModelSettings settings;
  settings.path = model_file;
  EngineOptions engine_options;
  engine_options.intra_op_threads = 1;  // one core: about 3-5 frame times of the 30 fps source
  DetectorSetup detector(settings, engine_options);

  SourceSettings source_settings;
  source_settings.uri = "gst:videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=30/1";
  auto source = open_source(source_settings);
  ASSERT_TRUE(source->info().live);

  std::vector<MemorySamplingSink::Sample> samples;
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::make_unique<MemorySamplingSink>(samples));
  PipelineSettings pipeline_settings;
  pipeline_settings.workers = 1;
  pipeline_settings.max_frames = 360;  // 12 s of the 30 fps source
  pipeline_settings.progress = false;
  Pipeline pipeline(detector, std::move(source), std::move(sinks), pipeline_settings);
  const RunSummary summary = pipeline.run();
  ASSERT_FALSE(summary.failed) << summary.failure;

  const Statistics& statistics = summary.statistics;
  const LatencySummary inference = statistics.stages.at("inference");
  std::cout << statistics.to_text() << "\n";
  ASSERT_GT(statistics.frames_processed, 10);
  // Slower than the source: 33 ms per frame at 30 fps.
  ASSERT_GT(inference.p50_ms, 1000.0 / 30.0) << "inference is faster than the source; the test proves nothing";
  EXPECT_GT(statistics.frames_dropped, 0) << "slow inference on a live source must drop frames";
  EXPECT_EQ(statistics.frames_read, statistics.frames_processed + statistics.frames_dropped + statistics.frames_failed);
  EXPECT_LT(statistics.capture_to_output.p99_ms, 3.0 * inference.p50_ms)
      << "capture-to-output p99 " << statistics.capture_to_output.p99_ms << " ms, inference p50 " << inference.p50_ms
      << " ms";

  // After warm-up (the first third of the run) memory stays flat: nothing queues up.
  if (test::running_under_address_sanitizer) GTEST_SKIP() << test::resident_memory_skip_reason;
  ASSERT_GE(samples.size(), 9u);
  const auto warm = samples[samples.size() / 3].resident_kb;
  long highest_after_warm_up = 0;
  for (std::size_t index = samples.size() / 3; index < samples.size(); ++index) {
    highest_after_warm_up = std::max(highest_after_warm_up, samples[index].resident_kb);
  }
  EXPECT_LT(highest_after_warm_up - warm, 16 * 1024)
      << "resident memory grew from " << warm << " KiB to " << highest_after_warm_up << " KiB after warm-up";
}

}  // namespace
}  // namespace detflow
