// graph_rewrite.h (internal to detflow_inference) — ONNX graph rewrites that let OpenCV 4.6's
// ONNX importer (cv::dnn::readNetFromONNX) run models it would otherwise reject or misread.
//
// Every rewrite is meant to be equivalent: the rewritten graph computes what the original
// computes, up to float rounding. The rewritten model is for OpenCV only: the Split rewrite puts
// the split sizes in the attribute form of opset < 13 while keeping the model's opset, and the
// custom-layer and int8 rewrites use op types only detflow's OpenCV layers know
// (opencv_custom_layers.h; call register_opencv_custom_layers() before loading the result).
// ONNX Runtime rejects such a model.
//
// Rewrites, in the order they run (each one only when its pattern is present):
//   1. static input dims: symbolic or unknown dims of the image input are replaced by the
//      decided shape (InputShapeDecision), so shape-dependent importer code sees numbers.
//   2. float16 -> float32: float16 initializers, Constant/attribute tensors, Cast(to=float16),
//      graph inputs, outputs and value_info become float32 (OpenCV 4.6 cannot load float16
//      tensors). The model then takes and gives float32 tensors.
//   3. Div with a constant numerator: OpenCV 4.6 computes Div(c, x) as x / c, silently, when c
//      is a constant float tensor of more than one element; it becomes Mul(c, Reciprocal(x)).
//   4. broadcast constants: a float Mul/Add/Sub/Div constant operand whose shape OpenCV 4.6
//      cannot broadcast (e.g. [1, N] against [1, K, N]; it accepts scalars, the other operand's
//      exact shape and per-channel [1, C, 1, ...]) is materialised at the other operand's full
//      static shape (found by onnx shape inference). Skipped when that shape is unknown.
//   5. Unsqueeze axes: negative constant axes are counted from the front (OpenCV 4.6 asserts
//      axes >= 0), using the rank shape inference finds; throws when it cannot find it.
//      custom layers: ops OpenCV 4.6 lacks or gets wrong become detflow's host layers, same
//      semantics: TopK (constant K), GatherElements, Tile (constant repeats), Gather with
//      computed indices (OpenCV's takes constant indices only), Mod, and Div of two integer
//      tensors (OpenCV would divide the floats carrying them, without truncation). Negative axes are made non-negative
//      and the positions of constant inputs recorded (see opencv_custom_layers.h). Throws when K is computed, when an
//      axis is negative on an input of unknown rank, or when a Mod/Div constant of several elements has a rank other
//      than its computed operand's.
//   6. dynamic int8: each DynamicQuantizeLinear -> ConvInteger/MatMulInteger -> Cast ->
//      Mul(activation scale x weight scale) chain, as ONNX Runtime's quantize_dynamic writes it,
//      is made to compute what ONNX Runtime 1.29's CPU provider computes, bit for bit where the
//      arithmetic allows (reproduce_dynamic_int8):
//      - DynamicQuantizeLinear -> DetflowDynamicQuantize: the integers q - zero_point (as float)
//        and the scale, as ONNX Runtime quantises;
//      - ConvInteger/MatMulInteger -> float Conv/MatMul of those integers and the integer weights
//        w_q - w_zero_point: float sums integer products exactly in any order while partial sums
//        stay below 2^24 (|q - zp| <= 255, |w - w_zp| <= 255), so OpenCV's kernels give ONNX
//        Runtime's int32 sum;
//      - Cast + Mul -> DetflowIntegerRescale: sum * (x_scale * w_scale), the scale product rounded
//        first as the graph's Mul(x_scale, w_scale) does (w_scale per tensor or per output channel
//        / column); a following bias Add stays an OpenCV Add;
//      and, in such models only (a flipped quantisation step moves a whole tensor, so a few ulp
//      matter): Sigmoid -> DetflowLogistic (MLAS's approximation), Softmax (opset >= 13) ->
//      DetflowSoftmax (MLAS's exp and summation), and MatMul of two computed tensors ->
//      DetflowMatMul with a preceding Transpose of the last two axes and scalar Mul folded into
//      transA/transB and alpha, as ONNX Runtime's optimiser fuses them into FusedMatMul and MLAS
//      SGEMM sums (see opencv_custom_layers.h). Integer nodes outside that pattern are left
//      (OpenCV then refuses them, naming the op). The quantise / integer sum / rescale chain (and a
//      bias Add) equals ONNX Runtime bit for bit (graph_rewrite_test.cpp checks it); the MLAS
//      layers do so on AVX512F + FMA CPUs and are within a few ulp elsewhere.
//   6b. MatMul of two computed tensors (attention: q^T k, attn v) -> DetflowMatMul, with the same
//      Transpose / scalar Mul folding as in 6 (ONNX Runtime's FusedMatMul and MLAS's summation).
//      Why: OpenCV 4.6 loads such a MatMul as a two-input InnerProduct whose forward() never
//      applies a fused activation, yet accepts one when it fuses layers, so a following scalar Mul
//      (the `* scale` of YOLO11's C2PSA attention, loaded as a Power layer), a Relu, ... is
//      silently dropped on the CPU target (YOLO11n: F1 0.52 against ONNX Runtime on people.mp4;
//      the OpenCL target was right). DetflowMatMul takes no activation, so the next layer runs as
//      its own. Guarantees the ONNX MatMul semantics (rank >= 2, broadcast batch dims); an operand
//      shape inference finds to be 1-D is left to OpenCV, and any other shape DetflowMatMul cannot
//      serve fails at load, not silently.
//   7. Split sizes from an input (opset >= 13) -> the `split` attribute: OpenCV 4.6 reads only
//      the attribute and otherwise splits into equal parts, silently.
//   8. Conv kernel_shape: OpenCV 4.6 requires the attribute, which ONNX makes optional (it is
//      the weight's spatial dims); added where missing and the weight is a constant.
// Passes 5, 6 and 6b add op types onnx shape inference does not know, so everything that infers
// shapes (3, 4 and 5 itself) runs before them; 6b's rank check sees only what inference reaches.
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
// a Split whose sizes or a TopK whose K are computed at run time, an input rank that differs
// from shape.shape).
RewriteResult rewrite_for_opencv(onnx::ModelProto model, const InputShapeDecision& shape);

// The individual rewrites, in the order rewrite_for_opencv runs them. Each changes model in
// place and returns the line it adds to RewriteResult::applied, or std::nullopt when the model
// does not contain its pattern (and is left unchanged). Errors as for rewrite_for_opencv.
std::optional<std::string> fix_input_dims(onnx::ModelProto& model, const InputShapeDecision& shape);
std::optional<std::string> convert_float16_to_float32(onnx::ModelProto& model);
std::optional<std::string> divide_by_reciprocal(onnx::ModelProto& model);
std::optional<std::string> expand_broadcast_constants(onnx::ModelProto& model);
std::optional<std::string> unsqueeze_axes_non_negative(onnx::ModelProto& model);
std::optional<std::string> use_custom_layers(onnx::ModelProto& model);
std::optional<std::string> reproduce_dynamic_int8(onnx::ModelProto& model);
std::optional<std::string> computed_matmuls_to_host_layer(onnx::ModelProto& model);
std::optional<std::string> split_input_to_attribute(onnx::ModelProto& model);
std::optional<std::string> add_convolution_kernel_shapes(onnx::ModelProto& model);

// Reads the model file, then as above. Throws detflow::Error when the file cannot be parsed.
RewriteResult rewrite_for_opencv(const std::filesystem::path& model_path, const InputShapeDecision& shape);

}  // namespace detflow::detail
