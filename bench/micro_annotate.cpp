// Annotation of one 768x576 frame: detflow's draw_detections against the typical
// cv::rectangle + cv::getTextSize + filled label box + cv::putText loop. Both draw on a
// fresh copy of the frame each iteration (the copy is part of both). Detections: YOLOX-nano
// on the frame when ../shared is present, else 15 synthetic pedestrians.
#include <cstdio>

#include <opencv2/imgproc.hpp>

#include "detflow/pipeline/annotate.h"
#include "detflow/post/labels.h"
#include "micro_support.h"

namespace detflow::bench::micro {
namespace {

const std::vector<Detection>& frame_detections() {
  static const std::vector<Detection> detections = [] {
    std::vector<Detection> found;
    std::string why;
    if (const auto model = shared_file("models/yolox_nano.onnx")) {
      try {
        ModelSettings settings;
        settings.path = *model;
        EngineOptions engine;
        engine.intra_op_threads = 1;
        DetectorSetup setup(settings, engine);
        Preprocessor preprocessor(setup.preprocess_spec());
        Tensor input = setup.make_input_tensor();
        const Geometry geometry = preprocessor.run(test_frame(), input);
        std::vector<Tensor> outputs;
        setup.make_engine()->run(std::span<const Tensor>(&input, 1), outputs);
        setup.postprocess(outputs, geometry, found);
      } catch (const std::exception&) {
        found.clear();
      }
    }
    if (found.empty()) {
      cv::RNG random(3);
      for (int index = 0; index < 15; ++index) {
        Detection detection;
        detection.x1 = random.uniform(0.f, 700.f);
        detection.y1 = random.uniform(0.f, 450.f);
        detection.x2 = detection.x1 + random.uniform(20.f, 60.f);
        detection.y2 = detection.y1 + random.uniform(50.f, 120.f);
        detection.score = random.uniform(0.3f, 0.95f);
        detection.class_id = 0;
        detection.label = "person";
        found.push_back(detection);
      }
    }
    return found;
  }();
  return detections;
}

void detflow_annotate(benchmark::State& state) {
  const cv::Mat& frame = test_frame();
  const auto& detections = frame_detections();
  cv::Mat canvas;
  for (auto _ : state) {
    frame.copyTo(canvas);
    draw_detections(canvas, detections);
    benchmark::DoNotOptimize(canvas.data);
  }
  state.counters["detections"] = static_cast<double>(detections.size());
}

void opencv_annotate(benchmark::State& state) {
  const cv::Mat& frame = test_frame();
  const auto& detections = frame_detections();
  cv::Mat canvas;
  for (auto _ : state) {
    frame.copyTo(canvas);
    for (const auto& detection : detections) {
      const cv::Scalar colour = class_colour(detection.class_id);
      const cv::Point top_left(cvRound(detection.x1), cvRound(detection.y1));
      cv::rectangle(canvas, top_left, cv::Point(cvRound(detection.x2), cvRound(detection.y2)), colour, 2);
      char score[16];
      std::snprintf(score, sizeof score, " %.2f", detection.score);
      const std::string text = detection.label + score;
      int baseline = 0;
      const cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, 0.5, 1, &baseline);
      const cv::Point origin(top_left.x, std::max(top_left.y, size.height + baseline));
      cv::rectangle(canvas, origin - cv::Point(0, size.height + baseline), origin + cv::Point(size.width, 0), colour,
                    cv::FILLED);
      cv::putText(canvas, text, origin - cv::Point(0, baseline), cv::FONT_HERSHEY_SIMPLEX, 0.5,
                  cv::Scalar(255, 255, 255), 1);
    }
    benchmark::DoNotOptimize(canvas.data);
  }
  state.counters["detections"] = static_cast<double>(detections.size());
}

}  // namespace

void register_annotate_benchmarks() {
  register_pair("annotate", "a typical cv::rectangle/getTextSize/putText loop (copy included in both)",
                detflow_annotate, opencv_annotate);
}

}  // namespace detflow::bench::micro
