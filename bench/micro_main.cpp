// detflow_microbench: detflow's hot paths against the usual OpenCV way, side by side in one
// run, single thread (cv::setNumThreads(1), one intra-op thread), then one ratio line per
// pair. Google Benchmark flags work as usual (--benchmark_filter=letterbox, ...).
#include <iostream>

#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>

#include "micro_support.h"

int main(int argc, char** argv) {
  using namespace detflow::bench::micro;
  cv::setNumThreads(1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_letterbox_benchmarks();
  register_decode_benchmarks();
  register_nms_benchmarks();
  register_annotate_benchmarks();
  register_engine_benchmarks();
  register_tracking_benchmarks();
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_ratios(std::cout);
  benchmark::Shutdown();
  return 0;
}
