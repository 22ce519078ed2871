// detflow/inference/engine.h — one interface over ONNX Runtime and OpenCV DNN.
//
// An Engine owns one loaded model (an Ort::Session or a cv::dnn::Net) and runs it on
// named tensors. Thread-safety: run() may be called from one thread at a time per Engine;
// the pipeline keeps one Engine per inference worker (OpenCV's Net is not thread-safe,
// and separate ONNX Runtime sessions avoid contention on the session's internal locks).
// Engines are created by create_engine(), which applies the configured fallback order and
// reports what it chose in EngineReport; the first fallback is logged once as a warning.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "detflow/inference/model_info.h"
#include "detflow/tensor.h"

namespace detflow {

struct EngineOptions {
  // "auto" (ONNX Runtime on CPU when built in and it loads the model, else OpenCV CPU),
  // "onnxruntime" or "opencv".
  std::string backend = "auto";
  // OpenCV: "cpu", "opencl", "opencl_fp16". ONNX Runtime: "cpu" or an execution provider
  // name ("cuda", "tensorrt", "openvino", ...); see providers for an ordered list.
  std::string target = "cpu";
  // ONNX Runtime execution providers in preference order (e.g. {"cuda", "cpu"}). Empty:
  // {target, "cpu"}. Missing providers are skipped with one warning; CPU is always last.
  std::vector<std::string> providers;
  std::map<std::string, std::map<std::string, std::string>> provider_options;  // provider -> key -> value
  int intra_op_threads = 0;                                                    // 0: the runtime's default (all cores)
  // Input size for models with dynamic height/width: 0 = from metadata imgsz, else 640.
  int input_width = 0;
  int input_height = 0;
};

// How the model's input shape was fixed and why (printed by `detflow inspect` and `run`).
struct InputShapeDecision {
  std::string input_name;
  std::vector<std::int64_t> shape;  // fully fixed, e.g. {1, 3, 640, 640}
  bool nhwc = false;                // true when channels are last (e.g. BlazeFace 1x128x128x3)
  std::string reason;               // e.g. "fixed in the model", "from metadata imgsz", "default 640"
};

// Decides the fixed input shape (batch 1) from the model, the options and metadata.
// Throws detflow::Error when the model's first input is not a rank-4 image tensor.
InputShapeDecision decide_input_shape(const ModelInfo& model, const EngineOptions& options);

struct EngineReport {
  std::string backend;               // "onnxruntime" | "opencv"
  std::vector<std::string> targets;  // in use: ORT providers (e.g. {"CPUExecutionProvider"}) or OpenCV target
  std::vector<std::string> notes;    // fallbacks and graph rewrites applied, one line each
};

class Engine {
 public:
  virtual ~Engine() = default;
  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  virtual const EngineReport& report() const = 0;
  // Fixed input and output shapes and the element types as this engine takes and gives
  // them. These can differ from ModelInfo: OpenCV runs an fp16 model rewritten to fp32,
  // so its inputs() say float32 where the file says float16. Preprocessing is configured
  // from inputs(), decoders accept what outputs() says.
  virtual const std::vector<TensorInfo>& inputs() const = 0;
  virtual const std::vector<TensorInfo>& outputs() const = 0;

  // Runs the model. inputs are matched to graph inputs by name (or by position when the
  // name is empty) and must have the element type inputs() gives (f32, f16 or u8). outputs
  // is resized to the model's outputs in declaration order; tensors inside are reused, so a
  // caller that keeps the vector pays no allocation per call. Output element types are as
  // outputs() says. Throws detflow::Error on a shape or type mismatch.
  virtual void run(std::span<const Tensor> inputs, std::vector<Tensor>& outputs) = 0;

  // Another engine over the same loaded model, for another worker, or nullptr when the
  // backend cannot share one. ONNX Runtime engines share one Ort::Session (its Run() is
  // thread-safe), so each further worker costs only its own input/output bindings instead
  // of a second copy of the weights and prepacked kernels (about 20 MiB for YOLOX-nano).
  // OpenCV's Net is not thread-safe: it returns nullptr and workers load their own.
  virtual std::unique_ptr<Engine> share() const = 0;
};

// Loads the model at model.path with the backend and target in options, falling back as
// documented above. Throws detflow::Error when nothing can load it (the message lists what
// was tried and why each failed).
std::unique_ptr<Engine> create_engine(const ModelInfo& model, const EngineOptions& options);

// True when this build includes ONNX Runtime.
bool onnxruntime_available();
// Backends and targets this machine can offer ("onnxruntime:cpu", "opencv:cpu", "opencv:opencl", ...).
std::vector<std::string> available_engines();

}  // namespace detflow
