#include "detflow/inference/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <regex>
#include <set>

#include "detflow/error.h"
#include "detflow/inference/describe.h"
#include "detflow/inference/output_capture.h"
#include "opencv_engine.h"
#ifdef DETFLOW_HAVE_ONNXRUNTIME
#include "onnxruntime_engine.h"
#endif

namespace detflow {

namespace {

constexpr std::array<const char*, 3> backend_names{"auto", "onnxruntime", "opencv"};
constexpr std::array<const char*, 3> opencv_target_names{"cpu", "opencl", "opencl_fp16"};

std::string joined(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : separator) + item;
  return text;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t axis = 0; axis < shape.size(); ++axis) text += (axis ? ", " : "") + std::to_string(shape[axis]);
  return text + "]";
}

bool is_opencv_target(const std::string& target) {
  return std::find(opencv_target_names.begin(), opencv_target_names.end(), target) != opencv_target_names.end();
}

bool is_onnxruntime_provider(const std::string& name) {
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  const auto known = detail::onnxruntime_providers_known();
  std::string wanted = name;
  std::transform(wanted.begin(), wanted.end(), wanted.begin(), [](unsigned char c) { return std::tolower(c); });
  if (wanted.ends_with("executionprovider")) return true;  // full names are checked when the session is built
  return std::find(known.begin(), known.end(), wanted) != known.end();
#else
  return name == "cpu" || name.ends_with("ExecutionProvider") ||
         std::set<std::string>{"cuda",    "tensorrt", "rocm",    "dnnl",   "cann",   "openvino",
                               "vitisai", "qnn",      "xnnpack", "coreml", "webgpu", "azure"}
             .contains(name);
#endif
}

void warn_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> said;
  std::lock_guard lock(mutex);
  if (said.insert(message).second) spdlog::warn("{}", message);
}

// Keeps the chosen backend's engine and adds create_engine's decisions to its report.
class ReportedEngine final : public Engine {
 public:
  ReportedEngine(std::unique_ptr<Engine> inner, std::vector<std::string> notes_before)
      : inner_(std::move(inner)), report_(inner_->report()) {
    report_.notes.insert(report_.notes.begin(), notes_before.begin(), notes_before.end());
  }
  const EngineReport& report() const override { return report_; }
  const std::vector<TensorInfo>& inputs() const override { return inner_->inputs(); }
  const std::vector<TensorInfo>& outputs() const override { return inner_->outputs(); }
  void run(std::span<const Tensor> inputs, std::vector<Tensor>& outputs) override { inner_->run(inputs, outputs); }
  std::unique_ptr<Engine> share() const override {
    auto inner = inner_->share();
    if (!inner) return nullptr;
    return std::make_unique<ReportedEngine>(std::move(inner), report_);
  }
  // A sharer keeps the report (fallbacks, decisions) of the engine it shares with.
  ReportedEngine(std::unique_ptr<Engine> inner, EngineReport report)
      : inner_(std::move(inner)), report_(std::move(report)) {}

 private:
  std::unique_ptr<Engine> inner_;
  EngineReport report_;
};

struct Attempt {
  std::string backend;
  std::string target;
  std::string name() const { return backend + ":" + target; }
};

// Creates exactly the engine asked for, without any fallback of its own.
std::unique_ptr<Engine> create_exact(const ModelInfo& model, const EngineOptions& options, const Attempt& attempt,
                                     const InputShapeDecision& shape) {
  EngineOptions exact = options;
  exact.backend = attempt.backend;
  exact.target = attempt.target;
  if (attempt.backend == "onnxruntime") {
#ifdef DETFLOW_HAVE_ONNXRUNTIME
    return detail::create_onnxruntime_engine(model, exact, shape);
#else
    throw Error("ONNX Runtime is not built into this detflow (configure with ONNXRUNTIME_ROOT to add it)");
#endif
  }
  exact.providers.clear();
  return detail::create_opencv_engine(model, exact, shape);
}

