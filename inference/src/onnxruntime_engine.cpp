#include "onnxruntime_engine.h"

#include <onnxruntime_cxx_api.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "detflow/error.h"

namespace detflow::detail {

namespace {

// Sessions kept in static objects can outlive any other static, so the environment is
// created once and deliberately never destroyed.
Ort::Env& environment() {
  // The library found at run time may be another release than the headers (arm64 boards
  // take a newer one): the C API is versioned, and a library older than the headers'
  // ORT_API_VERSION has no API table for it, which the C++ wrapper would dereference.
  static const bool api_checked = [] {
    const OrtApiBase* base = OrtGetApiBase();
    if (base->GetApi(ORT_API_VERSION) == nullptr) {
      throw Error(std::string("ONNX Runtime library ") + base->GetVersionString() + " does not serve API version " +
                  std::to_string(ORT_API_VERSION) + " that detflow was built with: install ONNX Runtime 1." +
                  std::to_string(ORT_API_VERSION) + " or newer (scripts/fetch-onnxruntime.sh, or ONNXRUNTIME_ROOT)");
    }
    spdlog::debug("ONNX Runtime library {} (headers' API version {})", base->GetVersionString(), ORT_API_VERSION);
    return true;
  }();
  (void)api_checked;
  // ERROR, not WARNING: ONNX Runtime warns about every initializer its optimiser removes,
  // which buries detflow's own one-line reports; real failures still surface as exceptions.
  static Ort::Env* const env = new Ort::Env(ORT_LOGGING_LEVEL_ERROR, "detflow");
  return *env;
}

enum class AppendCall { implicit_cpu, cuda, tensorrt, rocm, dnnl, cann, openvino, vitisai, generic };

struct ProviderKind {
  const char* short_name;
  const char* ort_name;
  AppendCall call;
  const char* generic_name;  // the name SessionOptionsAppendExecutionProvider takes
};

constexpr std::array<ProviderKind, 13> provider_kinds{{
    {"cpu", "CPUExecutionProvider", AppendCall::implicit_cpu, ""},
    {"cuda", "CUDAExecutionProvider", AppendCall::cuda, ""},
    {"tensorrt", "TensorrtExecutionProvider", AppendCall::tensorrt, ""},
    {"rocm", "ROCMExecutionProvider", AppendCall::rocm, ""},
    {"dnnl", "DnnlExecutionProvider", AppendCall::dnnl, ""},
    {"cann", "CANNExecutionProvider", AppendCall::cann, ""},
    {"openvino", "OpenVINOExecutionProvider", AppendCall::openvino, ""},
    {"vitisai", "VitisAIExecutionProvider", AppendCall::vitisai, ""},
    {"qnn", "QNNExecutionProvider", AppendCall::generic, "QNN"},
    {"xnnpack", "XnnpackExecutionProvider", AppendCall::generic, "XNNPACK"},
    {"coreml", "CoreMLExecutionProvider", AppendCall::generic, "CoreML"},
    {"webgpu", "WebGpuExecutionProvider", AppendCall::generic, "WebGPU"},
    {"azure", "AzureExecutionProvider", AppendCall::generic, "AZURE"},
}};

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::string joined(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : separator) + item;
  return text;
}

const ProviderKind& provider_kind(const std::string& name) {
  const auto wanted = lower(name);
  for (const auto& kind : provider_kinds) {
    if (wanted == kind.short_name || wanted == lower(kind.ort_name)) return kind;
  }
  throw Error("ONNX Runtime execution provider '" + name +
              "' is not one detflow knows; accepted: " + joined(onnxruntime_providers_known()));
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

void warn_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> said;
  std::lock_guard lock(mutex);
  if (said.insert(message).second) spdlog::warn("{}", message);
}

// The provider-specific C calls take key/value arrays; this keeps the strings alive.
struct KeyValueArrays {
  std::vector<const char*> keys;
  std::vector<const char*> values;
  explicit KeyValueArrays(const std::map<std::string, std::string>& options) {
    for (const auto& [key, value] : options) {
      keys.push_back(key.c_str());
      values.push_back(value.c_str());
    }
  }
};

template <typename Options, typename Create, typename Update, typename Append, typename Release>
void append_with_options_object(Ort::SessionOptions& session_options, const std::map<std::string, std::string>& options,
                                Create create, Update update, Append append, Release release) {
  const auto& api = Ort::GetApi();
  Options* raw = nullptr;
  Ort::ThrowOnError((api.*create)(&raw));
  std::unique_ptr<Options, void (*)(Options*)> owned(raw, api.*release);
  KeyValueArrays arrays(options);
  Ort::ThrowOnError((api.*update)(owned.get(), arrays.keys.data(), arrays.values.data(), arrays.keys.size()));
  Ort::ThrowOnError((api.*append)(session_options, owned.get()));
}

void append_provider(Ort::SessionOptions& session_options, const ProviderKind& kind,
                     const std::map<std::string, std::string>& options) {
  std::unordered_map<std::string, std::string> unordered(options.begin(), options.end());
  switch (kind.call) {
    case AppendCall::implicit_cpu:
      return;
    case AppendCall::cuda:
      return append_with_options_object<OrtCUDAProviderOptionsV2>(
          session_options, options, &OrtApi::CreateCUDAProviderOptions, &OrtApi::UpdateCUDAProviderOptions,
          &OrtApi::SessionOptionsAppendExecutionProvider_CUDA_V2, &OrtApi::ReleaseCUDAProviderOptions);
    case AppendCall::tensorrt:
      return append_with_options_object<OrtTensorRTProviderOptionsV2>(
          session_options, options, &OrtApi::CreateTensorRTProviderOptions, &OrtApi::UpdateTensorRTProviderOptions,
          &OrtApi::SessionOptionsAppendExecutionProvider_TensorRT_V2, &OrtApi::ReleaseTensorRTProviderOptions);
    case AppendCall::rocm:
      return append_with_options_object<OrtROCMProviderOptions>(
          session_options, options, &OrtApi::CreateROCMProviderOptions, &OrtApi::UpdateROCMProviderOptions,
          &OrtApi::SessionOptionsAppendExecutionProvider_ROCM, &OrtApi::ReleaseROCMProviderOptions);
    case AppendCall::dnnl:
      return append_with_options_object<OrtDnnlProviderOptions>(
          session_options, options, &OrtApi::CreateDnnlProviderOptions, &OrtApi::UpdateDnnlProviderOptions,
          &OrtApi::SessionOptionsAppendExecutionProvider_Dnnl, &OrtApi::ReleaseDnnlProviderOptions);
    case AppendCall::cann:
      return append_with_options_object<OrtCANNProviderOptions>(
          session_options, options, &OrtApi::CreateCANNProviderOptions, &OrtApi::UpdateCANNProviderOptions,
          &OrtApi::SessionOptionsAppendExecutionProvider_CANN, &OrtApi::ReleaseCANNProviderOptions);
    case AppendCall::openvino:
      session_options.AppendExecutionProvider_OpenVINO_V2(unordered);
      return;
    case AppendCall::vitisai:
      session_options.AppendExecutionProvider_VitisAI(unordered);
      return;
    case AppendCall::generic:
      session_options.AppendExecutionProvider(kind.generic_name, unordered);
      return;
  }
}

ElementType element_type_from_ort(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      return ElementType::float32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
      return ElementType::float16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
      return ElementType::uint8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
      return ElementType::int8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      return ElementType::int32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
      return ElementType::int64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
      return ElementType::boolean;
    default:
      return ElementType::unknown;
  }
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t axis = 0; axis < shape.size(); ++axis) {
    text += (axis ? ", " : "") + (shape[axis] < 0 ? std::string("?") : std::to_string(shape[axis]));
  }
  return text + "]";
}

