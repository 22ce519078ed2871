#include "detflow/bench/handwritten_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#ifdef DETFLOW_BENCH_HAVE_ONNXRUNTIME
#include <onnxruntime_cxx_api.h>
#endif

#include "detflow/bench/bench_report.h"
#include "detflow/bench/tutorial_decode.h"
#include "detflow/error.h"

namespace detflow::bench {
namespace {

using tutorial::Candidates;
using tutorial::OutputView;
using Milliseconds = std::chrono::duration<double, std::milli>;

class InferenceRunner {
 public:
  virtual ~InferenceRunner() = default;
  virtual void run(const cv::Mat& blob, std::vector<OutputView>& outputs) = 0;
};

#ifdef DETFLOW_BENCH_HAVE_ONNXRUNTIME
// The ONNX Runtime C++ tutorial: one session, input tensor wrapped around the blob each
// frame, outputs allocated by the runtime and returned as a vector of values.
class OnnxRuntimeRunner final : public InferenceRunner {
 public:
  OnnxRuntimeRunner(const LoopModel& model, int threads)
      : environment_(ORT_LOGGING_LEVEL_WARNING, "handwritten-loop"),
        memory_info_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)),
        half_input_(model.half_precision_input) {
    Ort::SessionOptions options;
    if (threads > 0) options.SetIntraOpNumThreads(threads);
    options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    try {
      session_ = Ort::Session(environment_, model.path.c_str(), options);
    } catch (const Ort::Exception& error) {
      throw Error("hand-written loop: ONNX Runtime cannot load " + model.path.string() + ": " + error.what());
    }
    Ort::AllocatorWithDefaultOptions allocator;
    input_name_ = session_.GetInputNameAllocated(0, allocator).get();
    for (std::size_t index = 0; index < session_.GetOutputCount(); ++index) {
      output_names_.push_back(session_.GetOutputNameAllocated(index, allocator).get());
    }
    for (const auto& name : output_names_) output_name_pointers_.push_back(name.c_str());
    input_shape_ = {1, 3, model.input_height, model.input_width};
  }

  void run(const cv::Mat& blob, std::vector<OutputView>& outputs) override {
    const char* input_names[] = {input_name_.c_str()};
    Ort::Value input{nullptr};
    if (half_input_) {
      blob.convertTo(half_blob_, CV_16F);
      input = Ort::Value::CreateTensor(memory_info_, half_blob_.data, half_blob_.total() * half_blob_.elemSize(),
                                       input_shape_.data(), input_shape_.size(), ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16);
    } else {
      input = Ort::Value::CreateTensor<float>(memory_info_, const_cast<float*>(blob.ptr<float>()), blob.total(),
                                              input_shape_.data(), input_shape_.size());
    }
    results_ = session_.Run(Ort::RunOptions{nullptr}, input_names, &input, 1, output_name_pointers_.data(),
                            output_name_pointers_.size());
    outputs.resize(results_.size());
    converted_.resize(results_.size());
    for (std::size_t index = 0; index < results_.size(); ++index) {
      auto info = results_[index].GetTensorTypeAndShapeInfo();
      outputs[index].shape = info.GetShape();
      if (info.GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
        const cv::Mat half(1, static_cast<int>(info.GetElementCount()), CV_16F,
                           results_[index].GetTensorMutableData<Ort::Float16_t>());
        half.convertTo(converted_[index], CV_32F);
        outputs[index].data = converted_[index].ptr<float>();
      } else {
        outputs[index].data = results_[index].GetTensorData<float>();
      }
    }
  }

 private:
  Ort::Env environment_;
  Ort::Session session_{nullptr};
  Ort::MemoryInfo memory_info_;
  bool half_input_ = false;
  std::string input_name_;
  std::vector<std::string> output_names_;
  std::vector<const char*> output_name_pointers_;
  std::vector<std::int64_t> input_shape_;
  std::vector<Ort::Value> results_;
  std::vector<cv::Mat> converted_;
  cv::Mat half_blob_;
};
#endif

// The OpenCV DNN tutorial: readNetFromONNX, setInput, forward over the unconnected outputs.
class OpenCvRunner final : public InferenceRunner {
 public:
  OpenCvRunner(const LoopModel& model, int threads) {
    if (threads > 0) cv::setNumThreads(threads);
    try {
      net_ = cv::dnn::readNetFromONNX(model.path.string());
    } catch (const cv::Exception& error) {
      throw Error("hand-written loop: OpenCV DNN cannot load " + model.path.string() + ": " + error.what());
    }
    net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    output_names_ = net_.getUnconnectedOutLayersNames();
  }

