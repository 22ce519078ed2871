#include "opencv_custom_layers.h"

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/dnn/layer.details.hpp>
#include <opencv2/dnn/shape_utils.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

namespace detflow::detail {
namespace {

using cv::dnn::MatShape;

std::string shape_text(const MatShape& shape) {
  std::string text = "[";
  for (std::size_t axis = 0; axis < shape.size(); ++axis) text += (axis ? ", " : "") + std::to_string(shape[axis]);
  return text + "]";
}

std::size_t count_of(const MatShape& shape) {
  return std::accumulate(shape.begin(), shape.end(), std::size_t{1},
                         [](std::size_t product, int dim) { return product * static_cast<std::size_t>(dim); });
}

std::size_t count_of(const MatShape& shape, std::size_t begin, std::size_t end) {
  std::size_t product = 1;
  for (std::size_t axis = begin; axis < end; ++axis) product *= static_cast<std::size_t>(shape[axis]);
  return product;
}

[[noreturn]] void fail(const std::string& layer, const std::string& message) {
  CV_Error(cv::Error::StsBadArg, layer + ": " + message);
}

// An index or integer carried as a float (see the header): exact only when it is an integer of at
// most 2^24 in magnitude, so anything else means the graph did not compute what ONNX would.
std::int64_t exact_integer(float value, const std::string& layer) {
  if (!(std::abs(value) <= static_cast<float>(largest_exact_float_integer)) || value != std::trunc(value)) {
    fail(layer, "expected an integer of at most 2^24 in magnitude, got " + std::to_string(value));
  }
  return static_cast<std::int64_t>(value);
}

// Round half to even for |value| <= 2^22 under the default rounding mode: adding 1.5 * 2^23 pushes
// the fraction out of the float's mantissa, which the FPU rounds to nearest even; subtracting it
// back is exact. Equals std::nearbyint there, but the loop below vectorises on SSE2 (nearbyintf is
// a libm call without SSE4.1). Needs strict IEEE float evaluation (no -ffast-math).
inline float round_half_even(float value) {
  constexpr float shifter = 12582912.0f;  // 1.5 * 2^23
  return (value + shifter) - shifter;
}

// Common part: the node's inputs as ONNX numbers them, rebuilt from the computed inputs OpenCV
// passes and the constant ones it moved into LayerParams::blobs (positions in `constant_inputs`).
class HostLayer : public cv::dnn::Layer {
 public:
  explicit HostLayer(const cv::dnn::LayerParams& params) {
    setParamsFrom(params);
    if (params.has(constant_inputs_attribute)) {
      const cv::dnn::DictValue& positions = params.get(constant_inputs_attribute);
      for (int index = 0; index < positions.size(); ++index) constant_positions_.push_back(positions.get<int>(index));
    }
    if (constant_positions_.size() != params.blobs.size()) {
      fail(params.type + " '" + params.name + "'",
           "OpenCV passed " + std::to_string(params.blobs.size()) + " constant inputs but the rewrite marked " +
               std::to_string(constant_positions_.size()) + " (attribute " + constant_inputs_attribute + ")");
    }
    for (const cv::Mat& blob : params.blobs) {
      cv::Mat as_float;
      if (blob.depth() == CV_32F) {
        as_float = blob.clone();
      } else {
        cv::Mat wide;
        blob.convertTo(wide, CV_64F);
        double low = 0.0;
        double high = 0.0;
        cv::minMaxIdx(wide.reshape(1, 1), &low, &high);
        if (std::max(std::abs(low), std::abs(high)) > static_cast<double>(largest_exact_float_integer)) {
          fail(params.type + " '" + params.name + "'", "a constant integer input exceeds 2^24 in magnitude");
        }
        blob.convertTo(as_float, CV_32F);
      }
      constants_.push_back(as_float);
    }
  }

  void forward(cv::InputArrayOfArrays inputs_array, cv::OutputArrayOfArrays outputs_array,
               cv::OutputArrayOfArrays internals_array) override {
    if (inputs_array.depth() == CV_16S) {  // OpenCL fp16 target: OpenCV converts to float and calls back
      forward_fallback(inputs_array, outputs_array, internals_array);
      return;
    }
    std::vector<cv::Mat> computed;
    std::vector<cv::Mat> outputs;
    inputs_array.getMatVector(computed);
    outputs_array.getMatVector(outputs);
    for (const cv::Mat& mat : computed) {
      if (mat.type() != CV_32F || !mat.isContinuous()) fail(where(), "expects continuous float32 inputs");
    }
    run(all_inputs(computed), outputs);
  }

 protected:
  virtual void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) = 0;

  std::string where() const { return type + " '" + name + "'"; }

  template <typename Value>
  std::vector<Value> merge(const std::vector<Value>& computed, const std::vector<Value>& constants) const {
    std::vector<Value> all;
    std::size_t next_computed = 0;
    std::size_t next_constant = 0;
    const std::size_t total = computed.size() + constants.size();
    for (std::size_t position = 0; position < total; ++position) {
      const bool constant = next_constant < constant_positions_.size() &&
                            constant_positions_[next_constant] == static_cast<int>(position);
      if (constant) {
        all.push_back(constants[next_constant++]);
      } else if (next_computed < computed.size()) {
        all.push_back(computed[next_computed++]);
      } else {
        fail(where(), "constant input position " + std::to_string(constant_positions_[next_constant]) +
                          " is beyond the node's " + std::to_string(total) + " inputs");
      }
    }
    return all;
  }

  std::vector<cv::Mat> all_inputs(const std::vector<cv::Mat>& computed) const { return merge(computed, constants_); }

  std::vector<MatShape> all_shapes(const std::vector<MatShape>& computed) const {
    std::vector<MatShape> constant_shapes;
    for (const cv::Mat& constant : constants_) constant_shapes.push_back(cv::dnn::shape(constant));
    return merge(computed, constant_shapes);
  }

