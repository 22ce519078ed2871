// NMS alone on the same candidates: detflow's non_maximum_suppression against
// cv::dnn::NMSBoxes (class-aware through per-class box offsets, as Ultralytics does).
// Candidates: YOLOv8n's boxes on bus.jpg above 0.25 (typical) and above 0.01 (crowded),
// or the synthetic YOLOv8 tensor's when ../shared is absent.
#include <map>

#include "detflow/bench/tutorial_decode.h"
#include "detflow/post/nms.h"
#include "micro_support.h"

namespace detflow::bench::micro {
namespace {

struct NmsCase {
  std::vector<Detection> candidates;  // score-filtered, unsorted, no NMS
  tutorial::Candidates vectors;       // the same, as the tutorials hold them
  PostprocessOptions options;
  std::string origin;
};

const NmsCase* find_nms_case(float score_threshold, std::string& why) {
  static std::map<float, std::unique_ptr<NmsCase>> cases;
  if (const auto found = cases.find(score_threshold); found != cases.end()) return found->second.get();
  const RealRun* run = real_run("yolov8n.onnx", "bus.jpg", why);
  if (run == nullptr) return nullptr;
  auto nms_case = std::make_unique<NmsCase>();
  nms_case->options = run->setup->postprocess_options();
  PostprocessOptions collect = nms_case->options;
  collect.score_threshold = score_threshold;
  collect.nms = false;
  collect.max_detections = 0;
  run->setup->decoder().decode(run->outputs, run->geometry, collect, nms_case->candidates);
  nms_case->options.score_threshold = score_threshold;
  for (const auto& detection : nms_case->candidates) {
    nms_case->vectors.boxes.emplace_back(detection.x1, detection.y1, detection.width(), detection.height());
    nms_case->vectors.scores.push_back(detection.score);
    nms_case->vectors.class_ids.push_back(detection.class_id);
  }
  nms_case->origin = "yolov8n.onnx on bus.jpg, " + std::to_string(nms_case->candidates.size()) + " candidates";
  return (cases[score_threshold] = std::move(nms_case)).get();
}

void detflow_nms(benchmark::State& state, float score_threshold) {
  std::string why;
  const NmsCase* nms_case = find_nms_case(score_threshold, why);
  if (nms_case == nullptr) {
    state.SkipWithError(why.c_str());
    return;
  }
  std::vector<Detection> work;
  for (auto _ : state) {
    work = nms_case->candidates;  // NMS works in place: start from the same candidates each time
    non_maximum_suppression(work, nms_case->options);
    benchmark::DoNotOptimize(work.data());
  }
  state.counters["kept"] = static_cast<double>(work.size());
  state.SetLabel(nms_case->origin);
}

void opencv_nms(benchmark::State& state, float score_threshold) {
  std::string why;
  const NmsCase* nms_case = find_nms_case(score_threshold, why);
  if (nms_case == nullptr) {
    state.SkipWithError(why.c_str());
    return;
  }
  std::vector<cv::Rect2d> shifted;
  std::vector<int> kept;
  for (auto _ : state) {
    tutorial::class_aware_nms(nms_case->vectors, nms_case->options.score_threshold, nms_case->options.iou_threshold,
                              nms_case->options.max_detections, shifted, kept);
    benchmark::DoNotOptimize(kept.data());
  }
  state.counters["kept"] = static_cast<double>(kept.size());
  state.SetLabel(nms_case->origin);
}

}  // namespace

void register_nms_benchmarks() {
  for (const float threshold : {0.25f, 0.01f}) {
    const std::string name = threshold > 0.1f ? "nms" : "nms_crowded";
    register_pair(
        name, "cv::dnn::NMSBoxes (class offsets) on the same candidates",
        [threshold](benchmark::State& state) { detflow_nms(state, threshold); },
        [threshold](benchmark::State& state) { opencv_nms(state, threshold); });
  }
}

}  // namespace detflow::bench::micro
