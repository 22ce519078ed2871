#include "opencv_engine.h"

#include <spdlog/spdlog.h>

#include <opencv2/core.hpp>
#include <opencv2/core/ocl.hpp>
#include <opencv2/dnn.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <regex>
#include <set>
#include <stdexcept>

#include "detflow/error.h"
#include "graph_rewrite.h"
#include "opencv_custom_layers.h"

namespace detflow::detail {
namespace {

constexpr const char* device_selector_variable = "OPENCV_OPENCL_DEVICE";
constexpr const char* allow_all_devices_variable = "OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES";

// OpenCV messages span several lines ("OpenCV(4.6.0) file:line: error: (code:text) ...\n> ...");
// detflow errors are one line, so keep the words and drop the location boilerplate.
std::string one_line(const std::string& message) {
  static const std::regex location(R"(OpenCV\([0-9.]+\) \S+:[0-9]+: error: \(-?[0-9]+:[^)]*\) ?)");
  std::string text = std::regex_replace(message, location, "");
  std::replace(text.begin(), text.end(), '\n', ' ');
  text = std::regex_replace(text, std::regex(R"((^|\s)>\s)"), " ");
  text = std::regex_replace(text, std::regex(R"(\s+)"), " ");
  const auto first = text.find_first_not_of(' ');
  const auto last = text.find_last_not_of(' ');
  return first == std::string::npos ? std::string("(no message)") : text.substr(first, last - first + 1);
}

void warn_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> logged;
  const std::lock_guard lock(mutex);
  if (logged.insert(message).second) spdlog::warn("{}", message);
}

// OpenCV reads both variables lazily: the device selector when it first creates an OpenCL
// context, the DNN switch the first time a Net is set up for OpenCL. Setting them here, before
// anything in detflow touches OpenCL, is early enough; a value the user set is kept.
void prepare_opencl_environment() {
  static std::once_flag once;
  std::call_once(once, [] {
    ::setenv(device_selector_variable, ":GPU|CPU:", 0);
    ::setenv(allow_all_devices_variable, "1", 0);
  });
}

struct OpenClDevice {
  bool usable = false;
  bool float16 = false;
  std::string name;
  std::string problem;  // why it is not usable
};

const OpenClDevice& opencl_device() {
  static const OpenClDevice device = [] {
    prepare_opencl_environment();
    OpenClDevice found;
    try {
      if (!cv::ocl::haveOpenCL()) {
        found.problem = "no OpenCL runtime (libOpenCL / an ICD) found";
      } else if (!cv::ocl::useOpenCL() || !cv::ocl::Device::getDefault().available()) {
        found.problem = std::string("no OpenCL device matches ") + device_selector_variable + "='" +
                        (std::getenv(device_selector_variable) ? std::getenv(device_selector_variable) : "") + "'";
      } else {
        const auto& default_device = cv::ocl::Device::getDefault();
        found.usable = true;
        found.name = default_device.name();
        found.float16 = default_device.isExtensionSupported("cl_khr_fp16");
      }
    } catch (const cv::Exception& error) {
      found.problem = one_line(error.what());
    }
    return found;
  }();
  return device;
}

int opencv_target_id(const std::string& target) {
  if (target == "cpu") return cv::dnn::DNN_TARGET_CPU;
  if (target == "opencl") return cv::dnn::DNN_TARGET_OPENCL;
  if (target == "opencl_fp16") return cv::dnn::DNN_TARGET_OPENCL_FP16;
  throw Error("OpenCV target '" + target + "' is not one of: cpu, opencl, opencl_fp16");
}

std::string opencv_target_name(int target) {
  switch (target) {
    case cv::dnn::DNN_TARGET_CPU:
      return "cpu";
    case cv::dnn::DNN_TARGET_OPENCL:
      return "opencl";
    case cv::dnn::DNN_TARGET_OPENCL_FP16:
      return "opencl_fp16";
    default:
      return "target " + std::to_string(target);
  }
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t axis = 0; axis < shape.size(); ++axis) text += (axis ? ", " : "") + std::to_string(shape[axis]);
  return text + "]";
}

std::vector<std::int64_t> mat_shape(const cv::Mat& mat) {
  std::vector<std::int64_t> shape;
  for (int axis = 0; axis < mat.dims; ++axis) shape.push_back(mat.size[axis]);
  return shape;
}