  void expect_inputs(std::size_t count, std::size_t given) const {
    if (count != given) {
      fail(where(), "expects " + std::to_string(count) + " inputs, got " + std::to_string(given));
    }
  }

  int axis_within(int rank) const {
    const int axis = params_axis_;
    if (axis < 0 || axis >= rank) {
      fail(where(), "axis " + std::to_string(axis) + " is outside rank " + std::to_string(rank) +
                        " (the rewrite passes non-negative axes)");
    }
    return axis;
  }

  int params_axis_ = 0;
  std::vector<int> constant_positions_;
  std::vector<cv::Mat> constants_;  // float32 copies of the constant inputs
};

// ---- DynamicQuantizeLinear, integer form ----------------------------------------------------------

// The parameters of ONNX Runtime's DynamicQuantizeLinear for one tensor (see the header): the
// scale, and the representable step range [0 - zero_point, 255 - zero_point].
struct QuantizationSteps {
  float scale = 1.0f;
  float lowest = 0.0f;
  float highest = 255.0f;
};

QuantizationSteps quantization_of(const float* values, int count) {
  double low = 0.0;
  double high = 0.0;
  if (count > 0) cv::minMaxIdx(cv::Mat(1, count, CV_32F, const_cast<float*>(values)), &low, &high);
  const float range_min = std::min(static_cast<float>(low), 0.0f);
  const float range_max = std::max(static_cast<float>(high), 0.0f);
  QuantizationSteps steps;
  steps.scale = range_max == range_min ? 1.0f : (range_max - range_min) / 255.0f;
  const float zero_point = round_half_even(std::clamp(0.0f - range_min / steps.scale, 0.0f, 255.0f));
  steps.lowest = 0.0f - zero_point;
  steps.highest = 255.0f - zero_point;
  return steps;
}

// Outputs q - zero_point (an integer in [-255, 255], as float) and the scale ([1, 1]), so that a
// following float Conv/MatMul on integer weights sums integer products, which float adds exactly
// in any order while the partial sums stay below 2^24: the same sum ONNX Runtime's integer kernels
// compute, whatever order OpenCV's kernels use.
class DynamicQuantizeLayer final : public HostLayer {
 public:
  explicit DynamicQuantizeLayer(const cv::dnn::LayerParams& params) : HostLayer(params) {}
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) {
    return cv::makePtr<DynamicQuantizeLayer>(params);
  }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    expect_inputs(1, all_shapes(inputs).size());
    outputs = {inputs.at(0), MatShape{1, 1}};
    return false;
  }

 protected:
  void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) override {
    expect_inputs(1, inputs.size());
    const auto count = static_cast<int>(inputs[0].total());
    const float* source = inputs[0].ptr<float>();
    const QuantizationSteps steps = quantization_of(source, count);
    float* target = outputs.at(0).ptr<float>();
    outputs.at(1).ptr<float>()[0] = steps.scale;
    constexpr int block = 1 << 15;
    cv::parallel_for_(cv::Range(0, (count + block - 1) / block), [&](const cv::Range& blocks) {
      const int end = std::min(count, blocks.end * block);
      for (int index = blocks.start * block; index < end; ++index) {
        // MLAS's QuantizeLinear: a true division, clamped to the representable integer bounds
        // (so clamping before rounding equals saturating after), rounded half to even.
        target[index] = round_half_even(std::min(std::max(source[index] / steps.scale, steps.lowest), steps.highest));
      }
    });
  }
};

// Cast(integer sum) * (x_scale * w_scale): the rescale ONNX Runtime's quantize_dynamic graphs
// apply after ConvInteger/MatMulInteger. The scale product is formed first, in float, as the
// graph's Mul(x_scale, w_scale) does, then multiplies the sum: two float roundings, in that order.
// Inputs: the sum, x_scale ([1, 1]) and the constant w_scale (one value, or one per channel on
// `axis`; axis -1 is the last).
class IntegerRescaleLayer final : public HostLayer {
 public:
  explicit IntegerRescaleLayer(const cv::dnn::LayerParams& params)
      : HostLayer(params), axis_(params.get<int>("axis", 1)) {
    if (constants_.size() != 1 || constant_positions_.front() != 2) fail(where(), "needs w_scale as constant input 2");
  }
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) {
    return cv::makePtr<IntegerRescaleLayer>(params);
  }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    expect_inputs(3, all_shapes(inputs).size());
    if (count_of(inputs.at(1)) != 1) fail(where(), "x_scale must be one value, got " + shape_text(inputs.at(1)));
    const std::size_t channels = constants_.front().total();
    const MatShape& sum = inputs.at(0);
    if (channels != 1 && (sum.empty() || channels != static_cast<std::size_t>(sum[channel_axis(sum)]))) {
      fail(where(), std::to_string(channels) + " weight scales do not match axis " + std::to_string(axis_) + " of " +
                        shape_text(sum));
    }
    outputs.assign(1, sum);
    return false;
  }

 protected:
  void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) override {
    const cv::Mat& sum = inputs.at(0);
    const float activation_scale = inputs.at(1).ptr<float>()[0];
    const cv::Mat& weight_scales = inputs.at(2);
    const MatShape shape = cv::dnn::shape(sum);
    const std::size_t channels = weight_scales.total();
    const std::size_t axis = channels == 1 ? 0 : channel_axis(shape);
    const std::size_t outer = channels == 1 ? 1 : count_of(shape, 0, axis);
    const std::size_t inner = channels == 1 ? sum.total() : count_of(shape, axis + 1, shape.size());
    std::vector<float> products(channels);
    for (std::size_t channel = 0; channel < channels; ++channel) {
      products[channel] = activation_scale * weight_scales.ptr<float>()[channel];
    }
    const float* source = sum.ptr<float>();
    float* target = outputs.at(0).ptr<float>();
    for (std::size_t slice = 0; slice < outer * channels; ++slice) {
      const float factor = products[slice % channels];
      const float* from = source + slice * inner;
      float* to = target + slice * inner;
      for (std::size_t element = 0; element < inner; ++element) to[element] = from[element] * factor;
    }
  }

 private:
  std::size_t channel_axis(const MatShape& shape) const {
    const int rank = static_cast<int>(shape.size());
    const int axis = axis_ < 0 ? axis_ + rank : axis_;
    if (axis < 0 || axis >= rank) fail(where(), "axis " + std::to_string(axis_) + " outside " + shape_text(shape));
    return static_cast<std::size_t>(axis);
  }

  int axis_;
};