  void run(const cv::Mat& blob, std::vector<OutputView>& outputs) override {
    net_.setInput(blob);
    net_.forward(results_, output_names_);
    outputs.resize(results_.size());
    for (std::size_t index = 0; index < results_.size(); ++index) {
      if (results_[index].depth() != CV_32F) results_[index].convertTo(results_[index], CV_32F);
      outputs[index].data = results_[index].ptr<float>();
      outputs[index].shape.assign(results_[index].size.p, results_[index].size.p + results_[index].dims);
    }
  }

 private:
  cv::dnn::Net net_;
  std::vector<std::string> output_names_;
  std::vector<cv::Mat> results_;
};

std::string class_name(const LoopModel& model, int class_id) {
  return class_id >= 0 && static_cast<std::size_t>(class_id) < model.class_names.size()
             ? model.class_names[static_cast<std::size_t>(class_id)]
             : "class_" + std::to_string(class_id);
}

// "person 0.87", as detflow's annotation writes it.
std::string caption(const LoopModel& model, int class_id, float score) {
  char text[32];
  std::snprintf(text, sizeof text, " %.2f", score);
  return class_name(model, class_id) + text;
}

const std::vector<cv::Scalar>& colours() {
  static const std::vector<cv::Scalar> palette{{56, 56, 255},  {151, 157, 255}, {31, 112, 255}, {29, 178, 255},
                                               {49, 210, 207}, {10, 249, 72},   {23, 204, 146}, {134, 219, 61},
                                               {52, 147, 26},  {187, 212, 0},   {168, 153, 44}, {255, 194, 0},
                                               {147, 69, 52},  {255, 115, 100}, {236, 24, 0},   {255, 56, 132}};
  return palette;
}

}  // namespace

bool handwritten_loop_has_onnxruntime() {
#ifdef DETFLOW_BENCH_HAVE_ONNXRUNTIME
  return true;
#else
  return false;
#endif
}

LoopModel loop_model_from(const DetectorSetup& detector) {
  LoopModel model;
  model.path = detector.model().path;
  model.family = std::string(detector.family().family->name);
  const std::vector<std::string> implemented{"yolox", "yolov8", "yolov5", "yolov10"};
  if (std::find(implemented.begin(), implemented.end(), model.family) == implemented.end()) {
    throw Error("the hand-written loop has no decode for family " + model.family +
                " (it implements yolox, yolov8, yolov5 and yolov10)");
  }
  const PreprocessSpec& spec = detector.preprocess_spec();
  if (spec.resize == ResizeMode::stretch) {
    throw Error("the hand-written loop letterboxes; family " + model.family +
                " uses a plain resize (accepted: letterbox_center, letterbox_top_left)");
  }
  if (spec.layout != Layout::nchw) throw Error("the hand-written loop feeds NCHW blobs; this model takes NHWC");
  if (spec.mean != std::array<double, 3>{0, 0, 0} || spec.std != std::array<double, 3>{1, 1, 1}) {
    throw Error("the hand-written loop scales with blobFromImage only; family " + model.family +
                " normalises with a per-channel mean/std");
  }
  if (spec.type != ElementType::float32 && spec.type != ElementType::float16) {
    throw Error("the hand-written loop feeds float blobs; this model takes " +
                std::string(element_type_name(spec.type)));
  }
  model.input_width = spec.width;
  model.input_height = spec.height;
  model.letterbox_centred = spec.resize == ResizeMode::letterbox_center;
  model.swap_red_blue = spec.color == ColorOrder::rgb;
  model.pixel_scale = spec.scale;
  model.pad_value = spec.pad_value;
  model.half_precision_input = spec.type == ElementType::float16;
  const PostprocessOptions& options = detector.postprocess_options();
  model.score_threshold = options.score_threshold;
  model.iou_threshold = options.iou_threshold;
  model.max_detections = options.max_detections;
  model.nms = options.nms;
  model.class_names = detector.labels().names();
  return model;
}

nlohmann::json to_json(const LoopModel& model) {
  return {{"path", model.path.string()},
          {"family", model.family},
          {"input_width", model.input_width},
          {"input_height", model.input_height},
          {"letterbox_centred", model.letterbox_centred},
          {"swap_red_blue", model.swap_red_blue},
          {"pixel_scale", model.pixel_scale},
          {"pad_value", model.pad_value},
          {"half_precision_input", model.half_precision_input},
          {"score_threshold", model.score_threshold},
          {"iou_threshold", model.iou_threshold},
          {"max_detections", model.max_detections},
          {"nms", model.nms},
          {"class_names", model.class_names}};
}

