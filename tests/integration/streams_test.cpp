// Several cameras in one process (issue 14), in-process with a synthetic YOLOv8 (no ../shared
// needed): an RTSP camera served from this test process on 127.0.0.1 reboots mid-run while
// two live test-pattern cameras run beside it in the same Pipeline. The others' frame rates
// must not drop during the outage, and the RTSP stream must recover when its server returns.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "detflow/pipeline/detector.h"
#include "detflow/pipeline/pipeline.h"
#include "detflow/pipeline/source.h"
#include "model_builder.h"
#include "shared_data.h"
#include "source_test_servers.h"

namespace detflow {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

// Records when each frame of its stream reached the outputs. Thread-safe to read while the
// pipeline runs.
class ArrivalSink final : public Sink {
 public:
  std::string name() const override { return "arrivals"; }
  void open(const SourceInfo&) override {}
  bool consume(const FrameResult& result) override {
    if (!result.frame) return true;
    std::lock_guard lock(mutex_);
    indices_.push_back(result.frame->index);
    arrivals_.push_back(SteadyClock::now());
    return true;
  }
  void finish() override {}

  // Frames that arrived in [from, to).
  int frames_between(SteadyClock::time_point from, SteadyClock::time_point to) const {
    std::lock_guard lock(mutex_);
    return static_cast<int>(std::count_if(arrivals_.begin(), arrivals_.end(),
                                          [&](SteadyClock::time_point when) { return when >= from && when < to; }));
  }
  bool ordered() const {
    std::lock_guard lock(mutex_);
    return std::is_sorted(indices_.begin(), indices_.end()) &&
           std::adjacent_find(indices_.begin(), indices_.end()) == indices_.end();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::int64_t> indices_;
  std::vector<SteadyClock::time_point> arrivals_;
};

#if DETFLOW_HAVE_RTSP_SERVER

TEST(StreamsInOneProcess, ARebootingRtspCameraLeavesTheOtherStreamsRunning) {
  const fs::path folder = test::temporary_directory("detflow_streams");
  const fs::path model = test::write_yolov8_model(folder / "model.onnx");
  ModelSettings model_settings;
  model_settings.path = model;
  EngineOptions engine_options;
  engine_options.intra_op_threads = 1;
  DetectorSetup detector(model_settings, engine_options);

  auto camera = std::make_unique<test::LoopbackRtspServer>(test::live_rtsp_launch());
  const int port = camera->port();
  SourceSettings rtsp;
  rtsp.uri = camera->url();
  rtsp.reconnect_initial = 0.25;
  rtsp.reconnect_max = 0.5;
  rtsp.stall_timeout = 1.0;

  std::vector<StreamSetup> streams;
  std::vector<ArrivalSink*> sinks;
  const auto add_stream = [&](const std::string& name, const SourceSettings& settings) {
    StreamSetup& stream = streams.emplace_back();
    stream.name = name;
    stream.source = open_source(settings);
    auto sink = std::make_unique<ArrivalSink>();
    sinks.push_back(sink.get());
    stream.sinks.push_back(std::move(sink));
  };
  add_stream("door", rtsp);
  for (const std::string name : {"yard", "gate"}) {
    add_stream(name, {.uri = "gst:videotestsrc is-live=true pattern=ball ! "
                             "video/x-raw,width=320,height=240,framerate=15/1"});
  }
  PipelineSettings settings;
  settings.workers = 1;
  settings.progress = false;
  Pipeline pipeline(detector, std::move(streams), settings);
  ASSERT_EQ(pipeline.stream_count(), 3u);
  RunSummary summary;
  std::thread runner([&] { summary = pipeline.run(); });

  const auto started = SteadyClock::now();
  while (sinks[0]->frames_between(started, SteadyClock::now()) < 10 &&
         SteadyClock::now() - started < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(sinks[0]->frames_between(started, SteadyClock::now()), 10) << "the RTSP camera never started";
  std::this_thread::sleep_for(std::chrono::seconds(3));

  const auto outage_start = SteadyClock::now();
  camera.reset();  // the camera reboots: connections drop, the port closes
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const auto outage_end = SteadyClock::now();
  camera = std::make_unique<test::LoopbackRtspServer>(test::live_rtsp_launch(), port);
  const auto deadline = SteadyClock::now() + std::chrono::seconds(15);
  while (sinks[0]->frames_between(outage_end, SteadyClock::now()) < 10 && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int door_after = sinks[0]->frames_between(outage_end, SteadyClock::now());
  pipeline.request_stop();
  runner.join();

  EXPECT_FALSE(summary.failed) << summary.failure;
  EXPECT_GE(door_after, 10) << "the RTSP stream did not recover within 15 s of its server's return";
  EXPECT_LE(sinks[0]->frames_between(outage_start + std::chrono::milliseconds(500), outage_end), 2)
      << "the RTSP camera was down";
  for (std::size_t stream = 1; stream < sinks.size(); ++stream) {
    const double before = sinks[stream]->frames_between(outage_start - std::chrono::seconds(3), outage_start) / 3.0;
    const double during =
        sinks[stream]->frames_between(outage_start, outage_end) / Seconds(outage_end - outage_start).count();
    std::printf("%s: %.1f fps before the RTSP outage, %.1f fps during it\n", pipeline.stream_name(stream).c_str(),
                before, during);
    EXPECT_GT(before, 5.0) << pipeline.stream_name(stream);
    EXPECT_GE(during, 0.9 * before) << pipeline.stream_name(stream) << " slowed down while another camera was away";
    EXPECT_TRUE(sinks[stream]->ordered()) << pipeline.stream_name(stream);
  }
  EXPECT_TRUE(sinks[0]->ordered());
  ASSERT_EQ(summary.streams.size(), 3u);
  EXPECT_EQ(summary.streams[0].name, "door");
  EXPECT_GE(pipeline.source_counters(0).reconnects, 1);
  EXPECT_EQ(summary.statistics.frames_processed, summary.streams[0].statistics.frames_processed +
                                                     summary.streams[1].statistics.frames_processed +
                                                     summary.streams[2].statistics.frames_processed);
}

#else

TEST(StreamsInOneProcess, ARebootingRtspCameraLeavesTheOtherStreamsRunning) {
  GTEST_SKIP() << "gst-rtsp-server (libgstrtspserver-1.0-dev) was not found at configure time";
}

#endif

}  // namespace
}  // namespace detflow