// On the OpenCL target, OpenCV 4.6 can hand a stale buffer to the layers after an in-place
// reshape (Reshape, Flatten, Identity) of a host layer's output (detflow's custom layers run on
// the host: OpenCV copies their outputs to the device after forward()). Seen on YOLOv10's
// top-k tail (TopK -> Unsqueeze -> Flatten -> Gather, with a second consumer of the Unsqueeze):
// the Flatten read another tensor's indices, every box was wrong (F1 0 against ONNX Runtime)
// while each layer was right when its output was requested. Requesting such a reshape's output
// from forward() keeps its buffer out of OpenCV's in-place and reuse bookkeeping; the tensors
// are small (a reshape of a host layer's output is a post-processing tail), so this costs
// little. Returns those layers' names.
std::vector<std::string> aliases_of_host_layer_outputs(cv::dnn::Net& net) {
  std::vector<std::string> names;
  for (const auto& name : net.getLayerNames()) {
    const int id = net.getLayerId(name);
    const auto layer = net.getLayer(id);
    if (layer->type != "Reshape" && layer->type != "Flatten" && layer->type != "Identity") continue;
    for (const auto& input : net.getLayerInputs(id)) {
      if (input && input->type.rfind("Detflow", 0) == 0) {
        names.push_back(name);
        break;
      }
    }
  }
  return names;
}

std::int64_t element_count(const std::vector<std::int64_t>& shape) {
  std::int64_t count = 1;
  for (const auto dim : shape) count *= dim;
  return count;
}

class OpenCvEngine final : public Engine {
 public:
  OpenCvEngine(const ModelInfo& model, const EngineOptions& options, const InputShapeDecision& shape) {
    const int requested = opencv_target_id(options.target.empty() ? std::string("cpu") : options.target);
    report_.backend = "opencv";
    describe_inputs(model, shape);
    for (const auto& output : model.outputs) output_names_.push_back(output.name);

    RewriteResult rewritten = rewrite_for_opencv(model.path, shape);
    for (const auto& line : rewritten.applied) {
      spdlog::info("opencv engine: {}: {}", model.path.filename().string(), line);
      report_.notes.push_back("graph rewrite: " + line);
    }
    // The rewrite may route nodes to detflow's custom layers; OpenCV instantiates layers while
    // importing, so they must be registered first (once per process).
    register_opencv_custom_layers();
    try {
      net_ = cv::dnn::readNetFromONNX(rewritten.model_bytes.data(), rewritten.model_bytes.size());
    } catch (const cv::Exception& error) {
      throw Error("OpenCV " + std::string(CV_VERSION) + " cannot load '" + model.path.string() +
                  "': " + one_line(error.what()));
    }
    if (net_.empty()) throw Error("OpenCV cannot load '" + model.path.string() + "': the network is empty");
    net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    if (options.intra_op_threads > 0) {
      cv::setNumThreads(options.intra_op_threads);
      report_.notes.push_back("cv::setNumThreads(" + std::to_string(options.intra_op_threads) +
                              ") applies to all of OpenCV in this process");
    }

    int target = choose_target(requested);
    forward_names_ = output_names_;
    if (target != cv::dnn::DNN_TARGET_CPU) {
      const std::vector<std::string> pinned = aliases_of_host_layer_outputs(net_);
      forward_names_.insert(forward_names_.end(), pinned.begin(), pinned.end());
      if (!pinned.empty()) {
        report_.notes.push_back(std::to_string(pinned.size()) +
                                " reshapes of host-layer outputs kept as extra outputs on OpenCL");
      }
    }
    warm_up(model, target);
  }

  const EngineReport& report() const override { return report_; }
  const std::vector<TensorInfo>& inputs() const override { return inputs_; }
  const std::vector<TensorInfo>& outputs() const override { return outputs_; }

  // cv::dnn::Net is not thread-safe: every worker loads its own.
  std::unique_ptr<Engine> share() const override { return nullptr; }

