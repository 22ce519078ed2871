// detflow/pipeline/detector.h — a model made ready to detect: engine(s), preprocessing,
// decoder and labels, decided once from ModelInfo and configuration.
//
// DetectorSetup is built once (it reads the model, picks the family and its defaults,
// decides the input size, resolves labels) and is immutable afterwards: its const members
// are safe to call from several threads at once; make_engine() is not (call it from the
// thread that sets up the workers). Each worker that runs inference owns its own Engine from
// make_engine(); each preprocessing worker owns its own Preprocessor. The same pieces
// are used by the flow graph, the benchmarks' sequential loop and the reference tests, so
// all of them detect exactly the same way.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "detflow/inference/engine.h"
#include "detflow/inference/model_info.h"
#include "detflow/post/decoder.h"
#include "detflow/post/labels.h"
#include "detflow/post/output_sanity.h"
#include "detflow/pre/preprocess.h"

namespace detflow {

// What the user can set about a model; unset optionals take the family's defaults.
struct ModelSettings {
  std::filesystem::path path;
  std::string family = "auto";
  int input_width = 0;  // 0: fixed in the model, else metadata imgsz, else 640
  int input_height = 0;
  std::filesystem::path labels_file;
  std::optional<float> score_threshold;
  std::optional<float> iou_threshold;
  std::optional<int> max_detections;
  std::optional<bool> class_agnostic;
  std::vector<std::string> classes;  // names or ids to keep; empty keeps all
  // Preprocessing overrides (empty: family default).
  std::optional<ResizeMode> resize;
  std::optional<ColorOrder> color;
  std::optional<double> pad_value;
  DecoderConfig decoder;
};

class DetectorSetup {
 public:
  // Throws detflow::Error for anything that cannot work (unreadable model, unknown family,
  // unknown class name, ...). Creates one engine to learn the runtime output shapes.
  DetectorSetup(const ModelSettings& settings, const EngineOptions& engine_options);

  const ModelInfo& model() const { return model_; }
  const EngineOptions& engine_options() const { return engine_options_; }
  const InputShapeDecision& input_shape() const { return input_shape_; }
  const FamilyChoice& family() const { return family_; }
  const PreprocessSpec& preprocess_spec() const { return preprocess_spec_; }
  const PostprocessOptions& postprocess_options() const { return postprocess_options_; }
  const Decoder& decoder() const { return *decoder_; }
  const Labels& labels() const { return labels_; }
  // What the first engine chose (backend, providers or target, fallbacks); engines made
  // later use the same options.
  const EngineReport& engine_report() const { return engine_report_; }
  // The input the engine takes (name, element type, fixed shape), as Engine::inputs()[0].
  const TensorInfo& engine_input() const { return engine_input_; }

  // A new engine for one worker: one sharing the setup engine's loaded model where the
  // backend allows (ONNX Runtime, see Engine::share()), else the setup engine itself on the
  // first call and newly loaded ones after.
  // Throws detflow::Error when a further engine cannot be created.
  std::unique_ptr<Engine> make_engine();

  // A tensor shaped for one frame of preprocess_spec(), named after the engine's input,
  // ready for Preprocessor::run() (reuse it: steady-state calls allocate nothing).
  Tensor make_input_tensor() const;

  // Decodes and labels: detections in source pixels, `label` filled, descending score.
  // Safe to call concurrently. Throws std::runtime_error when outputs do not fit the decoder.
  // The first frames also go through output_sanity(), which warns once when they look wrong.
  void postprocess(std::span<const Tensor> outputs, const Geometry& geometry, std::vector<Detection>& detections) const;
  // The watch over the first frames' outputs (see output_sanity.h).
  const OutputSanity& output_sanity() const { return *output_sanity_; }

  // Human-readable lines describing every decision (family and why, input size and why,
  // engine and fallbacks, labels source, thresholds).
  std::vector<std::string> describe() const;

 private:
  ModelInfo model_;
  EngineOptions engine_options_;
  InputShapeDecision input_shape_;
  FamilyChoice family_;
  PreprocessSpec preprocess_spec_;
  PostprocessOptions postprocess_options_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<OutputSanity> output_sanity_;  // mutable state behind a const postprocess()
  Labels labels_;
  EngineReport engine_report_;
  TensorInfo engine_input_;
  std::unique_ptr<Engine> first_engine_;
  bool first_engine_taken_ = false;
};

}  // namespace detflow