std::size_t element_count_of(const std::vector<std::int64_t>& shape) {
  std::size_t count = 1;
  for (const auto dim : shape) count *= static_cast<std::size_t>(dim);
  return count;
}

// Operators whose output size depends on tensor values rather than on input shapes; with
// them in the graph, an output shape learned from one run may not hold for the next.
bool has_value_dependent_shapes(const ModelInfo& model) {
  static const std::array<const char*, 7> operators{"NonZero", "NonMaxSuppression", "Unique", "Compress", "Loop", "If",
                                                    "Scan"};
  return std::any_of(operators.begin(), operators.end(),
                     [&](const char* op) { return model.operator_histogram.contains(op); });
}

class OnnxRuntimeEngine final : public Engine {
 public:
  OnnxRuntimeEngine(const ModelInfo& model, const EngineOptions& options, const InputShapeDecision& shape)
      : model_(model), shape_(shape), model_path_(model.path.string()) {
    report_.backend = "onnxruntime";
    Ort::SessionOptions session_options;
    session_options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    session_options.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
    session_options.SetInterOpNumThreads(1);
    if (options.intra_op_threads < 0) {
      throw Error("intra_op_threads " + std::to_string(options.intra_op_threads) +
                  " is negative; accepted: 0 (runtime default) or a thread count");
    }
    if (options.intra_op_threads > 0) session_options.SetIntraOpNumThreads(options.intra_op_threads);
    fix_free_dimensions(model, shape, session_options);
    append_providers(options, session_options);

    try {
      session_ = std::make_shared<Ort::Session>(environment(), model.path.c_str(), session_options);
    } catch (const Ort::Exception& error) {
      throw Error("ONNX Runtime cannot load model '" + model_path_ + "': " + first_line(error.what()));
    }
    describe_inputs(shape);
    describe_outputs(model);
  }