  void run(std::span<const Tensor> inputs, std::vector<Tensor>& outputs) override {
    for (std::size_t position = 0; position < inputs_.size(); ++position) {
      const Tensor& tensor = matching_input(inputs, position);
      const auto& expected = input_shapes_[position];
      if (tensor.type() != ElementType::float32 || tensor.shape() != expected) {
        throw Error("OpenCV engine input '" + inputs_[position].name + "' must be float " + shape_text(expected) +
                    ", got " + std::string(element_type_name(tensor.type())) + " " + shape_text(tensor.shape()));
      }
      std::vector<int> sizes(expected.begin(), expected.end());
      // A header over the caller's buffer: OpenCV only reads it (setInput copies into the Net).
      const cv::Mat view(static_cast<int>(sizes.size()), sizes.data(), CV_32F, const_cast<std::byte*>(tensor.bytes()));
      net_.setInput(view, inputs_[position].name);
    }
    try {
      net_.forward(output_mats_, forward_names_);
    } catch (const cv::Exception& error) {
      throw std::runtime_error("OpenCV forward failed: " + one_line(error.what()));
    }
    outputs.resize(outputs_.size());
    for (std::size_t index = 0; index < outputs_.size(); ++index) {
      copy_output(index, outputs[index]);
    }
  }

 private:
  void describe_inputs(const ModelInfo& model, const InputShapeDecision& shape) {
    for (std::size_t position = 0; position < model.inputs.size(); ++position) {
      const TensorInfo& declared = model.inputs[position];
      if (declared.type != ElementType::float32 && declared.type != ElementType::float16) {
        throw Error("OpenCV engine takes float inputs; input '" + declared.name + "' of '" + model.path.string() +
                    "' is " + declared.type_name);
      }
      const bool is_image = shape.input_name.empty() ? position == 0 : declared.name == shape.input_name;
      std::vector<std::int64_t> fixed = is_image ? shape.shape : declared.fixed_shape();
      if (fixed.empty() || std::any_of(fixed.begin(), fixed.end(), [](std::int64_t dim) { return dim < 0; })) {
        throw Error("OpenCV engine needs a fixed shape for input '" + declared.name + "', the model declares " +
                    declared.to_string());
      }
      TensorInfo info;
      info.name = declared.name;
      info.type = ElementType::float32;
      info.type_name = std::string(element_type_name(ElementType::float32));
      info.has_shape = true;
      for (const auto dim : fixed) info.shape.push_back(Dim{dim, {}});
      inputs_.push_back(std::move(info));
      input_shapes_.push_back(std::move(fixed));
    }
  }

  // The target to try first: the request, unless this machine cannot serve it.
  int choose_target(int requested) {
    if (requested == cv::dnn::DNN_TARGET_CPU) return requested;
    const OpenClDevice& device = opencl_device();
    if (!device.usable) {
      fall_back("OpenCV target " + opencv_target_name(requested) + " unavailable (" + device.problem +
                "): running on cpu");
      return cv::dnn::DNN_TARGET_CPU;
    }
    if (requested == cv::dnn::DNN_TARGET_OPENCL_FP16 && !device.float16) {
      fall_back("OpenCV target opencl_fp16 unavailable (OpenCL device '" + device.name +
                "' lacks cl_khr_fp16): running on opencl (fp32)");
      return cv::dnn::DNN_TARGET_OPENCL;
    }
    return requested;
  }

  void fall_back(const std::string& message) {
    report_.notes.push_back(message);
    warn_once(message);
  }

