// model_info_fuzzer — the ONNX model reader and what detflow sets up from a model before the
// first frame, on arbitrary bytes:
//   read_model_info_from_bytes (protobuf parse, structural checks, onnx checker),
//   to_json(...).dump(2) and to_text (what `detflow inspect` prints),
//   decide_input_shape (input dims, metadata imgsz) and, for a model whose declared outputs are
//   all fixed, the family auto-detection, the decoder's construction and the labels (metadata
//   names), as pipeline/src/detector.cpp does with the shapes its engine reports.
// Accepted failure: detflow::Error; the reader's must name the model's path (model_info.h).
// (Names from the file may hold line breaks; the command line prints every error on one line.)
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "detflow/inference/describe.h"
#include "detflow/inference/engine.h"
#include "detflow/inference/model_info.h"
#include "detflow/post/decoder.h"
#include "detflow/post/labels.h"
#include "fuzz_support.h"

namespace {

const std::string model_path = "/nonexistent/detflow-fuzz/model.onnx";

// An engine reports fixed shapes of tensors it can hold; declared shapes beyond that are
// refused by the engine before a decoder sees them.
bool engine_could_report(const detflow::TensorInfo& output) {
  constexpr std::int64_t largest_output_elements = std::int64_t{1} << 28;
  if (!output.has_shape || output.shape.empty()) return false;
  std::int64_t elements = 1;
  for (const auto& dim : output.shape) {
    if (!dim.is_fixed() || dim.value <= 0 || dim.value > largest_output_elements) return false;
    elements *= dim.value;
    if (elements > largest_output_elements) return false;
  }
  return true;
}

void set_up_decoder(const detflow::ModelInfo& info) {
  const auto shape = detflow::decide_input_shape(info, detflow::EngineOptions{});
  detflow::DecoderContext context;
  context.model = &info;
  for (const auto& output : info.outputs) {
    if (!engine_could_report(output)) return;
    context.outputs.push_back(output);
  }
  context.input_height = static_cast<int>(shape.nhwc ? shape.shape[1] : shape.shape[2]);
  context.input_width = static_cast<int>(shape.nhwc ? shape.shape[2] : shape.shape[3]);
  const auto choice = detflow::choose_family(context);
  const auto decoder = choice.family->create(context);
  const auto labels = detflow::resolve_labels(info, {}, decoder->num_classes());
  if (labels.size() == 0 && decoder->num_classes() > 0) detflow::fuzz::property_violated("no labels for the classes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  detflow::ModelInfo info;
  try {
    info = detflow::read_model_info_from_bytes(detflow::fuzz::as_text(data, size), model_path);
  } catch (const detflow::Error& error) {
    const std::string message = error.what();
    if (message.find(model_path) == std::string::npos) {
      detflow::fuzz::property_violated("refusal without the model's path: " + message);
    }
    return 0;
  }
  const std::string json = detflow::to_json(info).dump(2);
  const std::string text = detflow::to_text(info);
  for (const auto& input : info.inputs) (void)input.fixed_shape();
  (void)info.default_opset();
  try {
    set_up_decoder(info);
  } catch (const detflow::Error&) {
  }
  return 0;
}
