#include "detflow/pipeline/detector.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "detflow/error.h"

namespace detflow {
namespace {

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::ostringstream joined;
  for (std::size_t index = 0; index < items.size(); ++index) joined << (index > 0 ? separator : "") << items[index];
  return joined.str();
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::ostringstream text;
  text << "[";
  for (std::size_t index = 0; index < shape.size(); ++index) text << (index > 0 ? ", " : "") << shape[index];
  text << "]";
  return text.str();
}

std::string resize_name(ResizeMode mode) {
  switch (mode) {
    case ResizeMode::letterbox_center:
      return "letterbox (centred)";
    case ResizeMode::letterbox_top_left:
      return "letterbox (top-left)";
    case ResizeMode::stretch:
      return "stretch";
  }
  return "unknown";
}

std::string number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

void check_fraction(const char* name, const std::optional<float>& value) {
  if (value && !(*value >= 0.0f && *value <= 1.0f)) {
    throw Error(std::string(name) + " " + number(*value) + " is out of range (expected 0 to 1)");
  }
}

bool all_digits(const std::string& text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](unsigned char character) { return std::isdigit(character); });
}

// Class filter entries are ids ("0") or names ("person"); the error lists some names so a
// typo is easy to fix.
std::vector<int> resolve_class_filter(const std::vector<std::string>& classes, const Labels& labels, int num_classes) {
  std::vector<int> ids;
  for (const auto& entry : classes) {
    int id = -1;
    if (all_digits(entry)) {
      id = std::stoi(entry);
      if (id >= num_classes) {
        throw Error("class id " + entry + " is out of range (the model has classes 0 to " +
                    std::to_string(num_classes - 1) + ")");
      }
    } else {
      id = labels.find(entry);
      if (id < 0 || id >= num_classes) {
        std::vector<std::string> examples;
        for (int known = 0; known < std::min(num_classes, 8); ++known) examples.push_back(labels.name(known));
        throw Error("unknown class '" + entry + "' (valid names include " + join(examples, ", ") +
                    (num_classes > 8 ? ", ..." : "") + "; or ids 0 to " + std::to_string(num_classes - 1) + ")");
      }
    }
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

DetectorSetup::DetectorSetup(const ModelSettings& settings, const EngineOptions& engine_options)
    : model_(read_model_info(settings.path)), engine_options_(engine_options) {
  if (settings.input_width < 0 || settings.input_height < 0) {
    throw Error("input size " + std::to_string(settings.input_width) + "x" + std::to_string(settings.input_height) +
                " is invalid (expected positive sizes, or 0 for the model's own)");
  }
  // One size given means a square input, as `imgsz: 320` does for Ultralytics.
  if (settings.input_width > 0) engine_options_.input_width = settings.input_width;
  if (settings.input_height > 0) engine_options_.input_height = settings.input_height;
  if (engine_options_.input_width > 0 && engine_options_.input_height == 0) {
    engine_options_.input_height = engine_options_.input_width;
  }
  if (engine_options_.input_height > 0 && engine_options_.input_width == 0) {
    engine_options_.input_width = engine_options_.input_height;
  }
  check_fraction("score_threshold", settings.score_threshold);
  check_fraction("iou_threshold", settings.iou_threshold);
  if (settings.pad_value && !(*settings.pad_value >= 0.0 && *settings.pad_value <= 255.0)) {
    throw Error("pad_value " + number(*settings.pad_value) + " is out of range (expected 0 to 255)");
  }

  input_shape_ = decide_input_shape(model_, engine_options_);
  first_engine_ = create_engine(model_, engine_options_);
  engine_report_ = first_engine_->report();
  if (first_engine_->inputs().empty()) throw Error("model " + settings.path.string() + " has no inputs");
  engine_input_ = first_engine_->inputs().front();

  // The engine's view of the input wins over the file's: it is what run() accepts.
  std::vector<std::int64_t> shape = engine_input_.fixed_shape();
  const bool fixed = shape.size() == 4 && std::all_of(shape.begin(), shape.end(), [](auto dim) { return dim > 0; });
  if (!fixed) shape = input_shape_.shape;
  if (shape.size() != 4) {
    throw Error("model " + settings.path.string() + ": input " + engine_input_.to_string() +
                " is not an image tensor (expected rank 4, NCHW or NHWC)");
  }
  const bool nhwc = input_shape_.nhwc;
  const int height = static_cast<int>(nhwc ? shape[1] : shape[2]);
  const int width = static_cast<int>(nhwc ? shape[2] : shape[3]);

  DecoderContext context;
  context.model = &model_;
  context.outputs = first_engine_->outputs();
  context.input_width = width;
  context.input_height = height;
  context.config = settings.decoder;
  family_ = choose_family(context, settings.family);
  decoder_ = family_.family->create(context);
  output_sanity_ = std::make_unique<OutputSanity>(model_, family_.family->name);
  const FamilyDefaults& defaults = family_.family->defaults;

  preprocess_spec_ = defaults.preprocess;
  preprocess_spec_.width = width;
  preprocess_spec_.height = height;
  preprocess_spec_.layout = nhwc ? Layout::nhwc : Layout::nchw;
  preprocess_spec_.type = engine_input_.type;
  if (preprocess_spec_.type != ElementType::float32 && preprocess_spec_.type != ElementType::float16 &&
      preprocess_spec_.type != ElementType::uint8) {
    throw Error("model " + settings.path.string() + ": input element type " + engine_input_.type_name +
                " is not supported (expected float, float16 or uint8)");
  }
  if (settings.resize) preprocess_spec_.resize = *settings.resize;
  if (settings.color) preprocess_spec_.color = *settings.color;
  if (settings.pad_value) preprocess_spec_.pad_value = *settings.pad_value;

  postprocess_options_ = defaults.postprocess;
  if (settings.score_threshold) postprocess_options_.score_threshold = *settings.score_threshold;
  if (settings.iou_threshold) postprocess_options_.iou_threshold = *settings.iou_threshold;
  if (settings.max_detections) postprocess_options_.max_detections = *settings.max_detections;
  if (settings.class_agnostic) postprocess_options_.class_agnostic = *settings.class_agnostic;

  labels_ = resolve_labels(model_, settings.labels_file, decoder_->num_classes());
  postprocess_options_.class_filter = resolve_class_filter(settings.classes, labels_, decoder_->num_classes());
}

std::unique_ptr<Engine> DetectorSetup::make_engine() {
  if (first_engine_) {
    // Backends that can share the loaded model (ONNX Runtime) serve every worker from the
    // first engine; the others hand it to the first worker and load anew for the rest.
    if (auto shared = first_engine_->share()) return shared;
    if (!first_engine_taken_) {
      first_engine_taken_ = true;
      return std::move(first_engine_);
    }
  }
  return create_engine(model_, engine_options_);
}

Tensor DetectorSetup::make_input_tensor() const {
  Tensor tensor;
  Preprocessor(preprocess_spec_).prepare(tensor, 1);
  tensor.name = engine_input_.name;
  return tensor;
}

void DetectorSetup::postprocess(std::span<const Tensor> outputs, const Geometry& geometry,
                                std::vector<Detection>& detections) const {
  decoder_->decode(outputs, geometry, postprocess_options_, detections);
  output_sanity_->observe(outputs, detections, geometry);
  for (auto& detection : detections) detection.label = labels_.name(detection.class_id);
}

std::vector<std::string> DetectorSetup::describe() const {
  std::vector<std::string> lines;
  lines.push_back("model: " + model_.path.string() + " (opset " + std::to_string(model_.default_opset()) +
                  (model_.producer_name.empty() ? "" : ", from " + model_.producer_name) + ")");
  lines.push_back("family: " + family_.family->name + " (" + family_.reason + ")");
  lines.push_back("input: " + input_shape_.input_name + " " + shape_text(input_shape_.shape) + " " +
                  (input_shape_.nhwc ? "NHWC" : "NCHW") + " " + std::string(element_type_name(preprocess_spec_.type)) +
                  " (" + input_shape_.reason + ")");
  std::string engine = "engine: " + engine_report_.backend;
  if (!engine_report_.targets.empty()) engine += " [" + join(engine_report_.targets, ", ") + "]";
  lines.push_back(engine);
  for (const auto& note : engine_report_.notes) lines.push_back("  " + note);
  const PreprocessSpec& spec = preprocess_spec_;
  lines.push_back("preprocess: " + resize_name(spec.resize) + " to " + std::to_string(spec.width) + "x" +
                  std::to_string(spec.height) + ", " + (spec.color == ColorOrder::rgb ? "RGB" : "BGR") + ", pad " +
                  number(spec.pad_value) + ", scale " + number(spec.scale) + ", mean [" + number(spec.mean[0]) + ", " +
                  number(spec.mean[1]) + ", " + number(spec.mean[2]) + "], std [" + number(spec.std[0]) + ", " +
                  number(spec.std[1]) + ", " + number(spec.std[2]) + "]");
  lines.push_back("labels: " + labels_.source() + " (" + std::to_string(decoder_->num_classes()) + " classes)");
  const PostprocessOptions& options = postprocess_options_;
  std::string thresholds = "thresholds: score >= " + number(options.score_threshold);
  if (options.nms) {
    thresholds += ", NMS IoU > " + number(options.iou_threshold) +
                  (options.class_agnostic ? " (class-agnostic)" : " (per class)");
  } else {
    thresholds += ", no NMS (end-to-end model)";
  }
  thresholds += ", at most " + (options.max_detections > 0 ? std::to_string(options.max_detections) : "all");
  lines.push_back(thresholds);
  if (!options.class_filter.empty()) {
    std::vector<std::string> names;
    for (int id : options.class_filter) names.push_back(labels_.name(id));
    lines.push_back("classes kept: " + join(names, ", "));
  }
  return lines;
}

}  // namespace detflow