  // A sharer of `original`'s session with bindings of its own.
  struct ShareSession {};
  OnnxRuntimeEngine(ShareSession, const OnnxRuntimeEngine& original)
      : model_(original.model_),
        shape_(original.shape_),
        model_path_(original.model_path_),
        report_(original.report_),
        symbol_values_(original.symbol_values_),
        session_(original.session_) {
    describe_inputs(shape_);
    describe_outputs(model_);
  }

  std::unique_ptr<Engine> share() const override { return std::make_unique<OnnxRuntimeEngine>(ShareSession{}, *this); }

  const EngineReport& report() const override { return report_; }
  const std::vector<TensorInfo>& inputs() const override { return input_infos_; }
  const std::vector<TensorInfo>& outputs() const override { return output_infos_; }

  void run(std::span<const Tensor> inputs, std::vector<Tensor>& outputs) override {
    bind_inputs(inputs);
    bind_outputs(outputs);
    try {
      session_->Run(run_options_, input_names_.data(), input_values_.data(), input_values_.size(), output_names_.data(),
                    output_values_.data(), output_values_.size());
    } catch (const Ort::Exception& error) {
      if (!demote_learned_outputs()) {
        throw Error("ONNX Runtime failed to run model '" + model_path_ + "': " + first_line(error.what()));
      }
      bind_outputs(outputs);
      try {
        session_->Run(run_options_, input_names_.data(), input_values_.data(), input_values_.size(),
                      output_names_.data(), output_values_.data(), output_values_.size());
      } catch (const Ort::Exception& retry_error) {
        throw Error("ONNX Runtime failed to run model '" + model_path_ + "': " + first_line(retry_error.what()));
      }
    }
    collect_runtime_allocated(outputs);
  }

 private:
  struct Binding {
    std::string name;
    ElementType type = ElementType::unknown;
    ONNXTensorElementDataType ort_type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    std::vector<std::int64_t> shape;  // fixed for inputs and for preallocated outputs
    std::size_t byte_size = 0;
    // Outputs only: true when ONNX Runtime writes into the caller's tensor; false when it
    // allocates (shape unknown before the run) and run() copies the result out.
    bool preallocated = true;
    bool shape_was_learned = false;            // output shape known only from the probe run
    const std::byte* bound_address = nullptr;  // caller buffer the cached Ort::Value wraps
  };

  void fix_free_dimensions(const ModelInfo& model, const InputShapeDecision& shape,
                           Ort::SessionOptions& session_options) {
    for (const auto& input : model.inputs) {
      if (input.name != shape.input_name) continue;
      for (std::size_t axis = 0; axis < input.shape.size() && axis < shape.shape.size(); ++axis) {
        const auto& dim = input.shape[axis];
        if (!dim.is_fixed() && !dim.symbol.empty() && !symbol_values_.contains(dim.symbol)) {
          symbol_values_[dim.symbol] = shape.shape[axis];
          session_options.AddFreeDimensionOverrideByName(dim.symbol.c_str(), shape.shape[axis]);
        }
      }
    }
  }

