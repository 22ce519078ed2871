// opencv_custom_layers.h (internal to detflow_inference) — host-side OpenCV DNN layers for ONNX
// operators OpenCV 4.6 lacks or computes differently, registered through OpenCV's documented
// custom-layer mechanism (cv::dnn::LayerFactory::registerLayer).
//
// How a node reaches one of these layers: graph_rewrite.h renames it to one of the op types
// below (in the default ONNX domain). OpenCV 4.6's ONNX importer has no parser for those names,
// so parseCustomLayer creates the layer registered under the same name and hands it
//   - the node's attributes in LayerParams (ints as int arrays, floats, strings);
//   - every constant input (initializer or Constant node) as a blob in LayerParams::blobs, in
//     input order, removing it from the inputs the layer receives in forward(); int64
//     constants arrive as CV_32S Mats, float ones as CV_32F;
//   - the remaining (computed) inputs, in order, to getMemoryShapes() and forward().
// The position of a constant among the node's inputs is therefore lost; the rewrite records it
// in the attribute `constant_inputs` (input positions, ascending), and each layer rebuilds the
// node's full input list from it. A layer refuses (cv::Exception, one line) a node whose blobs
// do not match that attribute.
//
// Tensors inside OpenCV 4.6's Net are float32 (CV_32F). Integer tensors (TopK indices and what is
// computed from them) therefore travel as float values holding integers, exact up to 2^24
// (16 777 216): TopK refuses an axis longer than that, and every layer that reads indices or
// integers (GatherElements, Gather, Mod, IntegerDiv) checks each value is an integer of at most
// 2^24 in magnitude and raises cv::Exception otherwise. An ONNX rank-1 tensor is an [N, 1] Mat in
// OpenCV 4.6, so the rewrite passes axes already made non-negative.
//
// Op types and their semantics (exactly the ONNX operator named, for the types listed):
//   DetflowDynamicQuantize  DynamicQuantizeLinear (uint8) in integer form, as ONNX Runtime's CPU
//       kernels compute it: x_min = min(min(x), 0), x_max = max(max(x), 0), scale = (x_max - x_min)
//       / 255 (1 when x_max == x_min), zero_point = round_half_even(clamp(0 - x_min / scale, 0,
//       255)), q = clamp(round_half_even(x / scale) + zero_point, 0, 255), all float32 arithmetic
//       in that order (x / scale is a division, as in MLAS, not a reciprocal multiply); outputs
//       q - zero_point (an integer in [-255, 255], float32, shape of x) and the scale (float32,
//       shape [1, 1]).
//   DetflowIntegerRescale  Mul(Cast(sum), Mul(x_scale, w_scale)) of dynamic int8 graphs: inputs the
//       integer-valued sum, x_scale ([1, 1]) and the constant w_scale (input 2: one value, or one
//       per channel along attribute `axis`, default 1, -1 = last); output sum * (x_scale * w_scale)
//       with the scale product rounded to float first.
//   DetflowLogistic     Sigmoid as ONNX Runtime's MLAS computes it on x86-64 (FMA3 kernel): x clamped
//       to [-18, 18], Eigen's rational approximation p(x) / q(x) with fused multiply-adds, + 0.5,
//       negative results raised to 0. Differs from 1 / (1 + exp(-x)) by a few ulp.
//   DetflowSoftmax      Softmax (opset >= 13: one axis, attribute `axis`, default -1, negative
//       counts from the end) as MLAS computes it with its AVX512F kernels: per row the maximum,
//       exp(x - max) by MLAS's range reduction and degree-6 polynomial (fused multiply-adds), the
//       exps summed in 16 lanes (element i into lane i % 16) reduced pairwise, then each exp times
//       the float reciprocal of the sum.
//   DetflowMatMul       alpha * op(A) x op(B) of two computed tensors (attributes alpha, transA,
//       transB: ONNX Runtime's FusedMatMul), rank >= 2, batch dims broadcast as MatMul's; each
//       output summed as MLAS SGEMM does: over K slices (128, adjusted by MLAS's rule from M, N, K
//       and transA), sequential fused multiply-adds from 0 within a slice, alpha * slice sum for
//       the first slice and fma(slice sum, alpha, result) after it.
//   The MLAS layers (DetflowLogistic, DetflowSoftmax, DetflowMatMul) equal ONNX Runtime 1.29 bit
//   for bit on x86-64 CPUs with AVX512F and FMA, whose kernels they repeat; elsewhere they are
//   within a few ulp of it (and of the exact functions).
//   DetflowTopK         TopK (opset 10/11): K from the constant input 1 (or the `k` attribute of
//       opset 1); attributes axis (made non-negative), largest, sorted. Outputs values and indices
//       (indices as float). Ties between equal values go to the lower index, as ONNX specifies and
//       ONNX Runtime does; the output is always sorted (allowed when sorted = 0). NaN counts as
//       larger than every number.
//   DetflowGatherElements  GatherElements: attribute axis (non-negative); inputs data, indices
//       (either may be constant); negative indices count from the end.
//   DetflowGather       Gather: attribute axis (non-negative); inputs data, indices.
//   DetflowTile         Tile with the repeats as constant input 1.
//   DetflowMod          Mod with fmod = 0 (integer, result has the divisor's sign) or fmod = 1
//       (C fmod, result has the dividend's sign); multidirectional broadcasting.
//   DetflowIntegerDiv   Div on integer tensors: quotient truncated towards zero (ONNX Runtime's
//       integer Div), multidirectional broadcasting. Division by zero raises.
//
// Thread-safety: register_opencv_custom_layers() may be called from any thread, any number of
// times; it registers once per process. Layer instances belong to one cv::dnn::Net, which is
// not thread-safe (see opencv_engine.h).
#pragma once

namespace detflow::detail {

inline constexpr const char* dynamic_quantize_op = "DetflowDynamicQuantize";
inline constexpr const char* integer_rescale_op = "DetflowIntegerRescale";
inline constexpr const char* logistic_op = "DetflowLogistic";
inline constexpr const char* softmax_op = "DetflowSoftmax";
inline constexpr const char* mlas_matmul_op = "DetflowMatMul";
inline constexpr const char* topk_op = "DetflowTopK";
inline constexpr const char* gather_elements_op = "DetflowGatherElements";
inline constexpr const char* gather_op = "DetflowGather";
inline constexpr const char* tile_op = "DetflowTile";
inline constexpr const char* mod_op = "DetflowMod";
inline constexpr const char* integer_div_op = "DetflowIntegerDiv";
// The attribute listing which inputs of a node are constants (see above).
inline constexpr const char* constant_inputs_attribute = "constant_inputs";
// Largest integer magnitude a float32 holds exactly; indices and integers beyond it are refused.
inline constexpr long long largest_exact_float_integer = 1LL << 24;

// Registers the layers above with cv::dnn::LayerFactory, once per process (later calls return at
// once). Must run before cv::dnn::readNetFromONNX loads a rewritten model: OpenCV instantiates
// layers while importing.
void register_opencv_custom_layers();

}  // namespace detflow::detail