LoopModel loop_model_from_json(const nlohmann::json& json) {
  LoopModel model;
  model.path = json.at("path").get<std::string>();
  model.family = json.at("family").get<std::string>();
  model.input_width = json.at("input_width").get<int>();
  model.input_height = json.at("input_height").get<int>();
  model.letterbox_centred = json.at("letterbox_centred").get<bool>();
  model.swap_red_blue = json.at("swap_red_blue").get<bool>();
  model.pixel_scale = json.at("pixel_scale").get<double>();
  model.pad_value = json.at("pad_value").get<double>();
  model.half_precision_input = json.at("half_precision_input").get<bool>();
  model.score_threshold = json.at("score_threshold").get<float>();
  model.iou_threshold = json.at("iou_threshold").get<float>();
  model.max_detections = json.at("max_detections").get<int>();
  model.nms = json.at("nms").get<bool>();
  model.class_names = json.at("class_names").get<std::vector<std::string>>();
  return model;
}

struct HandwrittenLoop::Impl {
  LoopModel model;
  LoopSettings settings;
  std::unique_ptr<InferenceRunner> runner;
};

HandwrittenLoop::HandwrittenLoop(const LoopModel& model, const LoopSettings& settings)
    : impl_(std::make_unique<Impl>()) {
  impl_->model = model;
  impl_->settings = settings;
  if (settings.backend == "onnxruntime") {
#ifdef DETFLOW_BENCH_HAVE_ONNXRUNTIME
    impl_->runner = std::make_unique<OnnxRuntimeRunner>(model, settings.threads);
#else
    throw Error("hand-written loop: backend onnxruntime is not built in (accepted here: opencv)");
#endif
  } else if (settings.backend == "opencv") {
    impl_->runner = std::make_unique<OpenCvRunner>(model, settings.threads);
  } else {
    throw Error("hand-written loop: backend '" + settings.backend + "' is unknown (accepted: onnxruntime, opencv)");
  }
}

HandwrittenLoop::~HandwrittenLoop() = default;