  void append_providers(const EngineOptions& options, Ort::SessionOptions& session_options) {
    std::vector<std::string> wanted = options.providers;
    if (wanted.empty()) wanted = {options.target.empty() ? std::string("cpu") : options.target};
    std::vector<const ProviderKind*> kinds;
    for (const auto& name : wanted) kinds.push_back(&provider_kind(name));  // throws on unknown names

    const auto available = Ort::GetAvailableProviders();
    for (const auto* kind : kinds) {
      if (kind->call == AppendCall::implicit_cpu) break;  // CPU takes whatever is left; later entries are moot
      if (std::find(available.begin(), available.end(), kind->ort_name) == available.end()) {
        const auto message = std::string("ONNX Runtime provider '") + kind->short_name +
                             "' is not in this build (available: " + joined(available) + "); skipped";
        warn_once(message);
        report_.notes.push_back(message);
        continue;
      }
      const auto found = options.provider_options.find(kind->short_name);
      static const std::map<std::string, std::string> no_options;
      try {
        append_provider(session_options, *kind, found == options.provider_options.end() ? no_options : found->second);
        report_.targets.push_back(kind->ort_name);
      } catch (const Ort::Exception& error) {
        const auto message = std::string("ONNX Runtime provider '") + kind->short_name + "' failed to initialise (" +
                             first_line(error.what()) + "); skipped";
        warn_once(message);
        report_.notes.push_back(message);
      }
    }
    report_.targets.push_back("CPUExecutionProvider");
  }

  void describe_inputs(const InputShapeDecision& shape) {
    Ort::AllocatorWithDefaultOptions allocator;
    const std::size_t count = session_->GetInputCount();
    for (std::size_t index = 0; index < count; ++index) {
      Binding binding;
      binding.name = session_->GetInputNameAllocated(index, allocator).get();
      const auto type_info = session_->GetInputTypeInfo(index);
      if (type_info.GetONNXType() != ONNX_TYPE_TENSOR) {
        throw Error("model '" + model_path_ + "' input '" + binding.name +
                    "' is not a tensor; detflow feeds tensors only");
      }
      const auto tensor_info = type_info.GetTensorTypeAndShapeInfo();
      binding.ort_type = tensor_info.GetElementType();
      binding.type = element_type_from_ort(binding.ort_type);
      if (binding.type == ElementType::unknown) {
        throw Error("model '" + model_path_ + "' input '" + binding.name + "' has ONNX element type " +
                    std::to_string(binding.ort_type) +
                    "; detflow feeds float, float16, uint8, int8, int32, int64, bool");
      }
      binding.shape = tensor_info.GetShape();
      if (binding.name == shape.input_name) {
        if (shape.shape.size() != binding.shape.size()) {
          throw Error("model '" + model_path_ + "' input '" + binding.name + "' has rank " +
                      std::to_string(binding.shape.size()) + " in ONNX Runtime but the decided shape is " +
                      shape_text(shape.shape));
        }
        binding.shape = shape.shape;
      } else {
        const auto symbols = tensor_info.GetSymbolicDimensions();
        for (std::size_t axis = 0; axis < binding.shape.size(); ++axis) {
          if (binding.shape[axis] >= 0) continue;
          const auto found = axis < symbols.size() ? symbol_values_.find(symbols[axis]) : symbol_values_.end();
          binding.shape[axis] = found != symbol_values_.end() ? found->second : 1;
        }
        if (tensor_info.GetShape() != binding.shape) {
          report_.notes.push_back("input '" + binding.name + "': dynamic dims fixed to " + shape_text(binding.shape));
        }
      }
      binding.byte_size = element_count_of(binding.shape) * element_size(binding.type);
      input_infos_.push_back(tensor_info_of(binding));
      input_bindings_.push_back(std::move(binding));
      input_values_.emplace_back(nullptr);
    }
    for (const auto& binding : input_bindings_) input_names_.push_back(binding.name.c_str());
  }