// ---- Sigmoid as ONNX Runtime's MLAS computes it -----------------------------------------------------

// MLAS's logistic (the Eigen rational approximation) on x86-64 with FMA3: x clamped to [-18, 18],
// odd polynomial p(x) / even polynomial q(x) in x^2 by fused multiply-adds (one rounding each),
// + 0.5, negative results raised to 0. The coefficients are those of Eigen's float logistic.
constexpr float logistic_alpha[] = {4.37031012579801e-11f, 1.15627324459942e-07f, 6.08574864600143e-05f,
                                    8.51377133304701e-03f, 2.48287947061529e-01f};
constexpr float logistic_beta[] = {6.10247389755681e-13f, 5.76102136993427e-09f, 6.29106785017040e-06f,
                                   1.70198817374094e-03f, 1.16817656904453e-01f, 9.93151921023180e-01f};

// One body for both builds below; std::fma is a single correctly rounded operation either way
// (an instruction where the target has FMA, libm's exact fmaf elsewhere).
#define DETFLOW_LOGISTIC_BODY                                                         \
  for (std::size_t index = 0; index < count; ++index) {                               \
    float value = source[index];                                                      \
    value = -18.0f > value ? -18.0f : value; /* NaN passes through, as maxps/minps */ \
    value = 18.0f < value ? 18.0f : value;                                            \
    const float squared = value * value;                                              \
    float p = std::fma(squared, logistic_alpha[0], logistic_alpha[1]);                \
    p = std::fma(p, squared, logistic_alpha[2]);                                      \
    p = std::fma(p, squared, logistic_alpha[3]);                                      \
    p = std::fma(p, squared, logistic_alpha[4]);                                      \
    float q = std::fma(squared, logistic_beta[0], logistic_beta[1]);                  \
    q = std::fma(q, squared, logistic_beta[2]);                                       \
    q = std::fma(q, squared, logistic_beta[3]);                                       \
    q = std::fma(q, squared, logistic_beta[4]);                                       \
    q = std::fma(q, squared, logistic_beta[5]);                                       \
    const float result = (value * p) / q + 0.5f;                                      \
    target[index] = 0.0f > result ? 0.0f : result;                                    \
  }

#if defined(__x86_64__) && defined(__GNUC__)
bool cpu_has_fma() {
  static const bool has_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has_fma;
}

__attribute__((target("avx2,fma"))) void logistic_fma(const float* source, float* target, std::size_t count) {
  DETFLOW_LOGISTIC_BODY
}
#endif

void logistic_portable(const float* source, float* target, std::size_t count) { DETFLOW_LOGISTIC_BODY }
#undef DETFLOW_LOGISTIC_BODY

void mlas_logistic(const float* source, float* target, std::size_t count) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_fma()) {
    logistic_fma(source, target, count);
    return;
  }
#endif
  logistic_portable(source, target, count);
}

class LogisticLayer final : public HostLayer {
 public:
  explicit LogisticLayer(const cv::dnn::LayerParams& params) : HostLayer(params) {}
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) { return cv::makePtr<LogisticLayer>(params); }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    expect_inputs(1, all_shapes(inputs).size());
    outputs.assign(1, inputs.at(0));
    return false;
  }

 protected:
  void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) override {
    expect_inputs(1, inputs.size());
    const auto count = static_cast<int>(inputs[0].total());
    const float* source = inputs[0].ptr<float>();
    float* target = outputs.at(0).ptr<float>();
    constexpr int block = 1 << 14;
    cv::parallel_for_(cv::Range(0, (count + block - 1) / block), [&](const cv::Range& blocks) {
      const int begin = blocks.start * block;
      const int end = std::min(count, blocks.end * block);
      mlas_logistic(source + begin, target + begin, static_cast<std::size_t>(end - begin));
    });
  }
};

// ---- Softmax as ONNX Runtime's MLAS computes it ---------------------------------------------------

// MLAS's exp for softmax (the AVX512F sum-exp kernel): x + (-max) clamped below at -103.97, range
// reduction m = round(x / ln 2) by the 1.5 * 2^23 shift, x - m * ln2 in two fused steps (high and
// low parts of ln 2), a degree-6 polynomial by fused multiply-adds, then scaled by 2^m. Constants
// are MLAS's (hex floats as it writes them).
#define DETFLOW_SOFTMAX_EXP_BODY                                                                                    \
  constexpr float lower_range = -103.9720840454f;                                                                   \
  constexpr float rounding_bias = 12582912.0f; /* 1.5 * 2^23 */                                                     \
  constexpr float log2_reciprocal = 1.44269504088896341f;                                                           \
  constexpr float log2_high = -6.93145752e-1f;                                                                      \
  constexpr float log2_low = -1.42860677e-6f;                                                                       \
  constexpr float poly[] = {0x1.694000p-10f, 0x1.125edcp-7f, 0x1.555b5ap-5f, 0x1.555450p-3f, 0x1.fffff6p-2f, 1.0f}; \
  float x = negative_maximum + value;                                                                               \
  x = lower_range > x ? lower_range : x;                                                                            \
  const float biased = std::fma(x, log2_reciprocal, rounding_bias);                                                 \
  const float m = biased - rounding_bias;                                                                           \
  x = std::fma(m, log2_high, x);                                                                                    \
  x = std::fma(m, log2_low, x);                                                                                     \
  float p = poly[0];                                                                                                \
  for (int term = 1; term < 5; ++term) p = std::fma(p, x, poly[term]);                                              \
  p = std::fma(p, x, poly[5]);                                                                                      \
  p = std::fma(p, x, poly[5]);                                                                                      \
  return std::ldexp(p, static_cast<int>(m)); /* vscalefps: p * 2^m, m integral */