LoopResult HandwrittenLoop::run(const std::vector<cv::Mat>& frames) {
  const LoopModel& model = impl_->model;
  const LoopSettings& settings = impl_->settings;
  const bool annotate = !settings.video_output.empty();
  LoopResult result;
  std::vector<double> preprocess_ms, inference_ms, postprocess_ms, output_ms, frame_ms;

  const auto start = std::chrono::steady_clock::now();
  cv::VideoWriter writer;
  std::ofstream json_lines;
  if (!settings.json_output.empty()) {
    json_lines.open(settings.json_output);
    if (!json_lines) throw Error("hand-written loop: cannot write " + settings.json_output.string());
  }

  cv::Mat canvas, resized, padded, blob, transposed;
  std::vector<OutputView> outputs;
  Candidates candidates;
  std::vector<cv::Rect2d> offset_boxes;
  std::vector<int> kept;
  for (std::size_t index = 0; index < frames.size(); ++index) {
    // "Capture": the tutorial draws on the frame it just read into its own buffer.
    const auto captured = std::chrono::steady_clock::now();
    cv::Mat frame = frames[index];
    if (annotate) {
      frames[index].copyTo(canvas);
      frame = canvas;
    }

    // Letterbox: resize keeping the aspect ratio, pad with grey, then blobFromImage.
    const double ratio = std::min(static_cast<double>(model.input_width) / frame.cols,
                                  static_cast<double>(model.input_height) / frame.rows);
    const int new_width = cvRound(frame.cols * ratio);
    const int new_height = cvRound(frame.rows * ratio);
    int top = 0, bottom = model.input_height - new_height, left = 0, right = model.input_width - new_width;
    if (model.letterbox_centred) {
      const double half_width = (model.input_width - new_width) / 2.0;
      const double half_height = (model.input_height - new_height) / 2.0;
      top = cvRound(half_height - 0.1);
      bottom = cvRound(half_height + 0.1);
      left = cvRound(half_width - 0.1);
      right = cvRound(half_width + 0.1);
    }
    cv::resize(frame, resized, cv::Size(new_width, new_height), 0, 0, cv::INTER_LINEAR);
    const cv::Scalar pad(model.pad_value, model.pad_value, model.pad_value);
    cv::copyMakeBorder(resized, padded, top, bottom, left, right, cv::BORDER_CONSTANT, pad);
    blob =
        cv::dnn::blobFromImage(padded, model.pixel_scale, cv::Size(), cv::Scalar(), model.swap_red_blue, false, CV_32F);
    const auto preprocessed = std::chrono::steady_clock::now();

    impl_->runner->run(blob, outputs);
    const auto inferred = std::chrono::steady_clock::now();

    candidates.clear();
    if (outputs.empty()) throw std::runtime_error("hand-written loop: the model gave no outputs");
    if (model.family == "yolox") {
      tutorial::decode_yolox(outputs[0], model.input_width, model.input_height, model.score_threshold, candidates);
    } else if (model.family == "yolov8") {
      tutorial::decode_yolov8(outputs[0], model.score_threshold, candidates, transposed);
    } else if (model.family == "yolov5") {
      tutorial::decode_yolov5(outputs[0], model.score_threshold, candidates);
    } else {
      tutorial::decode_yolov10(outputs[0], model.score_threshold, candidates);
    }
    if (model.nms) {
      tutorial::class_aware_nms(candidates, model.score_threshold, model.iou_threshold, model.max_detections,
                                offset_boxes, kept);
    } else {
      kept.resize(candidates.boxes.size());
      for (std::size_t candidate = 0; candidate < kept.size(); ++candidate)
        kept[candidate] = static_cast<int>(candidate);
      std::stable_sort(kept.begin(), kept.end(),
                       [&](int a, int b) { return candidates.scores[a] > candidates.scores[b]; });
      if (model.max_detections > 0 && kept.size() > static_cast<std::size_t>(model.max_detections)) {
        kept.resize(static_cast<std::size_t>(model.max_detections));
      }
    }
    auto& detections = result.detections.emplace_back();
    for (const int candidate : kept) {
      const cv::Rect2d& box = candidates.boxes[static_cast<std::size_t>(candidate)];
      Detection detection;
      const auto clip = [](double value, int limit) {
        return static_cast<float>(std::clamp(value, 0.0, double(limit)));
      };
      detection.x1 = clip((box.x - left) / ratio, frame.cols);
      detection.y1 = clip((box.y - top) / ratio, frame.rows);
      detection.x2 = clip((box.x + box.width - left) / ratio, frame.cols);
      detection.y2 = clip((box.y + box.height - top) / ratio, frame.rows);
      detection.score = candidates.scores[static_cast<std::size_t>(candidate)];
      detection.class_id = candidates.class_ids[static_cast<std::size_t>(candidate)];
      detections.push_back(detection);
    }
    const auto postprocessed = std::chrono::steady_clock::now();

    if (annotate) {
      for (const auto& detection : detections) {
        const cv::Scalar colour = colours()[static_cast<std::size_t>(detection.class_id) % colours().size()];
        const cv::Point top_left(cvRound(detection.x1), cvRound(detection.y1));
        cv::rectangle(frame, top_left, cv::Point(cvRound(detection.x2), cvRound(detection.y2)), colour, 2);
        const std::string text = caption(model, detection.class_id, detection.score);
        int baseline = 0;
        const cv::Size text_size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, 0.5, 1, &baseline);
        const cv::Point label_origin(top_left.x, std::max(top_left.y, text_size.height + baseline));
        cv::rectangle(frame, label_origin - cv::Point(0, text_size.height + baseline),
                      label_origin + cv::Point(text_size.width, 0), colour, cv::FILLED);
        cv::putText(frame, text, label_origin - cv::Point(0, baseline), cv::FONT_HERSHEY_SIMPLEX, 0.5,
                    cv::Scalar(255, 255, 255), 1);
      }
      if (!writer.isOpened()) {
        writer.open(settings.video_output.string(), cv::VideoWriter::fourcc('m', 'p', '4', 'v'), settings.video_fps,
                    frame.size());
        if (!writer.isOpened())
          throw Error("hand-written loop: cv::VideoWriter cannot write " + settings.video_output.string() + " (mp4v)");
      }
      writer.write(frame);
    }
    if (json_lines.is_open()) {
      nlohmann::json line{{"frame", index}, {"width", frame.cols}, {"height", frame.rows}};
      auto& list = line["detections"] = nlohmann::json::array();
      for (const auto& detection : detections) {
        list.push_back({{"box", {detection.x1, detection.y1, detection.x2, detection.y2}},
                        {"score", detection.score},
                        {"class", detection.class_id},
                        {"label", class_name(model, detection.class_id)}});
      }
      json_lines << line.dump() << '\n';
    }
    const auto written = std::chrono::steady_clock::now();

    preprocess_ms.push_back(Milliseconds(preprocessed - captured).count());
    inference_ms.push_back(Milliseconds(inferred - preprocessed).count());
    postprocess_ms.push_back(Milliseconds(postprocessed - inferred).count());
    output_ms.push_back(Milliseconds(written - postprocessed).count());
    frame_ms.push_back(Milliseconds(written - captured).count());
  }
  writer.release();
  json_lines.close();
  result.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.frames = static_cast<std::int64_t>(frames.size());
  result.stages["preprocess"] = summarize_latencies(preprocess_ms);
  result.stages["inference"] = summarize_latencies(inference_ms);
  result.stages["postprocess"] = summarize_latencies(postprocess_ms);
  result.stages["output"] = summarize_latencies(output_ms);
  result.capture_to_output = summarize_latencies(frame_ms);
  return result;
}

}  // namespace detflow::bench