  void describe_outputs(const ModelInfo& model) {
    Ort::AllocatorWithDefaultOptions allocator;
    const std::size_t count = session_->GetOutputCount();
    bool any_unknown = false;
    for (std::size_t index = 0; index < count; ++index) {
      Binding binding;
      binding.name = session_->GetOutputNameAllocated(index, allocator).get();
      const auto type_info = session_->GetOutputTypeInfo(index);
      if (type_info.GetONNXType() != ONNX_TYPE_TENSOR) {
        throw Error("model '" + model_path_ + "' output '" + binding.name +
                    "' is not a tensor; detflow reads tensors only");
      }
      const auto tensor_info = type_info.GetTensorTypeAndShapeInfo();
      binding.ort_type = tensor_info.GetElementType();
      binding.type = element_type_from_ort(binding.ort_type);
      if (binding.type == ElementType::unknown) {
        throw Error("model '" + model_path_ + "' output '" + binding.name + "' has ONNX element type " +
                    std::to_string(binding.ort_type) +
                    "; detflow reads float, float16, uint8, int8, int32, int64, bool");
      }
      binding.shape = tensor_info.GetShape();
      binding.preallocated = std::all_of(binding.shape.begin(), binding.shape.end(), [](auto dim) { return dim >= 0; });
      any_unknown = any_unknown || !binding.preallocated;
      binding.byte_size = binding.preallocated ? element_count_of(binding.shape) * element_size(binding.type) : 0;
      output_bindings_.push_back(std::move(binding));
      output_values_.emplace_back(nullptr);
    }
    for (const auto& binding : output_bindings_) output_names_.push_back(binding.name.c_str());

    if (any_unknown) learn_output_shapes(model);
    for (const auto& binding : output_bindings_) output_infos_.push_back(tensor_info_of(binding));
  }

  // Output dims that stay symbolic after the input is fixed are learned by running once on
  // zeros. Unless the graph has value-dependent shapes, those outputs are then written in
  // place like fixed ones; run() falls back to copying if a later run disagrees.
  void learn_output_shapes(const ModelInfo& model) {
    std::vector<Tensor> zeros;
    for (const auto& binding : input_bindings_) {
      Tensor tensor(binding.type, binding.shape);
      tensor.name = binding.name;
      if (tensor.byte_size() > 0) std::memset(tensor.bytes(), 0, tensor.byte_size());
      zeros.push_back(std::move(tensor));
    }
    std::vector<Tensor> results;
    run(zeros, results);
    const bool value_dependent = has_value_dependent_shapes(model);
    std::vector<std::string> learned;
    for (std::size_t index = 0; index < output_bindings_.size(); ++index) {
      auto& binding = output_bindings_[index];
      if (binding.preallocated) continue;
      binding.shape = results[index].shape();
      binding.byte_size = results[index].byte_size();
      binding.shape_was_learned = true;
      binding.preallocated = !value_dependent;
      learned.push_back(binding.name + " " + shape_text(binding.shape));
    }
    report_.notes.push_back("output shapes learned from one run on zeros: " + joined(learned) +
                            (value_dependent ? " (value-dependent operators: copied out per run)" : ""));
  }

  bool demote_learned_outputs() {
    bool demoted = false;
    for (auto& binding : output_bindings_) {
      if (binding.preallocated && binding.shape_was_learned) {
        binding.preallocated = false;
        binding.bound_address = nullptr;
        demoted = true;
      }
    }
    if (demoted) {
      warn_once("model '" + model_path_ +
                "': an output shape changed between runs; ONNX Runtime outputs are now copied out per run");
    }
    return demoted;
  }

  static TensorInfo tensor_info_of(const Binding& binding) {
    TensorInfo info;
    info.name = binding.name;
    info.type = binding.type;
    info.type_name = std::string(element_type_name(binding.type));
    info.has_shape = true;
    for (const auto dim : binding.shape) info.shape.push_back(Dim{dim, {}});
    return info;
  }

  void bind_inputs(std::span<const Tensor> inputs) {
    if (inputs.size() != input_bindings_.size()) {
      throw Error("model '" + model_path_ + "' takes " + std::to_string(input_bindings_.size()) +
                  " input(s), run() got " + std::to_string(inputs.size()));
    }
    for (std::size_t position = 0; position < inputs.size(); ++position) {
      const Tensor& tensor = inputs[position];
      std::size_t index = position;
      if (!tensor.name.empty()) {
        index = 0;
        while (index < input_bindings_.size() && input_bindings_[index].name != tensor.name) ++index;
        if (index == input_bindings_.size()) {
          throw Error("model '" + model_path_ + "' has no input named '" + tensor.name + "'");
        }
      }
      auto& binding = input_bindings_[index];
      if (tensor.type() != binding.type || tensor.shape() != binding.shape) {
        throw Error("input '" + binding.name + "' is " + std::string(element_type_name(tensor.type())) + " " +
                    shape_text(tensor.shape()) + ", the engine takes " + std::string(element_type_name(binding.type)) +
                    " " + shape_text(binding.shape));
      }
      if (tensor.bytes() != binding.bound_address || !input_values_[index]) {
        // ONNX Runtime never writes to inputs; the const_cast only satisfies its signature.
        input_values_[index] =
            Ort::Value::CreateTensor(memory_info_, const_cast<std::byte*>(tensor.bytes()), binding.byte_size,
                                     binding.shape.data(), binding.shape.size(), binding.ort_type);
        binding.bound_address = tensor.bytes();
      }
    }
  }