inline float softmax_exp_portable(float value, float negative_maximum) { DETFLOW_SOFTMAX_EXP_BODY }

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) inline float softmax_exp_fma(float value, float negative_maximum) {
  DETFLOW_SOFTMAX_EXP_BODY
}
#endif
#undef DETFLOW_SOFTMAX_EXP_BODY

// One row of MLAS's softmax: exact maximum; exps summed as the AVX512F kernel does (16 lane
// accumulators, element i into lane i % 16, in order), the lanes reduced pairwise in the kernel's
// order; then each exp multiplied by the float reciprocal of the sum.
void mlas_softmax_row(const float* source, float* target, std::size_t length, std::size_t stride) {
  float maximum = std::numeric_limits<float>::lowest();
  for (std::size_t index = 0; index < length; ++index) maximum = std::max(maximum, source[index * stride]);
  const float negative_maximum = -maximum;
#if defined(__x86_64__) && defined(__GNUC__)
  const bool has_fma = cpu_has_fma();
#endif
  float lanes[16] = {};
  for (std::size_t index = 0; index < length; ++index) {
#if defined(__x86_64__) && defined(__GNUC__)
    const float value = has_fma ? softmax_exp_fma(source[index * stride], negative_maximum)
                                : softmax_exp_portable(source[index * stride], negative_maximum);
#else
    const float value = softmax_exp_portable(source[index * stride], negative_maximum);
#endif
    target[index * stride] = value;
    lanes[index % 16] += value;
  }
  float halves[8];
  for (int lane = 0; lane < 8; ++lane) halves[lane] = lanes[lane + 8] + lanes[lane];
  const float low = (halves[0] + halves[1]) + (halves[2] + halves[3]);
  const float high = (halves[4] + halves[5]) + (halves[6] + halves[7]);
  const float scale = 1.0f / (low + high);
  for (std::size_t index = 0; index < length; ++index) target[index * stride] *= scale;
}

class SoftmaxLayer final : public HostLayer {
 public:
  explicit SoftmaxLayer(const cv::dnn::LayerParams& params) : HostLayer(params) {
    params_axis_ = params.get<int>("axis", -1);
  }
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) { return cv::makePtr<SoftmaxLayer>(params); }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    expect_inputs(1, all_shapes(inputs).size());
    outputs.assign(1, inputs.at(0));
    return false;
  }

 protected:
  void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) override {
    expect_inputs(1, inputs.size());
    const MatShape shape = cv::dnn::shape(inputs[0]);
    const int rank = static_cast<int>(shape.size());
    // Softmax-13 semantics on one axis; a negative axis counts from the end (ranks here are
    // the true ONNX ranks, >= 2).
    const int axis = params_axis_ < 0 ? params_axis_ + rank : params_axis_;
    if (axis < 0 || axis >= rank)
      fail(where(), "axis " + std::to_string(params_axis_) + " outside " + shape_text(shape));
    const std::size_t outer = count_of(shape, 0, static_cast<std::size_t>(axis));
    const auto length = static_cast<std::size_t>(shape[static_cast<std::size_t>(axis)]);
    const std::size_t inner = count_of(shape, static_cast<std::size_t>(axis) + 1, shape.size());
    const float* source = inputs[0].ptr<float>();
    float* target = outputs.at(0).ptr<float>();
    cv::parallel_for_(cv::Range(0, static_cast<int>(outer * inner)), [&](const cv::Range& rows) {
      for (int row = rows.start; row < rows.end; ++row) {
        const std::size_t offset =
            (static_cast<std::size_t>(row) / inner) * length * inner + static_cast<std::size_t>(row) % inner;
        mlas_softmax_row(source + offset, target + offset, length, inner);
      }
    });
  }
};

// ---- MatMul of two computed tensors as ONNX Runtime's MLAS SGEMM sums it -----------------------------

// C = alpha * op(A) x op(B) over matching batch dims (ONNX Runtime's FusedMatMul: MatMul with the
// transposes and scalar factor its graph optimiser folds in). Each output is summed over K in
// MLAS's K slices (128 wide, widened or narrowed by MLAS's rule from M, N, K and transA), inside a
// slice sequentially from 0 by fused multiply-adds, as its SGEMM kernels do; the first slice
// gives alpha * sum, later slices add alpha * sum to it.
struct MatMulProblem {
  const float* a;
  const float* b;
  float* c;
  const std::size_t* a_offsets;  // per output batch: where its A and B matrices start
  const std::size_t* b_offsets;
  std::size_t m, n, k, stride_k;
  float alpha;
  bool trans_a, trans_b;
};

// Output rows [begin, end) of all batches (row index = batch * m + row).
#define DETFLOW_MATMUL_BODY                                                                            \
  for (std::size_t job = begin; job < end; ++job) {                                                    \
    const std::size_t batch = job / p.m;                                                               \
    const std::size_t row = job % p.m;                                                                 \
    const float* a_batch = p.a + p.a_offsets[batch];                                                   \
    const float* b_batch = p.b + p.b_offsets[batch];                                                   \
    float* c_row = p.c + batch * p.m * p.n + row * p.n;                                                \
    for (std::size_t column = 0; column < p.n; ++column) {                                             \
      float result = 0.0f;                                                                             \
      for (std::size_t first = 0; first < p.k; first += p.stride_k) {                                  \
        const std::size_t last = std::min(p.k, first + p.stride_k);                                    \
        float sum = 0.0f;                                                                              \
        for (std::size_t step = first; step < last; ++step) {                                          \
          const float left = p.trans_a ? a_batch[step * p.m + row] : a_batch[row * p.k + step];        \
          const float right = p.trans_b ? b_batch[column * p.k + step] : b_batch[step * p.n + column]; \
          sum = std::fma(left, right, sum);                                                            \
        }                                                                                              \
        result = first == 0 ? sum * p.alpha : std::fma(sum, p.alpha, result);                          \
      }                                                                                                \
      c_row[column] = result;                                                                          \
    }                                                                                                  \
  }

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void matmul_rows_fma(const MatMulProblem& p, std::size_t begin, std::size_t end) {
  DETFLOW_MATMUL_BODY
}
#endif