std::vector<Attempt> plan_attempts(const EngineOptions& options) {
  if (std::find(backend_names.begin(), backend_names.end(), options.backend) == backend_names.end()) {
    throw Error("engine backend '" + options.backend + "' is not one of: auto, onnxruntime, opencv");
  }
  const std::string target = options.target.empty() ? std::string("cpu") : options.target;
  for (const auto& provider : options.providers) {
    if (!is_onnxruntime_provider(provider)) {
      throw Error("ONNX Runtime provider '" + provider +
                  "' is unknown; accepted: cpu, cuda, tensorrt, rocm, dnnl, cann, openvino, vitisai, qnn, xnnpack, "
                  "coreml, webgpu, azure");
    }
  }
  const bool opencv_target = is_opencv_target(target);
  const bool onnxruntime_target = is_onnxruntime_provider(target);
  if (options.backend == "opencv") {
    if (!opencv_target) throw Error("OpenCV target '" + target + "' is not one of: cpu, opencl, opencl_fp16");
    return {{"opencv", target}, {"onnxruntime", "cpu"}};
  }
  if (options.backend == "onnxruntime") {
    if (!onnxruntime_target) {
      throw Error("ONNX Runtime target '" + target +
                  "' is not an execution provider; accepted: cpu, cuda, tensorrt, openvino, dnnl, rocm, ... (OpenCL "
                  "is an OpenCV target: use backend opencv)");
    }
    return {{"onnxruntime", target}, {"opencv", "cpu"}};
  }
  if (opencv_target && target != "cpu") return {{"opencv", target}, {"onnxruntime", "cpu"}};
  if (!onnxruntime_target) {
    throw Error("engine target '" + target +
                "' is unknown; accepted: cpu, opencl, opencl_fp16 (OpenCV) or an ONNX Runtime execution provider "
                "(cuda, tensorrt, openvino, ...)");
  }
  return {{"onnxruntime", target}, {"opencv", "cpu"}};
}

std::vector<std::int64_t> numbers_in(const std::string& text) {
  std::vector<std::int64_t> numbers;
  static const std::regex number_pattern("[0-9]+");
  for (auto match = std::sregex_iterator(text.begin(), text.end(), number_pattern); match != std::sregex_iterator();
       ++match) {
    numbers.push_back(std::stoll(match->str()));
  }
  return numbers;
}

bool is_known(const Dim& dim) { return dim.is_fixed() && dim.value > 0; }
bool looks_like_channels(const Dim& dim) { return is_known(dim) && (dim.value == 1 || dim.value == 3); }

}  // namespace

InputShapeDecision decide_input_shape(const ModelInfo& model, const EngineOptions& options) {
  if (model.inputs.empty()) {
    throw Error("model '" + model.path.string() + "' has no inputs; detflow needs an image input");
  }
  const TensorInfo& input = model.inputs.front();
  if (!input.has_shape || input.shape.size() != 4) {
    throw Error("model '" + model.path.string() + "': input '" + input.name + "' has shape " +
                (input.has_shape ? input.to_string().substr(input.to_string().find('[')) : std::string("(none)")) +
                ": detflow needs an image tensor [N, C, H, W] or [N, H, W, C]");
  }
  if (options.input_width < 0 || options.input_height < 0) {
    throw Error("input size " + std::to_string(options.input_width) + "x" + std::to_string(options.input_height) +
                " is negative; accepted: 0 (from the model) or a positive size");
  }
  const auto& dims = input.shape;
  InputShapeDecision decision;
  decision.input_name = input.name;
  // Channels-last when the last dim looks like a channel count and the second does not,
  // e.g. BlazeFace [1, 128, 128, 3]; everything ambiguous is taken as NCHW.
  decision.nhwc =
      looks_like_channels(dims[3]) && !looks_like_channels(dims[1]) && (!is_known(dims[2]) || dims[2].value > 4);
  const std::size_t channel_axis = decision.nhwc ? 3 : 1;
  const std::size_t height_axis = decision.nhwc ? 1 : 2;
  const std::size_t width_axis = decision.nhwc ? 2 : 3;

  std::vector<std::string> reasons;
  decision.shape.assign(4, 0);
  decision.shape[0] = is_known(dims[0]) ? dims[0].value : 1;
  if (!is_known(dims[0])) reasons.push_back("batch 1");
  decision.shape[channel_axis] = is_known(dims[channel_axis]) ? dims[channel_axis].value : 3;
  if (!is_known(dims[channel_axis])) reasons.push_back("3 channels assumed");

  const bool height_fixed = is_known(dims[height_axis]);
  const bool width_fixed = is_known(dims[width_axis]);
  std::int64_t height = 0;
  std::int64_t width = 0;
  std::string size_reason;
  if (options.input_width > 0 || options.input_height > 0) {
    width = options.input_width > 0 ? options.input_width : options.input_height;
    height = options.input_height > 0 ? options.input_height : options.input_width;
    size_reason = "from options";
  } else if (const auto imgsz = model.metadata_value("imgsz"); imgsz && !numbers_in(*imgsz).empty()) {
    const auto numbers = numbers_in(*imgsz);  // Ultralytics writes [height, width]
    height = numbers[0];
    width = numbers.size() > 1 ? numbers[1] : numbers[0];
    size_reason = "from metadata imgsz";
  } else {
    height = width = 640;
    size_reason = "default 640";
  }
  if (height_fixed && width_fixed) {
    std::string reason = "fixed in the model";
    if (options.input_width > 0 || options.input_height > 0) {
      if (width != dims[width_axis].value || height != dims[height_axis].value) {
        reason += " (requested " + std::to_string(width) + "x" + std::to_string(height) + " ignored)";
      }
    }
    reasons.insert(reasons.begin(), reason);
    height = dims[height_axis].value;
    width = dims[width_axis].value;
  } else {
    if (height_fixed) height = dims[height_axis].value;
    if (width_fixed) width = dims[width_axis].value;
    std::string reason = height_fixed  ? "height fixed in the model, width " + size_reason
                         : width_fixed ? "width fixed in the model, height " + size_reason
                                       : size_reason;
    reasons.insert(reasons.begin(), reason);
  }
  if (height <= 0 || width <= 0) {
    throw Error("model '" + model.path.string() + "': input size " + std::to_string(width) + "x" +
                std::to_string(height) + " (" + size_reason + ") is not positive");
  }
  decision.shape[height_axis] = height;
  decision.shape[width_axis] = width;
  decision.reason = joined(reasons);
  return decision;
}