  // One run on zeros: compiles OpenCL kernels now rather than on the first frame, proves the
  // model runs, and tells the output shapes and the target OpenCV really uses.
  void warm_up(const ModelInfo& model, int target) {
    std::vector<cv::Mat> zeros;
    for (std::size_t position = 0; position < inputs_.size(); ++position) {
      std::vector<int> sizes(input_shapes_[position].begin(), input_shapes_[position].end());
      zeros.emplace_back(static_cast<int>(sizes.size()), sizes.data(), CV_32F, cv::Scalar(0));
    }
    auto forward = [&](int chosen) {
      net_.setPreferableTarget(chosen);
      for (std::size_t position = 0; position < inputs_.size(); ++position) {
        net_.setInput(zeros[position], inputs_[position].name);
      }
      net_.forward(output_mats_, forward_names_);
    };
    try {
      forward(target);
    } catch (const cv::Exception& error) {
      if (target == cv::dnn::DNN_TARGET_CPU) {
        throw Error("OpenCV " + std::string(CV_VERSION) + " cannot run '" + model.path.string() +
                    "': " + one_line(error.what()));
      }
      fall_back("OpenCV target " + opencv_target_name(target) + " failed on '" + model.path.filename().string() +
                "' (" + one_line(error.what()) + "): running on cpu");
      try {
        forward(cv::dnn::DNN_TARGET_CPU);
      } catch (const cv::Exception& cpu_error) {
        throw Error("OpenCV " + std::string(CV_VERSION) + " cannot run '" + model.path.string() +
                    "': " + one_line(cpu_error.what()));
      }
      target = cv::dnn::DNN_TARGET_CPU;
    }
    // OpenCV may switch targets by itself (e.g. OpenCL on a device it does not trust); the
    // layers carry the target it settled on.
    const std::vector<int> output_layers = net_.getUnconnectedOutLayers();
    const int in_use = output_layers.empty() ? target : net_.getLayer(output_layers.front())->preferableTarget;
    if (in_use != target) {
      fall_back("OpenCV switched target " + opencv_target_name(target) + " to " + opencv_target_name(in_use) +
                " by itself (see its log above)");
    }
    report_.targets = {opencv_target_name(in_use)};

    for (std::size_t index = 0; index < output_names_.size(); ++index) {
      const cv::Mat& produced = output_mats_[index];
      const TensorInfo& declared = model.outputs[index];
      std::vector<std::int64_t> shape = declared.fixed_shape();
      const bool declared_fits = declared.has_shape && !shape.empty() &&
                                 std::none_of(shape.begin(), shape.end(), [](std::int64_t dim) { return dim < 0; }) &&
                                 element_count(shape) == static_cast<std::int64_t>(produced.total());
      if (!declared_fits) shape = mat_shape(produced);
      TensorInfo info;
      info.name = declared.name;
      info.type = ElementType::float32;
      info.type_name = std::string(element_type_name(ElementType::float32));
      info.has_shape = true;
      for (const auto dim : shape) info.shape.push_back(Dim{dim, {}});
      outputs_.push_back(std::move(info));
      output_shapes_.push_back(std::move(shape));
    }
  }

  const Tensor& matching_input(std::span<const Tensor> inputs, std::size_t position) const {
    const std::string& name = inputs_[position].name;
    for (const auto& tensor : inputs) {
      if (tensor.name == name) return tensor;
    }
    if (position < inputs.size() && inputs[position].name.empty()) return inputs[position];
    throw Error("OpenCV engine: no input tensor named '" + name + "' (nor an unnamed one at position " +
                std::to_string(position) + ") among " + std::to_string(inputs.size()) + " inputs");
  }

  void copy_output(std::size_t index, Tensor& destination) {
    const cv::Mat& produced = output_mats_[index];
    const auto& shape = output_shapes_[index];
    if (static_cast<std::int64_t>(produced.total()) != element_count(shape)) {
      throw std::runtime_error("OpenCV output '" + output_names_[index] + "' has " + std::to_string(produced.total()) +
                               " elements, expected " + shape_text(shape));
    }
    destination.name = output_names_[index];
    destination.reshape(ElementType::float32, shape);
    if (produced.type() == CV_32F && produced.isContinuous()) {
      std::memcpy(destination.bytes(), produced.ptr(), destination.byte_size());
    } else {
      // Rare: an integer or strided output; convert straight into the caller's buffer.
      cv::Mat target(1, static_cast<int>(produced.total()), CV_32F, destination.bytes());
      produced.reshape(1, 1).convertTo(target, CV_32F);
    }
  }

  cv::dnn::Net net_;
  EngineReport report_;
  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
  std::vector<std::vector<std::int64_t>> input_shapes_;
  std::vector<std::vector<std::int64_t>> output_shapes_;
  std::vector<cv::String> output_names_;
  // What forward() is asked for: the model's outputs first, then the layers kept alive on
  // OpenCL (aliases_of_host_layer_outputs); output_mats_[i] for i < output_names_.size() are
  // the model's outputs.
  std::vector<cv::String> forward_names_;
  std::vector<cv::Mat> output_mats_;  // reused by every run
};

}  // namespace

std::unique_ptr<Engine> create_opencv_engine(const ModelInfo& model, const EngineOptions& options,
                                             const InputShapeDecision& shape) {
  return std::make_unique<OpenCvEngine>(model, options, shape);
}

std::vector<std::string> opencv_targets_available() {
  std::vector<std::string> targets{"cpu"};
  const OpenClDevice& device = opencl_device();
  if (device.usable) {
    targets.emplace_back("opencl");
    if (device.float16) targets.emplace_back("opencl_fp16");
  }
  return targets;
}

}  // namespace detflow::detail
