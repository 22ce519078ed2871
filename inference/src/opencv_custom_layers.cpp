#include "opencv_custom_layers.h"

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/dnn/layer.details.hpp>
#include <opencv2/dnn/shape_utils.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
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

// ---- DynamicQuantizeLinear -> DequantizeLinear ---------------------------------------------------

class FakeQuantizeLayer final : public HostLayer {
 public:
  explicit FakeQuantizeLayer(const cv::dnn::LayerParams& params) : HostLayer(params) {}
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) { return cv::makePtr<FakeQuantizeLayer>(params); }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    expect_inputs(1, all_shapes(inputs).size());
    outputs.assign(1, inputs.at(0));
    return false;
  }

 protected:
  void run(const std::vector<cv::Mat>& inputs, std::vector<cv::Mat>& outputs) override {
    expect_inputs(1, inputs.size());
    const cv::Mat& x = inputs[0];
    cv::Mat& y = outputs.at(0);
    const auto count = static_cast<int>(x.total());
    const cv::Mat flat(1, count, CV_32F, const_cast<void*>(static_cast<const void*>(x.ptr<float>())));
    double low = 0.0;
    double high = 0.0;
    if (count > 0) cv::minMaxIdx(flat, &low, &high);
    // ONNX Runtime's GetQuantizationParameter, in float32 as it computes them: the range always
    // includes 0; an all-zero input gets scale 1 (the spec's formula would divide by zero).
    const float range_min = std::min(static_cast<float>(low), 0.0f);
    const float range_max = std::max(static_cast<float>(high), 0.0f);
    const float scale = range_max == range_min ? 1.0f : (range_max - range_min) / 255.0f;
    const float zero_point = round_half_even(std::clamp(0.0f - range_min / scale, 0.0f, 255.0f));
    // MLAS's QuantizeLinear: x / scale, clamped to the representable [0 - zp, 255 - zp] (integer
    // bounds, so clamping before rounding equals saturating after), rounded half to even. The
    // dequantised value is then (q - zp) * scale = rounded * scale.
    const float lowest = 0.0f - zero_point;
    const float highest = 255.0f - zero_point;
    const float* source = x.ptr<float>();
    float* target = y.ptr<float>();
    constexpr int block = 1 << 15;
    cv::parallel_for_(cv::Range(0, (count + block - 1) / block), [&](const cv::Range& blocks) {
      const int begin = blocks.start * block;
      const int end = std::min(count, blocks.end * block);
      for (int index = begin; index < end; ++index) {
        const float steps = std::min(std::max(source[index] / scale, lowest), highest);
        target[index] = round_half_even(steps) * scale;
      }
    });
  }
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
    cv::dnn::LayerFactory::registerLayer(fake_quantize_op, &FakeQuantizeLayer::create);
    cv::dnn::LayerFactory::registerLayer(topk_op, &TopKLayer::create);
    cv::dnn::LayerFactory::registerLayer(gather_elements_op, &GatherElementsLayer::create);
    cv::dnn::LayerFactory::registerLayer(gather_op, &GatherLayer::create);
    cv::dnn::LayerFactory::registerLayer(tile_op, &TileLayer::create);
    cv::dnn::LayerFactory::registerLayer(mod_op, &ModLayer::create);
    cv::dnn::LayerFactory::registerLayer(integer_div_op, &IntegerDivLayer::create);
  });
}

}  // namespace detflow::detail