  void bind_outputs(std::vector<Tensor>& outputs) {
    outputs.resize(output_bindings_.size());
    for (std::size_t index = 0; index < output_bindings_.size(); ++index) {
      auto& binding = output_bindings_[index];
      Tensor& tensor = outputs[index];
      if (tensor.name != binding.name) tensor.name = binding.name;
      if (!binding.preallocated) {
        output_values_[index] = Ort::Value(nullptr);
        continue;
      }
      if (tensor.type() != binding.type || tensor.shape() != binding.shape) tensor.reshape(binding.type, binding.shape);
      if (tensor.bytes() != binding.bound_address || !output_values_[index]) {
        output_values_[index] = Ort::Value::CreateTensor(memory_info_, tensor.bytes(), binding.byte_size,
                                                         binding.shape.data(), binding.shape.size(), binding.ort_type);
        binding.bound_address = tensor.bytes();
      }
    }
  }

  void collect_runtime_allocated(std::vector<Tensor>& outputs) {
    for (std::size_t index = 0; index < output_bindings_.size(); ++index) {
      auto& binding = output_bindings_[index];
      if (binding.preallocated) continue;
      Ort::Value& value = output_values_[index];
      const auto info = value.GetTensorTypeAndShapeInfo();
      const std::size_t rank = info.GetDimensionsCount();
      runtime_shape_.resize(rank);
      Ort::ThrowOnError(Ort::GetApi().GetDimensions(info, runtime_shape_.data(), rank));  // no vector per run
      Tensor& tensor = outputs[index];
      if (tensor.type() != binding.type || tensor.shape() != runtime_shape_)
        tensor.reshape(binding.type, runtime_shape_);
      if (tensor.byte_size() > 0) std::memcpy(tensor.bytes(), value.GetTensorRawData(), tensor.byte_size());
      value = Ort::Value(nullptr);
    }
  }

  ModelInfo model_;
  InputShapeDecision shape_;
  std::string model_path_;
  EngineReport report_;
  std::map<std::string, std::int64_t> symbol_values_;  // symbolic input dim -> decided size
  // Shared by every engine made with share(); Session::Run is thread-safe.
  std::shared_ptr<Ort::Session> session_;
  Ort::MemoryInfo memory_info_ = Ort::MemoryInfo::CreateCpu(OrtDeviceAllocator, OrtMemTypeCPU);
  Ort::RunOptions run_options_;
  std::vector<Binding> input_bindings_;
  std::vector<Binding> output_bindings_;
  std::vector<TensorInfo> input_infos_;
  std::vector<TensorInfo> output_infos_;
  std::vector<const char*> input_names_;
  std::vector<const char*> output_names_;
  // Parallel to the bindings, contiguous because Session::Run takes arrays.
  std::vector<Ort::Value> input_values_;
  std::vector<Ort::Value> output_values_;
  std::vector<std::int64_t> runtime_shape_;
};

}  // namespace

std::unique_ptr<Engine> create_onnxruntime_engine(const ModelInfo& model, const EngineOptions& options,
                                                  const InputShapeDecision& shape) {
  try {
    return std::make_unique<OnnxRuntimeEngine>(model, options, shape);
  } catch (const Ort::Exception& error) {
    throw Error("ONNX Runtime cannot use model '" + model.path.string() + "': " + first_line(error.what()));
  }
}

std::vector<std::string> onnxruntime_providers_available() {
  std::vector<std::string> names{"cpu"};
  const auto available = Ort::GetAvailableProviders();
  for (const auto& kind : provider_kinds) {
    if (kind.call == AppendCall::implicit_cpu) continue;
    if (std::find(available.begin(), available.end(), kind.ort_name) != available.end())
      names.push_back(kind.short_name);
  }
  return names;
}

std::vector<std::string> onnxruntime_providers_known() {
  std::vector<std::string> names;
  for (const auto& kind : provider_kinds) names.push_back(kind.short_name);
  return names;
}

}  // namespace detflow::detail