std::unique_ptr<Engine> create_engine(const ModelInfo& model, const EngineOptions& options) {
  const auto attempts = plan_attempts(options);
  const auto shape = decide_input_shape(model, options);
  std::vector<std::string> notes{"input '" + shape.input_name + "' " + shape_text(shape.shape) +
                                 (shape.nhwc ? " NHWC" : " NCHW") + ": " + shape.reason};
  std::vector<std::string> failures;
  for (std::size_t index = 0; index < attempts.size(); ++index) {
    const auto& attempt = attempts[index];
    try {
      auto engine = [&] {
        // Libraries print while loading (OpenCL build logs, OpenCV importer errors): to the log.
        const OutputCapture capture("loading " + model.path.filename().string() + " on " + attempt.name());
        return create_exact(model, options, attempt, shape);
      }();
      if (index > 0) {
        const auto message = "engine " + attempts.front().name() + " unavailable for '" + model.path.string() + "' (" +
                             failures.back() + "); fell back to " + attempt.name();
        warn_once(message);
        notes.push_back(message);
      }
      return std::make_unique<ReportedEngine>(std::move(engine), std::move(notes));
    } catch (const std::exception& error) {
      std::string reason = error.what();
      reason = reason.substr(0, reason.find('\n'));
      failures.push_back(reason);
      if (attempt.backend == "onnxruntime" && !onnxruntime_available() && options.backend == "onnxruntime") {
        warn_once("backend onnxruntime requested but ONNX Runtime is not built into this detflow: using OpenCV");
      }
    }
  }
  std::string tried;
  for (std::size_t index = 0; index < attempts.size(); ++index) {
    tried += (index ? "; " : "") + attempts[index].name() + ": " + failures[index];
  }
  throw Error("no engine could load model '" + model.path.string() + "' (tried " + tried + ")");
}

bool onnxruntime_available() {
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  return true;
#else
  return false;
#endif
}

std::vector<std::string> available_engines() {
  // Looking for OpenCL devices loads the ICDs, which may print.
  const OutputCapture capture("looking for engines and OpenCL devices");
  std::vector<std::string> engines;
#ifdef DETFLOW_HAVE_ONNXRUNTIME
  for (const auto& provider : detail::onnxruntime_providers_available()) engines.push_back("onnxruntime:" + provider);
#endif
  for (const auto& target : detail::opencv_targets_available()) engines.push_back("opencv:" + target);
  return engines;
}

std::vector<EngineProbe> probe_engines(const ModelInfo& model, const EngineOptions& base) {
  const auto shape = decide_input_shape(model, base);
  std::vector<EngineProbe> probes;
  for (const auto& name : available_engines()) {
    EngineProbe probe;
    probe.engine = name;
    const auto separator = name.find(':');
    const Attempt attempt{name.substr(0, separator), name.substr(separator + 1)};
    try {
      const OutputCapture capture("probing " + name + " with " + model.path.filename().string());
      auto engine = create_exact(model, base, attempt, shape);
      std::vector<Tensor> zeros;
      for (const auto& input : engine->inputs()) {
        Tensor tensor(input.type, input.fixed_shape());
        tensor.name = input.name;
        if (tensor.byte_size() > 0) std::memset(tensor.bytes(), 0, tensor.byte_size());
        zeros.push_back(std::move(tensor));
      }
      std::vector<Tensor> outputs;
      engine->run(zeros, outputs);
      std::vector<std::string> output_texts;
      for (const auto& output : outputs) {
        output_texts.push_back(output.name + " " + std::string(element_type_name(output.type())) + " " +
                               shape_text(output.shape()));
      }
      probe.loads = true;
      probe.detail = "runs on " + joined(engine->report().targets) + "; outputs " + joined(output_texts);
      if (!engine->report().notes.empty()) probe.detail += "; " + joined(engine->report().notes, "; ");
    } catch (const std::exception& error) {
      probe.detail = std::string(error.what()).substr(0, std::string(error.what()).find('\n'));
    }
    probes.push_back(std::move(probe));
  }
  return probes;
}

}  // namespace detflow
