// Decode + NMS of one frame's raw outputs, per family: detflow's Decoder against the usual
// loop over all anchors and classes into vectors, then cv::dnn::NMSBoxes, then the boxes
// mapped back to source pixels. Real outputs (the models in ../shared run once on bus.jpg)
// where available; YOLOv8 falls back to a synthetic tensor with realistic sparse scores, and
// SSD (no such model in ../shared) always uses a synthetic BlazeFace-layout pair.
#include <algorithm>
#include <cmath>
#include <map>

#include <opencv2/dnn.hpp>

#include "detflow/bench/tutorial_decode.h"
#include "detflow/error.h"
#include "detflow/post/decoder.h"
#include "detflow/post/decoders/ssd.h"
#include "micro_support.h"

namespace detflow::bench::micro {
namespace {

// Everything one family's pair needs; built once, on first use.
struct DecodeCase {
  std::string family;
  std::string origin;  // "yolov8n.onnx on bus.jpg" or "synthetic ..."
  std::vector<Tensor> outputs;
  Geometry geometry;
  PostprocessOptions options;
  int input_width = 0;
  int input_height = 0;
  const Decoder* decoder = nullptr;
  std::unique_ptr<Decoder> owned_decoder;
  ModelInfo model;  // for synthetic cases: what the decoder was built from
  std::vector<SsdDecoder::Anchor> anchors;
};

const FamilyDescription& family_named(const std::string& name) {
  for (const auto& family : registered_families()) {
    if (family.name == name) return family;
  }
  throw Error("no registered family " + name);
}

TensorInfo tensor_info(const std::string& name, std::vector<std::int64_t> shape) {
  TensorInfo info;
  info.name = name;
  info.type = ElementType::float32;
  info.type_name = "float";
  info.has_shape = true;
  for (auto dim : shape) info.shape.push_back(Dim{dim, ""});
  return info;
}

void finish_synthetic(DecodeCase& decode_case, const std::vector<TensorInfo>& infos) {
  const FamilyDescription& family = family_named(decode_case.family);
  decode_case.model.outputs = infos;
  DecoderContext context;
  context.model = &decode_case.model;
  context.outputs = infos;
  context.input_width = decode_case.input_width;
  context.input_height = decode_case.input_height;
  decode_case.owned_decoder = family.create(context);
  decode_case.decoder = decode_case.owned_decoder.get();
  decode_case.options = family.defaults.postprocess;
  PreprocessSpec spec = family.defaults.preprocess;
  spec.width = decode_case.input_width;
  spec.height = decode_case.input_height;
  decode_case.geometry = compute_geometry(spec, 768, 576);
}

// [1, 84, 8400] like a street scene: background class scores of 1e-4..1e-2, and 15 objects
// each seen by ~20 neighbouring anchors with one class scoring 0.3..0.9.
std::unique_ptr<DecodeCase> synthetic_yolov8() {
  auto decode_case = std::make_unique<DecodeCase>();
  decode_case->family = "yolov8";
  decode_case->origin = "synthetic [1, 84, 8400] (../shared absent)";
  decode_case->input_width = decode_case->input_height = 640;
  constexpr int anchors = 8400, classes = 80;
  Tensor tensor(ElementType::float32, {1, 4 + classes, anchors});
  float* data = tensor.data<float>();
  cv::RNG random(7);
  for (int anchor = 0; anchor < anchors; ++anchor) {
    data[0 * anchors + anchor] = random.uniform(0.f, 640.f);
    data[1 * anchors + anchor] = random.uniform(0.f, 640.f);
    data[2 * anchors + anchor] = random.uniform(8.f, 200.f);
    data[3 * anchors + anchor] = random.uniform(8.f, 300.f);
    for (int class_id = 0; class_id < classes; ++class_id) {
      data[(4 + class_id) * anchors + anchor] = std::exp(random.uniform(-9.2f, -4.6f));
    }
  }
  for (int object = 0; object < 15; ++object) {
    const int first = random.uniform(0, anchors - 40);
    const int class_id = object % 4 == 0 ? 2 : 0;
    const float centre_x = random.uniform(50.f, 590.f), centre_y = random.uniform(50.f, 590.f);
    const float width = random.uniform(30.f, 150.f), height = random.uniform(60.f, 300.f);
    for (int neighbour = 0; neighbour < 20; ++neighbour) {
      const int anchor = first + neighbour;
      data[0 * anchors + anchor] = centre_x + random.uniform(-4.f, 4.f);
      data[1 * anchors + anchor] = centre_y + random.uniform(-4.f, 4.f);
      data[2 * anchors + anchor] = width * random.uniform(0.9f, 1.1f);
      data[3 * anchors + anchor] = height * random.uniform(0.9f, 1.1f);
      data[(4 + class_id) * anchors + anchor] = random.uniform(0.3f, 0.9f);
    }
  }
  tensor.name = "output0";
  decode_case->outputs.push_back(std::move(tensor));
  finish_synthetic(*decode_case, {tensor_info("output0", {1, 4 + classes, anchors})});
  return decode_case;
}

// BlazeFace front layout: boxes [1, 896, 16], score logits [1, 896, 1]; two faces.
std::unique_ptr<DecodeCase> synthetic_ssd() {
  auto decode_case = std::make_unique<DecodeCase>();
  decode_case->family = "ssd";
  decode_case->origin = "synthetic BlazeFace layout [1, 896, 16] + [1, 896, 1]";
  decode_case->input_width = decode_case->input_height = 128;
  constexpr int anchors = 896;
  Tensor boxes(ElementType::float32, {1, anchors, 16});
  Tensor scores(ElementType::float32, {1, anchors, 1});
  cv::RNG random(11);
  for (int anchor = 0; anchor < anchors; ++anchor) {
    float* row = boxes.data<float>() + anchor * 16;
    for (int column = 0; column < 16; ++column) row[column] = random.uniform(-3.f, 3.f);
    row[2] = random.uniform(10.f, 30.f);
    row[3] = random.uniform(10.f, 30.f);
    scores.data<float>()[anchor] = random.uniform(-9.f, -3.f);
  }
  for (const int first : {300, 700}) {
    for (int neighbour = 0; neighbour < 6; ++neighbour)
      scores.data<float>()[first + neighbour] = random.uniform(0.5f, 4.f);
  }
  boxes.name = "regressors";
  scores.name = "classificators";
  decode_case->outputs.push_back(std::move(boxes));
  decode_case->outputs.push_back(std::move(scores));
  finish_synthetic(*decode_case,
                   {tensor_info("regressors", {1, anchors, 16}), tensor_info("classificators", {1, anchors, 1})});
  decode_case->anchors = SsdDecoder::generate_anchors(DecoderConfig::Ssd{}, 128, 128);
  return decode_case;
}

const DecodeCase* find_decode_case(const std::string& family, const std::string& model_file, std::string& why) {
  static std::map<std::string, std::unique_ptr<DecodeCase>> cases;
  if (const auto found = cases.find(family); found != cases.end()) return found->second.get();
  std::unique_ptr<DecodeCase> built;
  if (family == "ssd") {
    built = synthetic_ssd();
  } else if (const RealRun* run = real_run(model_file, "bus.jpg", why)) {
    built = std::make_unique<DecodeCase>();
    built->family = family;
    built->origin = model_file + " on bus.jpg";
    built->outputs = run->outputs;
    built->geometry = run->geometry;
    built->options = run->setup->postprocess_options();
    built->input_width = run->setup->preprocess_spec().width;
    built->input_height = run->setup->preprocess_spec().height;
    built->decoder = &run->setup->decoder();
  } else if (family == "yolov8") {
    built = synthetic_yolov8();
  } else {
    return nullptr;
  }
  return (cases[family] = std::move(built)).get();
}

// The baseline's last step, as every tutorial has it: kept boxes back to source pixels.
void to_source_pixels(const tutorial::Candidates& candidates, const std::vector<int>& kept, const Geometry& geometry,
                      std::vector<Detection>& detections) {
  detections.clear();
  for (const int index : kept) {
    const cv::Rect2d& box = candidates.boxes[static_cast<std::size_t>(index)];
    Detection detection;
    detection.x1 = static_cast<float>(
        std::clamp((box.x - geometry.pad_left) / geometry.scale_x, 0.0, double(geometry.source_width)));
    detection.y1 = static_cast<float>(
        std::clamp((box.y - geometry.pad_top) / geometry.scale_y, 0.0, double(geometry.source_height)));
    detection.x2 = static_cast<float>(
        std::clamp((box.x + box.width - geometry.pad_left) / geometry.scale_x, 0.0, double(geometry.source_width)));
    detection.y2 = static_cast<float>(
        std::clamp((box.y + box.height - geometry.pad_top) / geometry.scale_y, 0.0, double(geometry.source_height)));
    detection.score = candidates.scores[static_cast<std::size_t>(index)];
    detection.class_id = candidates.class_ids[static_cast<std::size_t>(index)];
    detections.push_back(detection);
  }
}

tutorial::OutputView view_of(const Tensor& tensor, cv::Mat& converted) {
  tutorial::OutputView view;
  view.shape = tensor.shape();
  if (tensor.type() == ElementType::float16) {
    // What a user does with an fp16 output: convert the whole tensor first.
    const cv::Mat half(1, static_cast<int>(tensor.element_count()), CV_16F, const_cast<std::byte*>(tensor.bytes()));
    half.convertTo(converted, CV_32F);
    view.data = converted.ptr<float>();
  } else {
    view.data = tensor.data<float>();
  }
  return view;
}

float sigmoid(float value) { return 1.0f / (1.0f + std::exp(-value)); }

// NanoDet's demo: per level and cell, the best class; above the threshold, softmax each
// side's distribution and take its expectation.
void baseline_nanodet(const DecodeCase& decode_case, tutorial::Candidates& candidates, std::vector<cv::Mat>& scratch) {
  std::vector<const Tensor*> class_tensors, box_tensors;
  for (const auto& tensor : decode_case.outputs) {
    (tensor.shape().back() == 32 ? box_tensors : class_tensors).push_back(&tensor);
  }
  scratch.resize(2 * class_tensors.size());
  for (const int stride : {8, 16, 32}) {
    const int grid_width = static_cast<int>(std::ceil(decode_case.input_width / double(stride)));
    const int grid_height = static_cast<int>(std::ceil(decode_case.input_height / double(stride)));
    const std::int64_t cells = std::int64_t{grid_width} * grid_height;
    const Tensor* classes = nullptr;
    const Tensor* boxes = nullptr;
    for (const Tensor* tensor : class_tensors) {
      if (tensor->element_count() / static_cast<std::size_t>(tensor->shape().back()) == std::size_t(cells))
        classes = tensor;
    }
    for (const Tensor* tensor : box_tensors) {
      if (tensor->element_count() / 32 == std::size_t(cells)) boxes = tensor;
    }
    if (classes == nullptr || boxes == nullptr) throw std::runtime_error("nanodet baseline: no tensors for a stride");
    const int class_count = static_cast<int>(classes->shape().back());
    const float* class_data = classes->data<float>();
    const float* box_data = boxes->data<float>();
    for (int cell = 0; cell < cells; ++cell) {
      const float* scores = class_data + static_cast<std::ptrdiff_t>(cell) * class_count;
      int best_class = 0;
      float best_score = 0;
      for (int class_id = 0; class_id < class_count; ++class_id) {
        if (scores[class_id] > best_score) {
          best_score = scores[class_id];
          best_class = class_id;
        }
      }
      if (best_score < decode_case.options.score_threshold) continue;
      float distances[4];
      for (int side = 0; side < 4; ++side) {
        const float* logits = box_data + static_cast<std::ptrdiff_t>(cell) * 32 + side * 8;
        const float largest = *std::max_element(logits, logits + 8);
        float sum = 0, expectation = 0;
        for (int bin = 0; bin < 8; ++bin) {
          const float weight = std::exp(logits[bin] - largest);
          sum += weight;
          expectation += weight * bin;
        }
        distances[side] = expectation / sum * stride;
      }
      const float centre_x = (cell % grid_width + 0.5f) * stride;
      const float centre_y = (cell / grid_width + 0.5f) * stride;
      const double x1 = std::max(0.f, centre_x - distances[0]);
      const double y1 = std::max(0.f, centre_y - distances[1]);
      const double x2 = std::min<float>(decode_case.input_width, centre_x + distances[2]);
      const double y2 = std::min<float>(decode_case.input_height, centre_y + distances[3]);
      candidates.boxes.emplace_back(x1, y1, x2 - x1, y2 - y1);
      candidates.scores.push_back(best_score);
      candidates.class_ids.push_back(best_class);
    }
  }
}

// MediaPipe-style SSD decode over anchors: sigmoid of the clipped logit, then the box coder.
void baseline_ssd(const DecodeCase& decode_case, tutorial::Candidates& candidates) {
  const DecoderConfig::Ssd options;
  const float* boxes = decode_case.outputs[0].data<float>();
  const float* logits = decode_case.outputs[1].data<float>();
  for (std::size_t anchor = 0; anchor < decode_case.anchors.size(); ++anchor) {
    const float logit = std::clamp(logits[anchor], float(-options.score_clipping), float(options.score_clipping));
    const float score = sigmoid(logit);
    if (score < decode_case.options.score_threshold) continue;
    const auto& prior = decode_case.anchors[anchor];
    const float* row = boxes + anchor * 16;
    const double centre_x = (row[0] / options.x_scale * prior.width + prior.x_center) * decode_case.input_width;
    const double centre_y = (row[1] / options.y_scale * prior.height + prior.y_center) * decode_case.input_height;
    const double width = row[2] / options.w_scale * prior.width * decode_case.input_width;
    const double height = row[3] / options.h_scale * prior.height * decode_case.input_height;
    candidates.add_centre_box(centre_x, centre_y, width, height, score, 0);
  }
}

void detflow_decode(benchmark::State& state, const std::string& family, const std::string& model_file) {
  std::string why;
  const DecodeCase* decode_case = find_decode_case(family, model_file, why);
  if (decode_case == nullptr) {
    state.SkipWithError(why.c_str());
    return;
  }
  std::vector<Detection> detections;
  for (auto _ : state) {
    decode_case->decoder->decode(decode_case->outputs, decode_case->geometry, decode_case->options, detections);
    benchmark::DoNotOptimize(detections.data());
  }
  state.counters["detections"] = static_cast<double>(detections.size());
  state.SetLabel(decode_case->origin);
}

void baseline_decode(benchmark::State& state, const std::string& family, const std::string& model_file) {
  std::string why;
  const DecodeCase* decode_case = find_decode_case(family, model_file, why);
  if (decode_case == nullptr) {
    state.SkipWithError(why.c_str());
    return;
  }
  const PostprocessOptions& options = decode_case->options;
  tutorial::Candidates candidates;
  std::vector<cv::Rect2d> shifted;
  std::vector<int> kept;
  std::vector<Detection> detections;
  cv::Mat converted, transposed;
  std::vector<cv::Mat> scratch;
  for (auto _ : state) {
    candidates.clear();
    if (family == "nanodet") {
      baseline_nanodet(*decode_case, candidates, scratch);
    } else if (family == "ssd") {
      baseline_ssd(*decode_case, candidates);
    } else {
      const tutorial::OutputView view = view_of(decode_case->outputs[0], converted);
      if (family == "yolov8") {
        tutorial::decode_yolov8(view, options.score_threshold, candidates, transposed);
      } else if (family == "yolox") {
        tutorial::decode_yolox(view, decode_case->input_width, decode_case->input_height, options.score_threshold,
                               candidates);
      } else if (family == "yolov5") {
        tutorial::decode_yolov5(view, options.score_threshold, candidates);
      } else {
        tutorial::decode_yolov10(view, options.score_threshold, candidates);
      }
    }
    if (options.nms) {
      tutorial::class_aware_nms(candidates, options.score_threshold, options.iou_threshold, options.max_detections,
                                shifted, kept);
    } else {
      kept.resize(candidates.boxes.size());
      for (std::size_t index = 0; index < kept.size(); ++index) kept[index] = static_cast<int>(index);
      std::stable_sort(kept.begin(), kept.end(),
                       [&](int a, int b) { return candidates.scores[a] > candidates.scores[b]; });
    }
    to_source_pixels(candidates, kept, decode_case->geometry, detections);
    benchmark::DoNotOptimize(detections.data());
  }
  state.counters["detections"] = static_cast<double>(detections.size());
  state.SetLabel(decode_case->origin);
}

}  // namespace

void register_decode_benchmarks() {
  const std::vector<std::pair<std::string, std::string>> families{
      {"yolov8", "yolov8n.onnx"},        {"yolox", "yolox_nano.onnx"},      {"yolov5", "yolov5n_fp16.onnx"},
      {"yolov10", "yolov10n_int8.onnx"}, {"nanodet", "nanodet_m_320.onnx"}, {"ssd", ""}};
  for (const auto& [family, model_file] : families) {
    register_pair(
        "decode_nms_" + family, "the usual loop over all anchors and classes + cv::dnn::NMSBoxes",
        [family, model_file](benchmark::State& state) { detflow_decode(state, family, model_file); },
        [family, model_file](benchmark::State& state) { baseline_decode(state, family, model_file); });
  }
}

}  // namespace detflow::bench::micro