void matmul_rows_portable(const MatMulProblem& p, std::size_t begin, std::size_t end) { DETFLOW_MATMUL_BODY }
#undef DETFLOW_MATMUL_BODY

void mlas_matmul_rows(const MatMulProblem& problem, std::size_t begin, std::size_t end) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_fma()) {
    matmul_rows_fma(problem, begin, end);
    return;
  }
#endif
  matmul_rows_portable(problem, begin, end);
}

class MlasMatMulLayer final : public HostLayer {
 public:
  explicit MlasMatMulLayer(const cv::dnn::LayerParams& params)
      : HostLayer(params),
        alpha_(params.get<float>("alpha", 1.0f)),
        trans_a_(params.get<int>("transA", 0) != 0),
        trans_b_(params.get<int>("transB", 0) != 0) {}
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) { return cv::makePtr<MlasMatMulLayer>(params); }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    expect_inputs(2, all_shapes(inputs).size());
    outputs.assign(1, product_shape(inputs.at(0), inputs.at(1)));
    return false;
  }

 protected:
  void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) override {
    const MatShape a_shape = cv::dnn::shape(inputs.at(0));
    const MatShape b_shape = cv::dnn::shape(inputs.at(1));
    const MatShape c_shape = product_shape(a_shape, b_shape);
    const std::size_t rank = c_shape.size();
    const auto m = static_cast<std::size_t>(c_shape[rank - 2]);
    const auto n = static_cast<std::size_t>(c_shape[rank - 1]);
    const auto k = static_cast<std::size_t>(trans_a_ ? a_shape[a_shape.size() - 2] : a_shape.back());
    const std::size_t batches = count_of(c_shape, 0, rank - 2);
    // Batch dims broadcast as ONNX MatMul's (right-aligned, size 1 repeats): the start of each
    // output batch's A and B matrices.
    std::vector<std::size_t> a_offsets(batches);
    std::vector<std::size_t> b_offsets(batches);
    for (std::size_t batch = 0; batch < batches; ++batch) {
      std::size_t remaining = batch;
      std::size_t a_index = 0;
      std::size_t b_index = 0;
      std::size_t a_stride = 1;
      std::size_t b_stride = 1;
      for (std::size_t axis = rank - 2; axis-- > 0;) {
        const auto extent = static_cast<std::size_t>(c_shape[axis]);
        const std::size_t position = remaining % extent;
        remaining /= extent;
        const std::size_t from_end = rank - axis;  // 3 for the innermost batch axis
        if (a_shape.size() >= from_end) {
          const auto a_extent = static_cast<std::size_t>(a_shape[a_shape.size() - from_end]);
          a_index += (a_extent == 1 ? 0 : position) * a_stride;
          a_stride *= a_extent;
        }
        if (b_shape.size() >= from_end) {
          const auto b_extent = static_cast<std::size_t>(b_shape[b_shape.size() - from_end]);
          b_index += (b_extent == 1 ? 0 : position) * b_stride;
          b_stride *= b_extent;
        }
      }
      a_offsets[batch] = a_index * m * k;
      b_offsets[batch] = b_index * k * n;
    }
    // MLAS's slice widths: widen N (narrow K) while K is small, else widen K when N is small
    // and A is not transposed.
    std::size_t stride_n = 128;
    std::size_t stride_k = 128;
    if (n >= k) {
      while (stride_k / 2 >= k) {
        stride_n *= 2;
        stride_k /= 2;
      }
    } else if (!trans_a_) {
      while (stride_n > 16 && stride_n / 2 >= n) {
        stride_k *= 2;
        stride_n /= 2;
      }
    }
    const MatMulProblem problem{inputs[0].ptr<float>(),
                                inputs[1].ptr<float>(),
                                outputs.at(0).ptr<float>(),
                                a_offsets.data(),
                                b_offsets.data(),
                                m,
                                n,
                                k,
                                stride_k,
                                alpha_,
                                trans_a_,
                                trans_b_};
    cv::parallel_for_(cv::Range(0, static_cast<int>(batches * m)), [&](const cv::Range& rows) {
      mlas_matmul_rows(problem, static_cast<std::size_t>(rows.start), static_cast<std::size_t>(rows.end));
    });
  }

 private:
  // Operands of rank >= 2 (OpenCV gives rank-1 tensors a second axis, so a 1-D operand is
  // refused rather than guessed at).
  MatShape product_shape(const MatShape& a, const MatShape& b) const {
    if (a.size() < 2 || b.size() < 2)
      fail(where(), "needs operands of rank >= 2: " + shape_text(a) + ", " + shape_text(b));
    const std::size_t rank = std::max(a.size(), b.size());
    MatShape c(rank, 1);
    for (std::size_t from_end = 3; from_end <= rank; ++from_end) {
      const int a_dim = a.size() >= from_end ? a[a.size() - from_end] : 1;
      const int b_dim = b.size() >= from_end ? b[b.size() - from_end] : 1;
      if (a_dim != b_dim && a_dim != 1 && b_dim != 1) {
        fail(where(), "batch dims do not broadcast: " + shape_text(a) + " x " + shape_text(b));
      }
      c[rank - from_end] = std::max(a_dim, b_dim);
    }
    const int a_k = trans_a_ ? a[a.size() - 2] : a.back();
    const int b_k = trans_b_ ? b.back() : b[b.size() - 2];
    if (a_k != b_k) fail(where(), "inner dims differ: " + shape_text(a) + " x " + shape_text(b));
    c[rank - 2] = trans_a_ ? a.back() : a[a.size() - 2];
    c[rank - 1] = trans_b_ ? b[b.size() - 2] : b.back();
    return c;
  }

  float alpha_;
  bool trans_a_;
  bool trans_b_;
};

