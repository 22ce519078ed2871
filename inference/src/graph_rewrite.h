// graph_rewrite.h (internal to detflow_inference) — ONNX graph rewrites that let OpenCV 4.6's
// ONNX importer (cv::dnn::readNetFromONNX) run models it would otherwise reject or misread.
//
// Every rewrite is meant to be equivalent: the rewritten graph computes what the original
// computes, up to float rounding, except where a rewrite says otherwise below (the int8 one).
// The rewritten model is for OpenCV only: the Split rewrite puts the split sizes in the
// attribute form of opset < 13 while keeping the model's opset, which ONNX Runtime rejects.
//
// Rewrites, in the order they run (each one only when its pattern is present):
//   1. static input dims: symbolic or unknown dims of the image input are replaced by the
//      decided shape (InputShapeDecision), so shape-dependent importer code sees numbers.
//   2. float16 -> float32: float16 initializers, Constant/attribute tensors, Cast(to=float16),
//      graph inputs, outputs and value_info become float32 (OpenCV 4.6 cannot load float16
//      tensors). The model then takes and gives float32 tensors.
//   3. dynamic int8 -> float: each DynamicQuantizeLinear -> ConvInteger/MatMulInteger -> Cast ->
//      Mul(activation scale x weight scale) chain, as ONNX Runtime's quantize_dynamic writes it,
//      becomes one float Conv/MatMul on dequantized weights w = (w_q - w_zero_point) * w_scale.
//      Activations are no longer quantized, so results move slightly towards the fp32 model
//      (not equivalent to ONNX Runtime's int8 arithmetic, which rounds activations per run).
//   4. Div with a constant numerator: OpenCV 4.6 computes Div(c, x) as x / c, silently, when c
//      is a constant tensor of more than one element; it becomes Mul(c, Reciprocal(x)).
//   5. broadcast constants: a float Mul/Add/Sub/Div constant operand whose shape OpenCV 4.6
//      cannot broadcast (e.g. [1, N] against [1, K, N]; it accepts scalars, the other operand's
//      exact shape and per-channel [1, C, 1, ...]) is materialised at the other operand's full
//      static shape (found by onnx shape inference). Skipped when that shape is unknown.
//   6. Split sizes from an input (opset >= 13) -> the `split` attribute: OpenCV 4.6 reads only
//      the attribute and otherwise splits into equal parts, silently.
//   7. Conv kernel_shape: OpenCV 4.6 requires the attribute, which ONNX makes optional (it is
//      the weight's spatial dims); added where missing and the weight is a constant.
//
// Thread-safety: free functions over values they own; safe to call concurrently.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "detflow/inference/engine.h"

namespace onnx {
class ModelProto;
}

namespace detflow::detail {

struct RewriteResult {
  std::string model_bytes;           // the serialized onnx::ModelProto to hand to OpenCV
  std::vector<std::string> applied;  // one line per rewrite applied, e.g. "Split: 3 nodes ..."
};

// Applies the rewrites above to model (taken by value: the caller's copy is untouched).
// Throws detflow::Error when the model needs a rewrite that cannot be made equivalently (e.g.
// a Split whose sizes are computed at run time, an input rank that differs from shape.shape).
RewriteResult rewrite_for_opencv(onnx::ModelProto model, const InputShapeDecision& shape);

// The individual rewrites, in the order rewrite_for_opencv runs them. Each changes model in
// place and returns the line it adds to RewriteResult::applied, or std::nullopt when the model
// does not contain its pattern (and is left unchanged). Errors as for rewrite_for_opencv.
std::optional<std::string> fix_input_dims(onnx::ModelProto& model, const InputShapeDecision& shape);
std::optional<std::string> convert_float16_to_float32(onnx::ModelProto& model);
std::optional<std::string> dequantize_dynamic_int8(onnx::ModelProto& model);
std::optional<std::string> divide_by_reciprocal(onnx::ModelProto& model);
std::optional<std::string> expand_broadcast_constants(onnx::ModelProto& model);
std::optional<std::string> split_input_to_attribute(onnx::ModelProto& model);
std::optional<std::string> add_convolution_kernel_shapes(onnx::ModelProto& model);

// Reads the model file, then as above. Throws detflow::Error when the file cannot be parsed.
RewriteResult rewrite_for_opencv(const std::filesystem::path& model_path, const InputShapeDecision& shape);

}  // namespace detflow::detail
