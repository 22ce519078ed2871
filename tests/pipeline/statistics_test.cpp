// Statistics: latency percentiles, thread-safe recording, reports and progress text.
#include "detflow/pipeline/statistics.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "progress.h"

namespace detflow {
namespace {

TEST(LatencyRecorder, PercentilesOfAUniformSpreadAreWithinTheBucketResolution) {
  LatencyRecorder recorder;
  for (int sample = 1; sample <= 1000; ++sample) recorder.record(static_cast<double>(sample));
  const LatencySummary summary = recorder.summary();
  EXPECT_EQ(summary.count, 1000);
  EXPECT_NEAR(summary.mean_ms, 500.5, 1e-6);
  EXPECT_NEAR(summary.p50_ms, 500.0, 500.0 * 0.02);
  EXPECT_NEAR(summary.p95_ms, 950.0, 950.0 * 0.02);
  EXPECT_NEAR(summary.p99_ms, 990.0, 990.0 * 0.02);
  EXPECT_DOUBLE_EQ(summary.max_ms, 1000.0);
}

TEST(LatencyRecorder, EmptyAndOutOfRangeSamples) {
  LatencyRecorder recorder;
  EXPECT_EQ(recorder.summary().count, 0);
  EXPECT_EQ(recorder.summary().p99_ms, 0.0);
  recorder.record(-5.0);   // clock hiccup: counted as 0
  recorder.record(5.0e7);  // beyond the histogram: clamped, the exact max is kept
  const LatencySummary summary = recorder.summary();
  EXPECT_EQ(summary.count, 2);
  EXPECT_DOUBLE_EQ(summary.max_ms, 5.0e7);
  EXPECT_LE(summary.p50_ms, LatencyRecorder::kMinimumMs * 1.1);
}

TEST(LatencyRecorder, ConcurrentRecordingLosesNothing) {
  LatencyRecorder recorder;
  std::vector<std::thread> threads;
  for (int thread = 0; thread < 4; ++thread) {
    threads.emplace_back([&recorder, thread] {
      for (int sample = 0; sample < 20000; ++sample) recorder.record(1.0 + thread);
    });
  }
  for (auto& thread : threads) thread.join();
  const LatencySummary summary = recorder.summary();
  EXPECT_EQ(summary.count, 80000);
  EXPECT_NEAR(summary.mean_ms, 2.5, 1e-9);
  EXPECT_DOUBLE_EQ(summary.max_ms, 4.0);
}

TEST(Statistics, SnapshotReportsCountersRatesAndMemory) {
  StatisticsRecorder recorder;
  recorder.frames_read = 12;
  recorder.frames_processed = 10;
  recorder.frames_failed = 1;
  recorder.frames_dropped = 1;
  recorder.detections = 42;
  recorder.inference.record(20.0);
  recorder.capture_to_output.record(55.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  recorder.stop_clock();
  const Statistics first = recorder.snapshot();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const Statistics second = recorder.snapshot();
  EXPECT_DOUBLE_EQ(first.elapsed_s, second.elapsed_s) << "the clock is frozen after stop_clock()";
  EXPECT_GT(first.elapsed_s, 0.015);
  EXPECT_NEAR(first.fps, 10.0 / first.elapsed_s, 1e-9);
  EXPECT_GT(first.peak_resident_kb, 0);
  EXPECT_EQ(first.stages.at("inference").count, 1);

  const nlohmann::json json = first.to_json();
  EXPECT_EQ(json.at("frames_processed"), 10);
  EXPECT_EQ(json.at("detections"), 42);
  EXPECT_EQ(json.at("stages").at("inference").at("count"), 1);
  EXPECT_NEAR(json.at("capture_to_output").at("max_ms").get<double>(), 55.0, 1e-9);

  const std::string text = first.to_text();
  EXPECT_NE(text.find("12 read, 10 processed, 1 dropped, 1 failed"), std::string::npos) << text;
  EXPECT_NE(text.find("inference"), std::string::npos);
  EXPECT_NE(text.find("capture-to-output"), std::string::npos);
  EXPECT_NE(first.to_line().find("p95 latency"), std::string::npos);
}

TEST(StatisticsReport, CountsOfLinesAndZonesWhenAnalyticsAreOn) {
  Statistics statistics;
  statistics.frames_processed = 10;
  EXPECT_FALSE(statistics.to_json().contains("counts")) << "no lines or zones, no counts";
  EXPECT_EQ(statistics.to_text().find("line "), std::string::npos);

  track::CountsSnapshot counts = track::CountsSnapshot::with_names({"door", "gate"}, {"bench"});
  counts.lines[0].classes.push_back({0, "person", 3, 1});
  counts.lines[0].classes.push_back({2, "car", 0, 2});
  counts.zones[0].classes.push_back({0, "person", 1, 4});
  statistics.counts = counts;

  const nlohmann::json json = statistics.to_json();
  ASSERT_TRUE(json.contains("counts")) << json.dump();
  const auto& door = json.at("counts").at("lines").at(0);
  EXPECT_EQ(door.at("name"), "door");
  EXPECT_EQ(door.at("in"), 3);
  EXPECT_EQ(door.at("out"), 3);
  EXPECT_EQ(door.at("classes").at(1).at("label"), "car");
  EXPECT_EQ(door.at("classes").at(1).at("out"), 2);
  EXPECT_EQ(json.at("counts").at("lines").at(1).at("in"), 0) << "a line nobody crossed reports zero";
  const auto& bench = json.at("counts").at("zones").at(0);
  EXPECT_EQ(bench.at("occupancy"), 1);
  EXPECT_EQ(bench.at("entered"), 4);

  const std::string text = statistics.to_text();
  EXPECT_NE(text.find("line door: in 3, out 3 (person: in 3, out 1; car: in 0, out 2)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("line gate: in 0, out 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("zone bench: occupancy 1, entered 4 (person: occupancy 1, entered 4)\n"), std::string::npos)
      << text;
  // The periodic line (--stats-interval) carries them too.
  const std::string line = statistics.to_line();
  EXPECT_NE(line.find(", line door in 3 out 3, line gate in 0 out 0, zone bench now 1 entered 4"), std::string::npos)
      << line;
}

TEST(StatisticsReport, FramesTheDetectorSkippedAreReported) {
  Statistics statistics;
  statistics.frames_processed = 10;
  statistics.frames_detected = 10;
  EXPECT_EQ(statistics.to_text().find("detector ran"), std::string::npos);
  statistics.frames_detected = 5;
  EXPECT_NE(statistics.to_text().find("(detector ran on 5 of 10 frames)"), std::string::npos);
  EXPECT_EQ(statistics.to_json().at("frames_detected"), 5);
}

TEST(Progress, BarLineAndEstimate) {
  Statistics statistics;
  statistics.frames_total = 200;
  statistics.frames_processed = 50;
  statistics.elapsed_s = 5.0;
  statistics.fps = 10.0;
  EXPECT_NEAR(detail::estimated_seconds_left(statistics), 15.0, 1e-9);
  const std::string bar = detail::format_progress_bar(statistics, 80);
  EXPECT_EQ(bar.front(), '[');
  EXPECT_NE(bar.find("50/200"), std::string::npos) << bar;
  EXPECT_NE(bar.find("25 %"), std::string::npos) << bar;
  EXPECT_NE(bar.find("ETA 0:15"), std::string::npos) << bar;
  EXPECT_LE(bar.size(), 80u);
  const std::string line = detail::format_progress_line(statistics);
  EXPECT_NE(line.find("frames 50/200 (25 %)"), std::string::npos) << line;

  statistics.frames_total = -1;  // live: no bar, no ETA
  EXPECT_LT(detail::estimated_seconds_left(statistics), 0);
  EXPECT_EQ(detail::format_progress_bar(statistics, 80).find('['), std::string::npos);
}

TEST(Progress, ReporterCallsTheStatisticsHookPeriodically) {
  StatisticsRecorder recorder;
  PipelineSettings settings;
  settings.progress = true;
  settings.progress_interval_s = 0.1;
  settings.stats_interval_s = 0.1;
  std::atomic<int> calls{0};
  settings.on_statistics = [&](const Statistics&) { ++calls; };
  std::FILE* sink = std::tmpfile();
  ASSERT_NE(sink, nullptr);
  {
    detail::ProgressReporter reporter(recorder, settings, sink, /*terminal=*/false);
    std::this_thread::sleep_for(std::chrono::milliseconds(450));
  }
  EXPECT_GE(calls.load(), 2);
  std::rewind(sink);
  char buffer[256] = {};
  ASSERT_NE(std::fgets(buffer, sizeof buffer, sink), nullptr);
  EXPECT_EQ(std::string(buffer).rfind("frames 0", 0), 0u) << buffer;
  std::fclose(sink);
}

}  // namespace
}  // namespace detflow
