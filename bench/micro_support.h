// micro_support.h — what the microbenchmarks share: locating ../shared, test images, real
// model outputs computed once, and the detflow-vs-baseline pairs whose ratios main() prints.
//
// Every benchmark is registered as a pair "CASE:detflow" and "CASE:baseline" through
// register_pair(); RatioReporter remembers each one's CPU time per iteration (the median of
// repetitions when there are several) and print_ratios() writes one line per pair.
// Single-threaded use only (the benchmark runner's thread).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>

#include "detflow/pipeline/detector.h"
#include "detflow/tensor.h"

namespace detflow::bench::micro {

// ../shared/<relative> (DETFLOW_SHARED_DIR overrides the folder), when it exists.
std::optional<std::filesystem::path> shared_file(const std::string& relative);

// A 768x576 BGR frame: vtest.avi's first frame when ../shared is present, else a
// deterministic synthetic scene of the same size.
const cv::Mat& test_frame();

// A real model run once on a real image with ONNX Runtime (one thread): the setup (decoder,
// thresholds), its raw outputs and the image's geometry. nullptr when the model or image is
// missing or cannot run here; `why` then says why.
struct RealRun {
  std::unique_ptr<DetectorSetup> setup;
  std::vector<Tensor> outputs;
  Geometry geometry;
  cv::Mat image;
};
const RealRun* real_run(const std::string& model_file, const std::string& image_file, std::string& why);

using BenchmarkBody = std::function<void(benchmark::State&)>;

// Registers "name:detflow" and "name:baseline"; `baseline_description` names what the
// baseline is in the ratio line ("cv::resize+copyMakeBorder+blobFromImage").
// repetitions > 1 reports medians (for pairs whose difference is small against noise).
void register_pair(const std::string& name, const std::string& baseline_description, BenchmarkBody detflow,
                   BenchmarkBody baseline, int repetitions = 1);

class RatioReporter final : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override;
};

// One line per pair that ran: "ratio letterbox: detflow is 2.7x faster than ...".
void print_ratios(std::ostream& out);

void register_letterbox_benchmarks();
void register_decode_benchmarks();
void register_nms_benchmarks();
void register_annotate_benchmarks();
void register_engine_benchmarks();
void register_tracking_benchmarks();

}  // namespace detflow::bench::micro