// ---- TopK ------------------------------------------------------------------------------------------

class TopKLayer final : public HostLayer {
 public:
  explicit TopKLayer(const cv::dnn::LayerParams& params) : HostLayer(params) {
    params_axis_ = params.get<int>("axis", -1);
    largest_ = params.get<int>("largest", 1) != 0;
    if (params.has("k")) {
      k_ = params.get<int>("k");
    } else {
      if (constants_.size() != 1 || constant_positions_.front() != 1 || constants_.front().total() != 1) {
        fail(where(), "needs K as a constant one-element input 1");
      }
      k_ = static_cast<int>(exact_integer(constants_.front().at<float>(0), where()));
    }
    if (k_ < 0) fail(where(), "K must not be negative, got " + std::to_string(k_));
  }
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) { return cv::makePtr<TopKLayer>(params); }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    if (inputs.size() != 1) fail(where(), "expects one computed input, got " + std::to_string(inputs.size()));
    MatShape shape = inputs[0];
    const int axis = axis_within(static_cast<int>(shape.size()));
    if (k_ > shape[static_cast<std::size_t>(axis)]) {
      fail(where(), "K = " + std::to_string(k_) + " exceeds axis " + std::to_string(axis) + " of " + shape_text(shape));
    }
    if (shape[static_cast<std::size_t>(axis)] > largest_exact_float_integer) {
      fail(where(), "axis of " + std::to_string(shape[static_cast<std::size_t>(axis)]) +
                        " elements: indices beyond 2^24 are not exact as float");
    }
    shape[static_cast<std::size_t>(axis)] = k_;
    outputs.assign(2, shape);
    return false;
  }

 protected:
  void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) override {
    const cv::Mat& x = inputs.at(0);
    const MatShape shape = cv::dnn::shape(x);
    const auto axis = static_cast<std::size_t>(axis_within(static_cast<int>(shape.size())));
    const std::size_t outer = count_of(shape, 0, axis);
    const auto length = static_cast<std::size_t>(shape[axis]);
    const std::size_t inner = count_of(shape, axis + 1, shape.size());
    const auto k = static_cast<std::size_t>(k_);
    const float* source = x.ptr<float>();
    float* values = outputs.at(0).ptr<float>();
    float* indices = outputs.at(1).ptr<float>();
    std::vector<float> slice(length);
    std::vector<std::uint32_t> order(length);
    // A strict total order: by value (NaN beyond every number), then by the lower index.
    auto before = [this, &slice](std::uint32_t left, std::uint32_t right) {
      const float a = slice[left];
      const float b = slice[right];
      const bool a_nan = std::isnan(a);
      const bool b_nan = std::isnan(b);
      if (a_nan != b_nan) return largest_ ? a_nan : b_nan;
      if (!a_nan && a != b) return largest_ ? a > b : a < b;
      return left < right;
    };
    for (std::size_t o = 0; o < outer; ++o) {
      for (std::size_t i = 0; i < inner; ++i) {
        const float* base = source + o * length * inner + i;
        for (std::size_t position = 0; position < length; ++position) slice[position] = base[position * inner];
        std::iota(order.begin(), order.end(), 0u);
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), before);
        for (std::size_t rank = 0; rank < k; ++rank) {
          const std::size_t target = o * k * inner + rank * inner + i;
          values[target] = slice[order[rank]];
          indices[target] = static_cast<float>(order[rank]);
        }
      }
    }
  }

 private:
  bool largest_ = true;
  int k_ = 0;
};

// ---- GatherElements -------------------------------------------------------------------------------

class GatherElementsLayer final : public HostLayer {
 public:
  explicit GatherElementsLayer(const cv::dnn::LayerParams& params) : HostLayer(params) {
    params_axis_ = params.get<int>("axis", 0);
  }
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) {
    return cv::makePtr<GatherElementsLayer>(params);
  }

  bool getMemoryShapes(const std::vector<MatShape>& computed, int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    const std::vector<MatShape> inputs = all_shapes(computed);
    expect_inputs(2, inputs.size());
    check_shapes(inputs[0], inputs[1]);
    outputs.assign(1, inputs[1]);
    return false;
  }

 protected:
  void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) override {
    expect_inputs(2, inputs.size());
    const MatShape data_shape = cv::dnn::shape(inputs[0]);
    const MatShape index_shape = cv::dnn::shape(inputs[1]);
    check_shapes(data_shape, index_shape);
    const auto rank = data_shape.size();
    const auto axis = static_cast<std::size_t>(params_axis_);
    std::vector<std::size_t> strides(rank, 1);
    for (std::size_t axis_from_end = 1; axis_from_end < rank; ++axis_from_end) {
      const std::size_t position = rank - 1 - axis_from_end;
      strides[position] = strides[position + 1] * static_cast<std::size_t>(data_shape[position + 1]);
    }
    const float* data = inputs[0].ptr<float>();
    const float* indices = inputs[1].ptr<float>();
    float* target = outputs.at(0).ptr<float>();
    const std::int64_t length = data_shape[axis];
    std::vector<int> coordinate(rank, 0);
    const std::size_t count = count_of(index_shape);
    for (std::size_t element = 0; element < count; ++element) {
      std::int64_t index = exact_integer(indices[element], where());
      if (index < -length || index >= length) {
        fail(where(), "index " + std::to_string(index) + " is outside [-" + std::to_string(length) + ", " +
                          std::to_string(length - 1) + "]");
      }
      if (index < 0) index += length;
      std::size_t offset = 0;
      for (std::size_t position = 0; position < rank; ++position) {
        const auto at =
            position == axis ? static_cast<std::size_t>(index) : static_cast<std::size_t>(coordinate[position]);
        offset += at * strides[position];
      }
      target[element] = data[offset];
      for (std::size_t position = rank; position-- > 0;) {
        if (++coordinate[position] < index_shape[position]) break;
        coordinate[position] = 0;
      }
    }
  }

 private:
  // ONNX: same rank; ONNX Runtime also requires indices no larger than data off the axis.
  void check_shapes(const MatShape& data, const MatShape& indices) const {
    if (data.size() != indices.size()) {
      fail(where(), "data " + shape_text(data) + " and indices " + shape_text(indices) + " differ in rank");
    }
    const auto axis = static_cast<std::size_t>(axis_within(static_cast<int>(data.size())));
    for (std::size_t position = 0; position < data.size(); ++position) {
      if (position != axis && indices[position] > data[position]) {
        fail(where(), "indices " + shape_text(indices) + " exceed data " + shape_text(data) + " on axis " +
                          std::to_string(position));
      }
    }
  }
};

