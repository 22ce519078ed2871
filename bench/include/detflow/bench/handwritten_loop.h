// detflow/bench/handwritten_loop.h — the baseline: what a user writes without detflow.
//
// One sequential loop, written the way the ONNX Runtime and OpenCV DNN tutorials do it:
//
//   for each frame:  letterbox (cv::resize + cv::copyMakeBorder + cv::dnn::blobFromImage)
//                    -> Ort::Session::Run (or cv::dnn::Net::forward)
//                    -> a plain loop over every anchor and class, boxes into vectors
//                    -> cv::dnn::NMSBoxes (class-aware by offsetting boxes per class)
//                    -> cv::rectangle / cv::putText on the frame -> cv::VideoWriter (MP4)
//                    -> one JSON line per frame
//
// It is deliberately not optimised beyond what those tutorials do, but it solves exactly
// the problem detflow solves (same family conventions, thresholds and input size, taken
// from detflow's own decisions through loop_model_from), so its detections can be compared
// with the pipeline's and its speed is a fair baseline.
//
// Families implemented the tutorial way: yolox (grid decode), yolov8 (channel-major
// [1, 4+C, N], transposed first, as Ultralytics' C++ example does), yolov5 (decoded
// [1, N, 5+C]) and yolov10 (end-to-end [1, K, 6], no NMS).
//
// HandwrittenLoop owns its Ort::Session or cv::dnn::Net, its writer and its scratch
// images. Not thread-safe: one loop per thread. Units: source pixels for boxes,
// milliseconds for stage times.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <opencv2/core.hpp>

#include "detflow/bench/detection_agreement.h"
#include "detflow/pipeline/detector.h"
#include "detflow/pipeline/statistics.h"

namespace detflow::bench {

// What a tutorial hard-codes about its model.
struct LoopModel {
  std::filesystem::path path;
  std::string family;  // "yolox", "yolov8", "yolov5" or "yolov10"
  int input_width = 640;
  int input_height = 640;
  bool letterbox_centred = true;  // false: image at the top-left, padding right and bottom (YOLOX)
  bool swap_red_blue = true;      // the model takes RGB
  double pixel_scale = 1.0 / 255.0;
  double pad_value = 114.0;
  bool half_precision_input = false;  // the model takes float16 (blob converted after blobFromImage)
  float score_threshold = 0.25f;
  float iou_threshold = 0.45f;
  int max_detections = 300;
  bool nms = true;
  std::vector<std::string> class_names;
};

// The loop's model description from detflow's decisions: the family the registry chose,
// its preprocessing and its thresholds. Throws detflow::Error for a family the loop does not
// implement, or preprocessing cv::dnn::blobFromImage cannot express (a plain resize, a
// per-channel std, NHWC, uint8 input).
LoopModel loop_model_from(const DetectorSetup& detector);

nlohmann::json to_json(const LoopModel& model);
LoopModel loop_model_from_json(const nlohmann::json& json);

struct LoopSettings {
  std::string backend = "onnxruntime";  // "onnxruntime" (Ort::Session) or "opencv" (cv::dnn::Net, CPU)
  int threads = 0;                      // intra-op threads (ONNX Runtime) or cv::setNumThreads; 0: library default
  std::filesystem::path video_output;   // annotated MP4 (cv::VideoWriter, 'mp4v'); empty: no drawing, no video
  std::filesystem::path json_output;    // JSON Lines, one line per frame; empty: none
  double video_fps = 25.0;              // rate written into the video
};

struct LoopResult {
  std::int64_t frames = 0;
  double elapsed_s = 0;  // first frame in to last output closed (the writer's release included)
  DetectionsPerFrame detections;
  // "preprocess", "inference", "postprocess", "output" (draw + write video + JSON line).
  std::map<std::string, LatencySummary> stages;
  LatencySummary capture_to_output;  // per frame, from taking the frame to its output written
};

class HandwrittenLoop {
 public:
  // Loads the model (Ort::Session or cv::dnn::readNetFromONNX). Throws detflow::Error when
  // the backend is unknown or unavailable in this build, or the model cannot be loaded.
  HandwrittenLoop(const LoopModel& model, const LoopSettings& settings);
  ~HandwrittenLoop();
  HandwrittenLoop(const HandwrittenLoop&) = delete;
  HandwrittenLoop& operator=(const HandwrittenLoop&) = delete;

  // Processes the frames in order and closes the outputs. The frames are only read (the
  // loop draws on its own copy, as a capture loop draws on the frame it just read).
  // Throws detflow::Error when an output cannot be opened; std::runtime_error when the
  // model's outputs do not have the family's layout.
  LoopResult run(const std::vector<cv::Mat>& frames);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True when this build can run the loop on ONNX Runtime.
bool handwritten_loop_has_onnxruntime();

}  // namespace detflow::bench