// ---- Gather ----------------------------------------------------------------------------------------

class GatherLayer final : public HostLayer {
 public:
  explicit GatherLayer(const cv::dnn::LayerParams& params) : HostLayer(params) {
    params_axis_ = params.get<int>("axis", 0);
  }
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) { return cv::makePtr<GatherLayer>(params); }

  bool getMemoryShapes(const std::vector<MatShape>& computed, int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    const std::vector<MatShape> inputs = all_shapes(computed);
    expect_inputs(2, inputs.size());
    outputs.assign(1, output_shape(inputs[0], inputs[1]));
    return false;
  }

 protected:
  void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) override {
    expect_inputs(2, inputs.size());
    const MatShape data_shape = cv::dnn::shape(inputs[0]);
    const auto axis = static_cast<std::size_t>(axis_within(static_cast<int>(data_shape.size())));
    const std::size_t outer = count_of(data_shape, 0, axis);
    const auto length = static_cast<std::int64_t>(data_shape[axis]);
    const std::size_t inner = count_of(data_shape, axis + 1, data_shape.size());
    const std::size_t picks = inputs[1].total();
    const float* data = inputs[0].ptr<float>();
    const float* indices = inputs[1].ptr<float>();
    float* target = outputs.at(0).ptr<float>();
    for (std::size_t pick = 0; pick < picks; ++pick) {
      std::int64_t index = exact_integer(indices[pick], where());
      if (index < -length || index >= length) {
        fail(where(), "index " + std::to_string(index) + " is outside [-" + std::to_string(length) + ", " +
                          std::to_string(length - 1) + "]");
      }
      if (index < 0) index += length;
      for (std::size_t o = 0; o < outer; ++o) {
        const float* from = data + (o * static_cast<std::size_t>(length) + static_cast<std::size_t>(index)) * inner;
        std::copy(from, from + inner, target + (o * picks + pick) * inner);
      }
    }
  }

 private:
  MatShape output_shape(const MatShape& data, const MatShape& indices) const {
    const auto axis = static_cast<std::size_t>(axis_within(static_cast<int>(data.size())));
    MatShape shape(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(axis));
    shape.insert(shape.end(), indices.begin(), indices.end());
    shape.insert(shape.end(), data.begin() + static_cast<std::ptrdiff_t>(axis) + 1, data.end());
    return shape;
  }
};

// ---- Tile ------------------------------------------------------------------------------------------

class TileLayer final : public HostLayer {
 public:
  explicit TileLayer(const cv::dnn::LayerParams& params) : HostLayer(params) {
    if (constants_.size() != 1 || constant_positions_.front() != 1) {
      fail(where(), "needs the repeats as constant input 1");
    }
    const cv::Mat& repeats = constants_.front();
    for (std::size_t axis = 0; axis < repeats.total(); ++axis) {
      const std::int64_t count = exact_integer(repeats.ptr<float>()[axis], where());
      if (count < 0) fail(where(), "repeats must not be negative, got " + std::to_string(count));
      repeats_.push_back(static_cast<int>(count));
    }
  }
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) { return cv::makePtr<TileLayer>(params); }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    if (inputs.size() != 1) fail(where(), "expects one computed input, got " + std::to_string(inputs.size()));
    outputs.assign(1, output_shape(inputs[0]));
    return false;
  }

 protected:
  void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) override {
    const MatShape input_shape = cv::dnn::shape(inputs.at(0));
    const MatShape shape = output_shape(input_shape);
    const auto rank = shape.size();
    std::vector<std::size_t> strides(rank, 1);
    for (std::size_t from_end = 1; from_end < rank; ++from_end) {
      const std::size_t position = rank - 1 - from_end;
      strides[position] = strides[position + 1] * static_cast<std::size_t>(input_shape[position + 1]);
    }
    const float* source = inputs[0].ptr<float>();
    float* target = outputs.at(0).ptr<float>();
    std::vector<int> coordinate(rank, 0);
    const std::size_t count = count_of(shape);
    for (std::size_t element = 0; element < count; ++element) {
      std::size_t offset = 0;
      for (std::size_t position = 0; position < rank; ++position) {
        offset += static_cast<std::size_t>(coordinate[position] % input_shape[position]) * strides[position];
      }
      target[element] = source[offset];
      for (std::size_t position = rank; position-- > 0;) {
        if (++coordinate[position] < shape[position]) break;
        coordinate[position] = 0;
      }
    }
  }

 private:
  MatShape output_shape(const MatShape& input) const {
    if (input.size() != repeats_.size()) {
      fail(where(), "input " + shape_text(input) + " has rank " + std::to_string(input.size()) + " but " +
                        std::to_string(repeats_.size()) + " repeats");
    }
    MatShape shape = input;
    for (std::size_t axis = 0; axis < shape.size(); ++axis) shape[axis] *= repeats_[axis];
    return shape;
  }

  std::vector<int> repeats_;
};

// ---- element-wise integer arithmetic with broadcasting ---------------------------------------------

class BinaryLayer : public HostLayer {
 public:
  explicit BinaryLayer(const cv::dnn::LayerParams& params) : HostLayer(params) {}

  bool getMemoryShapes(const std::vector<MatShape>& computed, int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    const std::vector<MatShape> inputs = all_shapes(computed);
    expect_inputs(2, inputs.size());
    outputs.assign(1, broadcast_shape(inputs[0], inputs[1]));
    return false;
  }

 protected:
  virtual float apply(float left, float right) const = 0;

  void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) override {
    expect_inputs(2, inputs.size());
    const MatShape left_shape = cv::dnn::shape(inputs[0]);
    const MatShape right_shape = cv::dnn::shape(inputs[1]);
    const MatShape shape = broadcast_shape(left_shape, right_shape);
    const std::vector<std::size_t> left_strides = broadcast_strides(left_shape, shape);
    const std::vector<std::size_t> right_strides = broadcast_strides(right_shape, shape);
    const float* left = inputs[0].ptr<float>();
    const float* right = inputs[1].ptr<float>();
    float* target = outputs.at(0).ptr<float>();
    std::vector<int> coordinate(shape.size(), 0);
    const std::size_t count = count_of(shape);
    for (std::size_t element = 0; element < count; ++element) {
      std::size_t left_offset = 0;
      std::size_t right_offset = 0;
      for (std::size_t position = 0; position < shape.size(); ++position) {
        left_offset += static_cast<std::size_t>(coordinate[position]) * left_strides[position];
        right_offset += static_cast<std::size_t>(coordinate[position]) * right_strides[position];
      }
      target[element] = apply(left[left_offset], right[right_offset]);
      for (std::size_t position = shape.size(); position-- > 0;) {
        if (++coordinate[position] < shape[position]) break;
        coordinate[position] = 0;
      }
    }
  }

 private:
  // A one-element operand is a scalar whatever rank OpenCV gave it (an ONNX scalar constant is a
  // rank-1 Mat); otherwise numpy rules, aligned from the last axis.
  MatShape broadcast_shape(const MatShape& left, const MatShape& right) const {
    if (count_of(right) == 1) return left;
    if (count_of(left) == 1) return right;
    MatShape shape(std::max(left.size(), right.size()), 1);
    for (std::size_t from_end = 0; from_end < shape.size(); ++from_end) {
      const int a = from_end < left.size() ? left[left.size() - 1 - from_end] : 1;
      const int b = from_end < right.size() ? right[right.size() - 1 - from_end] : 1;
      if (a != b && a != 1 && b != 1) {
        fail(where(), "cannot broadcast " + shape_text(left) + " with " + shape_text(right));
      }
      shape[shape.size() - 1 - from_end] = std::max(a, b);
    }
    return shape;
  }

  static std::vector<std::size_t> broadcast_strides(const MatShape& operand, const MatShape& shape) {
    std::vector<std::size_t> strides(shape.size(), 0);
    if (count_of(operand) == 1) return strides;
    std::size_t stride = 1;
    for (std::size_t from_end = 0; from_end < operand.size(); ++from_end) {
      const std::size_t position = shape.size() - 1 - from_end;
      const int dim = operand[operand.size() - 1 - from_end];
      strides[position] = dim == 1 ? 0 : stride;
      stride *= static_cast<std::size_t>(dim);
    }
    return strides;
  }
};

class ModLayer final : public BinaryLayer {
 public:
  explicit ModLayer(const cv::dnn::LayerParams& params)
      : BinaryLayer(params), c_fmod_(params.get<int>("fmod", 0) != 0) {}
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) { return cv::makePtr<ModLayer>(params); }

 protected:
  float apply(float left, float right) const override {
    if (c_fmod_) return std::fmod(left, right);  // fmod = 1: the dividend's sign (C fmod)
    const std::int64_t dividend = exact_integer(left, where());
    const std::int64_t divisor = exact_integer(right, where());
    if (divisor == 0) fail(where(), "integer Mod by zero");
    std::int64_t remainder = dividend % divisor;
    if (remainder != 0 && ((remainder < 0) != (divisor < 0))) remainder += divisor;  // the divisor's sign
    return static_cast<float>(remainder);
  }

 private:
  bool c_fmod_;
};

class IntegerDivLayer final : public BinaryLayer {
 public:
  explicit IntegerDivLayer(const cv::dnn::LayerParams& params) : BinaryLayer(params) {}
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) { return cv::makePtr<IntegerDivLayer>(params); }

 protected:
  float apply(float left, float right) const override {
    const std::int64_t dividend = exact_integer(left, where());
    const std::int64_t divisor = exact_integer(right, where());
    if (divisor == 0) fail(where(), "integer Div by zero");
    return static_cast<float>(dividend / divisor);  // C++ truncates towards zero, as ONNX Runtime
  }
};

}  // namespace

void register_opencv_custom_layers() {
  static std::once_flag once;
  std::call_once(once, [] {
    cv::dnn::LayerFactory::registerLayer(dynamic_quantize_op, &DynamicQuantizeLayer::create);
    cv::dnn::LayerFactory::registerLayer(integer_rescale_op, &IntegerRescaleLayer::create);
    cv::dnn::LayerFactory::registerLayer(logistic_op, &LogisticLayer::create);
    cv::dnn::LayerFactory::registerLayer(softmax_op, &SoftmaxLayer::create);
    cv::dnn::LayerFactory::registerLayer(mlas_matmul_op, &MlasMatMulLayer::create);
    cv::dnn::LayerFactory::registerLayer(topk_op, &TopKLayer::create);
    cv::dnn::LayerFactory::registerLayer(gather_elements_op, &GatherElementsLayer::create);
    cv::dnn::LayerFactory::registerLayer(gather_op, &GatherLayer::create);
    cv::dnn::LayerFactory::registerLayer(tile_op, &TileLayer::create);
    cv::dnn::LayerFactory::registerLayer(mod_op, &ModLayer::create);
    cv::dnn::LayerFactory::registerLayer(integer_div_op, &IntegerDivLayer::create);
  });
}

}  // namespace detflow::detail
