#include "graph_rewrite.h"

#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "detflow/error.h"
#include "opencv_custom_layers.h"

namespace detflow::detail {
namespace {

using onnx::TensorProto;
using Shape = std::vector<std::int64_t>;

std::string shape_text(const Shape& shape) {
  std::ostringstream text;
  text << '[';
  for (std::size_t axis = 0; axis < shape.size(); ++axis) text << (axis ? ", " : "") << shape[axis];
  text << ']';
  return text.str();
}

// Saturates at the largest int64 instead of overflowing: dims come from the file, and a
// malformed one must read as "too large", not wrap around (found by fuzzing).
std::int64_t element_count(const Shape& shape) {
  std::int64_t count = 1;
  for (const std::int64_t dim : shape) {
    if (__builtin_mul_overflow(count, dim, &count)) return std::numeric_limits<std::int64_t>::max();
  }
  return count;
}

Shape dims_of(const TensorProto& tensor) { return {tensor.dims().begin(), tensor.dims().end()}; }

template <typename T>
std::vector<T> raw_values(const TensorProto& tensor) {
  const std::string& raw = tensor.raw_data();
  std::vector<T> values(raw.size() / sizeof(T));
  if (!values.empty()) std::memcpy(values.data(), raw.data(), values.size() * sizeof(T));
  return values;
}

void require_embedded_data(const TensorProto& tensor) {
  if (tensor.data_location() == TensorProto::EXTERNAL) {
    throw Error("graph rewrite: tensor '" + tensor.name() +
                "' keeps its data in an external file; OpenCV loads only self-contained models");
  }
}

// Any numeric tensor as doubles (exact for every integer type the rewrites read).
std::vector<double> values_as_double(const TensorProto& tensor) {
  require_embedded_data(tensor);
  const bool raw = tensor.has_raw_data();
  std::vector<double> values;
  auto append = [&values](const auto& source) { values.assign(source.begin(), source.end()); };
  switch (tensor.data_type()) {
    case TensorProto::FLOAT:
      if (raw)
        append(raw_values<float>(tensor));
      else
        append(tensor.float_data());
      break;
    case TensorProto::DOUBLE:
      if (raw)
        append(raw_values<double>(tensor));
      else
        append(tensor.double_data());
      break;
    case TensorProto::FLOAT16: {
      std::vector<std::uint16_t> bits;
      if (raw)
        bits = raw_values<std::uint16_t>(tensor);
      else
        for (const auto word : tensor.int32_data()) bits.push_back(static_cast<std::uint16_t>(word));
      for (const auto half : bits) values.push_back(half_to_float(half));
      break;
    }
    case TensorProto::INT8:
      if (raw)
        append(raw_values<std::int8_t>(tensor));
      else
        append(tensor.int32_data());
      break;
    case TensorProto::UINT8:
      if (raw)
        append(raw_values<std::uint8_t>(tensor));
      else
        append(tensor.int32_data());
      break;
    case TensorProto::INT32:
      if (raw)
        append(raw_values<std::int32_t>(tensor));
      else
        append(tensor.int32_data());
      break;
    case TensorProto::INT64:
      if (raw)
        append(raw_values<std::int64_t>(tensor));
      else
        append(tensor.int64_data());
      break;
    default:
      throw Error("graph rewrite: tensor '" + tensor.name() + "' has element type " +
                  TensorProto::DataType_Name(static_cast<TensorProto::DataType>(tensor.data_type())) +
                  "; the rewrites read float, float16, double, int8, uint8, int32 and int64");
  }
  return values;
}

// Replaces the tensor's contents with float32 values (raw little-endian), keeping its name.
void store_floats(TensorProto& tensor, const Shape& shape, const std::vector<float>& values) {
  const std::string name = tensor.name();
  tensor.Clear();
  tensor.set_name(name);
  tensor.set_data_type(TensorProto::FLOAT);
  for (const auto dim : shape) tensor.add_dims(dim);
  tensor.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
}

std::vector<float> to_floats(const std::vector<double>& values) { return {values.begin(), values.end()}; }

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& attribute : node.attribute()) {
    if (attribute.name() == name) return &attribute;
  }
  return nullptr;
}

// Who produces and who consumes each value of the main graph, and which values are constant.
// Rebuilt after each pass; node indices are positions in graph.node().
struct GraphIndex {
  std::unordered_map<std::string, int> producer;
  std::unordered_map<std::string, std::vector<int>> consumers;
  std::unordered_set<std::string> graph_outputs;
  std::unordered_map<std::string, const TensorProto*> initializers;
  std::unordered_map<std::string, TensorProto> constant_nodes;  // Constant node output -> its value
  bool has_subgraphs = false;

  explicit GraphIndex(const onnx::GraphProto& graph) {
    for (const auto& tensor : graph.initializer()) initializers[tensor.name()] = &tensor;
    for (const auto& output : graph.output()) graph_outputs.insert(output.name());
    for (int index = 0; index < graph.node_size(); ++index) {
      const auto& node = graph.node(index);
      for (const auto& output : node.output()) producer[output] = index;
      for (const auto& input : node.input()) {
        if (!input.empty()) consumers[input].push_back(index);
      }
      for (const auto& attribute : node.attribute()) {
        if (attribute.has_g() || attribute.graphs_size() > 0) has_subgraphs = true;
      }
      if (node.op_type() == "Constant" && node.domain().empty() && node.output_size() == 1) {
        if (auto value = constant_node_value(node)) constant_nodes[node.output(0)] = std::move(*value);
      }
    }
  }

  // The constant value of a tensor name (initializer or Constant node), or nullptr.
  const TensorProto* constant(const std::string& name) const {
    if (const auto found = initializers.find(name); found != initializers.end()) return found->second;
    if (const auto found = constant_nodes.find(name); found != constant_nodes.end()) return &found->second;
    return nullptr;
  }

  std::size_t consumer_count(const std::string& name) const {
    const auto found = consumers.find(name);
    return found == consumers.end() ? 0 : found->second.size();
  }

  static std::optional<TensorProto> constant_node_value(const onnx::NodeProto& node) {
    for (const auto& attribute : node.attribute()) {
      TensorProto value;
      if (attribute.name() == "value") {
        value = attribute.t();
      } else if (attribute.name() == "value_ints") {
        value.set_data_type(TensorProto::INT64);
        value.add_dims(attribute.ints_size());
        for (const auto element : attribute.ints()) value.add_int64_data(element);
      } else if (attribute.name() == "value_int") {
        value.set_data_type(TensorProto::INT64);
        value.add_int64_data(attribute.i());
      } else if (attribute.name() == "value_floats") {
        value.set_data_type(TensorProto::FLOAT);
        value.add_dims(attribute.floats_size());
        for (const auto element : attribute.floats()) value.add_float_data(element);
      } else if (attribute.name() == "value_float") {
        value.set_data_type(TensorProto::FLOAT);
        value.add_float_data(attribute.f());
      } else {
        continue;
      }
      value.set_name(node.output(0));
      return value;
    }
    return std::nullopt;
  }
};

void remove_nodes(onnx::GraphProto& graph, const std::vector<bool>& remove) {
  google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
  for (int index = 0; index < graph.node_size(); ++index) {
    if (!remove[static_cast<std::size_t>(index)]) kept.Add(std::move(*graph.mutable_node(index)));
  }
  graph.mutable_node()->Swap(&kept);
}

// Drops nodes none of whose outputs is used (repeatedly), then unused initializers and the
// value_info of values nothing produces any more. Only run after a pass orphaned nodes.
void remove_dead_code(onnx::GraphProto& graph) {
  for (bool changed = true; changed;) {
    const GraphIndex index(graph);
    if (index.has_subgraphs) return;  // outer values used inside subgraphs are not indexed
    std::vector<bool> remove(static_cast<std::size_t>(graph.node_size()), false);
    changed = false;
    for (int position = 0; position < graph.node_size(); ++position) {
      const auto& node = graph.node(position);
      const bool used = std::any_of(node.output().begin(), node.output().end(), [&](const std::string& output) {
        return !output.empty() && (index.consumer_count(output) > 0 || index.graph_outputs.contains(output));
      });
      if (!used) {
        remove[static_cast<std::size_t>(position)] = true;
        changed = true;
      }
    }
    if (changed) remove_nodes(graph, remove);
  }
  const GraphIndex index(graph);
  google::protobuf::RepeatedPtrField<TensorProto> kept_initializers;
  for (auto& tensor : *graph.mutable_initializer()) {
    if (index.consumer_count(tensor.name()) > 0 || index.graph_outputs.contains(tensor.name())) {
      kept_initializers.Add(std::move(tensor));
    }
  }
  graph.mutable_initializer()->Swap(&kept_initializers);
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> kept_value_info;
  for (auto& info : *graph.mutable_value_info()) {
    if (index.producer.contains(info.name())) kept_value_info.Add(std::move(info));
  }
  graph.mutable_value_info()->Swap(&kept_value_info);
}

// A name no value or initializer of the graph uses yet, starting from `base`.
std::string fresh_name(const GraphIndex& index, std::unordered_set<std::string>& taken, const std::string& base) {
  std::string name = base;
  while (index.initializers.contains(name) || index.producer.contains(name) || taken.contains(name)) name += "_";
  taken.insert(name);
  return name;
}

// What onnx shape inference tells about a value: element type (0 when unknown) and dims (-1 for
// a dim it could not fix); rank -1 when even the rank is unknown.
struct ValueFacts {
  int element_type = 0;
  int rank = -1;
  Shape dims;
  bool is_static() const {
    return rank >= 0 && std::none_of(dims.begin(), dims.end(), [](std::int64_t dim) { return dim < 0; });
  }
};

// Runs inference on a copy (inference adds value_info). Ops it does not know (detflow's custom
// layers) leave their outputs, and what depends on them, unknown: run it before those appear.
std::unordered_map<std::string, ValueFacts> infer_values(const onnx::ModelProto& model) {
  onnx::ModelProto inferred = model;
  onnx::ShapeInferenceOptions options{};
  options.check_type = false;
  options.error_mode = 0;  // an op it cannot infer leaves its outputs unknown; that is enough here
  options.enable_data_propagation = true;
  try {
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception&) {
    // Inference gives up on graphs it finds inconsistent; fall back to the declared facts.
  }
  std::unordered_map<std::string, ValueFacts> facts;
  auto collect = [&facts](const onnx::ValueInfoProto& info) {
    if (!info.type().has_tensor_type()) return;
    const auto& tensor_type = info.type().tensor_type();
    ValueFacts value;
    value.element_type = tensor_type.elem_type();
    if (tensor_type.has_shape()) {
      value.rank = tensor_type.shape().dim_size();
      for (const auto& dim : tensor_type.shape().dim())
        value.dims.push_back(dim.has_dim_value() ? dim.dim_value() : -1);
    }
    facts[info.name()] = std::move(value);
  };
  for (const auto& info : inferred.graph().input()) collect(info);
  for (const auto& info : inferred.graph().value_info()) collect(info);
  for (const auto& info : inferred.graph().output()) collect(info);
  return facts;
}

// Static shapes of every value shape inference can fix.
std::unordered_map<std::string, Shape> infer_static_shapes(const onnx::ModelProto& model) {
  std::unordered_map<std::string, Shape> shapes;
  for (auto& [name, value] : infer_values(model)) {
    if (value.is_static()) shapes[name] = std::move(value.dims);
  }
  return shapes;
}

}  // namespace

// ---- 1. static input dims -------------------------------------------------------------------

std::optional<std::string> fix_input_dims(onnx::ModelProto& model, const InputShapeDecision& decision) {
  auto& graph = *model.mutable_graph();
  std::unordered_set<std::string> initializer_names;
  for (const auto& tensor : graph.initializer()) initializer_names.insert(tensor.name());
  onnx::ValueInfoProto* input = nullptr;
  for (auto& candidate : *graph.mutable_input()) {
    if (initializer_names.contains(candidate.name())) continue;
    if (decision.input_name.empty() || candidate.name() == decision.input_name) {
      input = &candidate;
      break;
    }
  }
  if (input == nullptr) {
    throw Error("graph rewrite: the model has no input named '" + decision.input_name + "'");
  }
  if (decision.shape.empty()) return std::nullopt;
  auto& tensor_type = *input->mutable_type()->mutable_tensor_type();
  auto& shape = *tensor_type.mutable_shape();
  if (tensor_type.has_shape() && shape.dim_size() != static_cast<int>(decision.shape.size())) {
    throw Error("graph rewrite: input '" + input->name() + "' has rank " + std::to_string(shape.dim_size()) +
                " but the decided input shape is " + shape_text(decision.shape));
  }
  if (!tensor_type.has_shape()) {
    for (std::size_t axis = 0; axis < decision.shape.size(); ++axis) shape.add_dim();
  }
  std::ostringstream before;
  bool changed = false;
  before << '[';
  for (int axis = 0; axis < shape.dim_size(); ++axis) {
    auto& dim = *shape.mutable_dim(axis);
    const std::int64_t wanted = decision.shape[static_cast<std::size_t>(axis)];
    before << (axis ? ", " : "");
    if (dim.has_dim_value()) {
      before << dim.dim_value();
      if (dim.dim_value() != wanted) {
        throw Error("graph rewrite: input '" + input->name() + "' dim " + std::to_string(axis) + " is fixed at " +
                    std::to_string(dim.dim_value()) + " in the model, not " + std::to_string(wanted) +
                    " as decided; use the model's size");
      }
      continue;
    }
    before << (dim.has_dim_param() && !dim.dim_param().empty() ? dim.dim_param() : "?");
    dim.Clear();
    dim.set_dim_value(wanted);
    changed = true;
  }
  before << ']';
  if (!changed) return std::nullopt;
  return "static input dims: " + input->name() + " " + before.str() + " -> " + shape_text(decision.shape) + " (" +
         decision.reason + ")";
}

// ---- 2. float16 -> float32 ------------------------------------------------------------------

namespace {

bool convert_tensor_to_float(TensorProto& tensor) {
  if (tensor.data_type() != TensorProto::FLOAT16) return false;
  store_floats(tensor, dims_of(tensor), to_floats(values_as_double(tensor)));
  return true;
}

bool convert_type_to_float(onnx::TypeProto& type) {
  if (type.has_tensor_type() && type.tensor_type().elem_type() == TensorProto::FLOAT16) {
    type.mutable_tensor_type()->set_elem_type(TensorProto::FLOAT);
    return true;
  }
  return false;
}

}  // namespace

std::optional<std::string> convert_float16_to_float32(onnx::ModelProto& model) {
  auto& graph = *model.mutable_graph();
  int initializers = 0;
  int attribute_tensors = 0;
  int casts = 0;
  int declarations = 0;
  for (auto& tensor : *graph.mutable_initializer()) initializers += convert_tensor_to_float(tensor);
  for (auto& node : *graph.mutable_node()) {
    for (auto& attribute : *node.mutable_attribute()) {
      if (attribute.has_t()) attribute_tensors += convert_tensor_to_float(*attribute.mutable_t());
      for (auto& tensor : *attribute.mutable_tensors()) attribute_tensors += convert_tensor_to_float(tensor);
      const bool cast_target = (node.op_type() == "Cast" && attribute.name() == "to");
      if (cast_target && attribute.i() == TensorProto::FLOAT16) {
        attribute.set_i(TensorProto::FLOAT);
        ++casts;
      }
    }
  }
  for (auto& info : *graph.mutable_input()) declarations += convert_type_to_float(*info.mutable_type());
  for (auto& info : *graph.mutable_output()) declarations += convert_type_to_float(*info.mutable_type());
  for (auto& info : *graph.mutable_value_info()) declarations += convert_type_to_float(*info.mutable_type());
  if (initializers + attribute_tensors + casts + declarations == 0) return std::nullopt;
  std::ostringstream note;
  note << "float16 -> float32: " << initializers << " initializers, " << attribute_tensors << " constant tensors, "
       << casts << " Cast(to=float16) nodes, " << declarations << " input/output/value_info types";
  return note.str();
}

// ---- 6. dynamic int8 -> integer float arithmetic ---------------------------------------------------------

namespace {

// The integer weight w_q - zero_point as float (exact: |w_q - zero_point| <= 255), with the zero
// point per tensor or per slice along `axis` (output channels for Conv weights, columns for
// MatMul's B).
std::vector<float> integer_weight(const TensorProto& weight, const TensorProto* zero_point, std::size_t axis) {
  const Shape shape = dims_of(weight);
  const std::vector<double> quantized = values_as_double(weight);
  const std::vector<double> zero_points = zero_point ? values_as_double(*zero_point) : std::vector<double>{0.0};
  const std::int64_t axis_size = axis < shape.size() ? shape[axis] : 1;
  const std::int64_t inner =
      element_count(Shape(shape.begin() + static_cast<std::ptrdiff_t>(std::min(axis + 1, shape.size())), shape.end()));
  if (zero_points.size() != 1 && static_cast<std::int64_t>(zero_points.size()) != axis_size) {
    throw Error("graph rewrite: zero point of weight '" + weight.name() + "' has " +
                std::to_string(zero_points.size()) + " values; expected 1 or " + std::to_string(axis_size) +
                " (one per slice on axis " + std::to_string(axis) + ")");
  }
  std::vector<float> result(quantized.size());
  for (std::size_t element = 0; element < quantized.size(); ++element) {
    const auto slice = static_cast<std::size_t>((static_cast<std::int64_t>(element) / inner) % axis_size);
    const double slice_zero = zero_points.size() == 1 ? zero_points[0] : zero_points[slice];
    result[element] = static_cast<float>(quantized[element] - slice_zero);
  }
  return result;
}

// The rescale Mul broadcasts the weight scale against the integer result by ONNX rules, so
// the rescale is equivalent only when the scale is one value, or its values line up
// with the output channels (Conv: axis 1 of the output) or columns (MatMul: the last axis).
bool scale_follows_weight_axis(const Shape& scale, const Shape& weight, bool convolution) {
  if (element_count(scale) == 1) return true;
  const auto varying = std::count_if(scale.begin(), scale.end(), [](std::int64_t dim) { return dim != 1; });
  if (varying != 1) return false;
  const auto position = static_cast<std::size_t>(
      std::find_if(scale.begin(), scale.end(), [](std::int64_t dim) { return dim != 1; }) - scale.begin());
  if (!convolution) return position + 1 == scale.size() && !weight.empty() && scale[position] == weight.back();
  // Conv output rank equals the weight's rank: [N, C_out, spatial...].
  const auto aligned = static_cast<std::int64_t>(weight.size()) - static_cast<std::int64_t>(scale.size()) +
                       static_cast<std::int64_t>(position);
  return aligned == 1 && !weight.empty() && scale[position] == weight.front();
}

// Each float MatMul of two computed tensors becomes DetflowMatMul (ONNX Runtime's FusedMatMul,
// summed as MLAS does), folding what ONNX Runtime's optimiser folds into FusedMatMul: a Transpose
// swapping the last two axes of an operand (transA / transB) when the MatMul is its only reader,
// and a scalar float Mul feeding that Transpose (alpha). A node is left to OpenCV when
// rank_of (-1: unknown) says an operand has rank < 2, which DetflowMatMul refuses. Returns the
// number of nodes routed; removes the folded nodes.
int route_computed_matmuls(onnx::GraphProto& graph, const std::function<int(const std::string&)>& rank_of) {
  int matmuls = 0;
  const GraphIndex index(graph);
  auto only_consumer_is = [&](const std::string& value, const onnx::NodeProto& reader) {
    const auto found = index.consumers.find(value);
    return found != index.consumers.end() && found->second.size() == 1 &&
           &graph.node(found->second.front()) == &reader && !index.graph_outputs.contains(value);
  };
  auto producer = [&](const std::string& value) -> onnx::NodeProto* {
    const auto found = index.producer.find(value);
    return found == index.producer.end() ? nullptr : graph.mutable_node(found->second);
  };
  auto swaps_last_two = [&](const onnx::NodeProto& transpose) {
    const auto* perm = find_attribute(transpose, "perm");
    if (perm == nullptr || perm->ints_size() < 2) return false;
    const int rank = perm->ints_size();
    for (int axis = 0; axis < rank - 2; ++axis) {
      if (perm->ints(axis) != axis) return false;
    }
    return perm->ints(rank - 2) == rank - 1 && perm->ints(rank - 1) == rank - 2;
  };
  for (int position = 0; position < graph.node_size(); ++position) {
    auto& node = *graph.mutable_node(position);
    if (node.op_type() != "MatMul" || !node.domain().empty() || node.input_size() != 2 ||
        index.constant(node.input(0)) || index.constant(node.input(1))) {
      continue;
    }
    const int rank_a = rank_of(node.input(0));
    const int rank_b = rank_of(node.input(1));
    if ((rank_a >= 0 && rank_a < 2) || (rank_b >= 0 && rank_b < 2)) continue;
    float alpha = 1.0f;
    bool transposed[2] = {false, false};
    std::string sources[2] = {node.input(0), node.input(1)};
    for (int operand = 0; operand < 2; ++operand) {
      onnx::NodeProto* transpose = producer(sources[operand]);
      if (transpose && transpose->op_type() == "Transpose" && transpose->domain().empty() &&
          swaps_last_two(*transpose) && only_consumer_is(sources[operand], node)) {
        transposed[operand] = true;
        const onnx::NodeProto& reader = *transpose;
        sources[operand] = transpose->input(0);
        onnx::NodeProto* scale = producer(sources[operand]);
        if (scale && scale->op_type() == "Mul" && scale->domain().empty() &&
            only_consumer_is(sources[operand], reader)) {
          for (int side = 0; side < 2; ++side) {
            const TensorProto* factor = index.constant(scale->input(side));
            if (factor && factor->data_type() == TensorProto::FLOAT && element_count(dims_of(*factor)) == 1) {
              alpha *= static_cast<float>(values_as_double(*factor).at(0));
              sources[operand] = scale->input(1 - side);
              break;
            }
          }
        }
      }
    }
    node.set_op_type(mlas_matmul_op);
    node.set_input(0, sources[0]);
    node.set_input(1, sources[1]);
    auto add_attribute = [&](const char* name) -> onnx::AttributeProto& {
      auto& attribute = *node.add_attribute();
      attribute.set_name(name);
      return attribute;
    };
    auto& alpha_attribute = add_attribute("alpha");
    alpha_attribute.set_type(onnx::AttributeProto::FLOAT);
    alpha_attribute.set_f(alpha);
    for (int operand = 0; operand < 2; ++operand) {
      auto& flag = add_attribute(operand == 0 ? "transA" : "transB");
      flag.set_type(onnx::AttributeProto::INT);
      flag.set_i(transposed[operand] ? 1 : 0);
    }
    ++matmuls;
  }
  // The folded Transpose/Mul nodes have no reader left.
  if (matmuls > 0) remove_dead_code(graph);
  return matmuls;
}

}  // namespace

std::optional<std::string> reproduce_dynamic_int8(onnx::ModelProto& model) {
  auto& graph = *model.mutable_graph();
  const GraphIndex index(graph);
  std::vector<bool> remove(static_cast<std::size_t>(graph.node_size()), false);
  std::vector<TensorProto> new_initializers;
  std::unordered_set<std::string> taken_names;
  // DynamicQuantizeLinear node position -> the names of its replacement's outputs (one node per
  // DynamicQuantizeLinear, shared by every ConvInteger/MatMulInteger reading its x_q).
  struct QuantizedNames {
    std::string integers;  // q - zero_point
    std::string scale;
  };
  std::unordered_map<int, QuantizedNames> quantize_replacements;
  int convolutions = 0;
  int matrix_products = 0;
  int left_alone = 0;

  auto single_consumer = [&](const std::string& value) -> const onnx::NodeProto* {
    const auto found = index.consumers.find(value);
    if (found == index.consumers.end() || found->second.size() != 1 || index.graph_outputs.contains(value)) {
      return nullptr;
    }
    return &graph.node(found->second.front());
  };
  auto producer_of = [&](const std::string& value) -> const onnx::NodeProto* {
    const auto found = index.producer.find(value);
    return found == index.producer.end() ? nullptr : &graph.node(found->second);
  };

  for (int position = 0; position < graph.node_size(); ++position) {
    auto& node = *graph.mutable_node(position);
    const bool is_conv = node.op_type() == "ConvInteger";
    const bool is_matmul = node.op_type() == "MatMulInteger";
    if (!(is_conv || is_matmul) || !node.domain().empty()) continue;
    // Matches: DynamicQuantizeLinear(x) -> {x_q, x_scale, x_zp}; Q = ConvInteger(x_q, w_q, x_zp, w_zp);
    // C = Cast(Q, to=float); S = Mul(x_scale, w_scale); y = Mul(C, S).
    const onnx::NodeProto* quantize = producer_of(node.input(0));
    const TensorProto* weight = node.input_size() > 1 ? index.constant(node.input(1)) : nullptr;
    const TensorProto* weight_zero_point =
        node.input_size() > 3 && !node.input(3).empty() ? index.constant(node.input(3)) : nullptr;
    const onnx::NodeProto* cast = single_consumer(node.output(0));
    const onnx::NodeProto* rescale = cast ? single_consumer(cast->output(0)) : nullptr;
    const bool chain_matches =
        quantize && quantize->op_type() == "DynamicQuantizeLinear" && quantize->domain().empty() &&
        quantize->output(0) == node.input(0) &&
        (node.input_size() < 3 || node.input(2).empty() || node.input(2) == quantize->output(2)) && weight &&
        (node.input_size() < 4 || node.input(3).empty() || weight_zero_point) && cast && cast->op_type() == "Cast" &&
        find_attribute(*cast, "to") && find_attribute(*cast, "to")->i() == TensorProto::FLOAT && rescale &&
        rescale->op_type() == "Mul";
    const TensorProto* weight_scale = nullptr;
    if (chain_matches) {
      const std::string& other = rescale->input(0) == cast->output(0) ? rescale->input(1) : rescale->input(0);
      const onnx::NodeProto* scales = producer_of(other);
      if (scales && scales->op_type() == "Mul") {
        const auto& activation_scale = quantize->output(1);
        if (scales->input(0) == activation_scale) weight_scale = index.constant(scales->input(1));
        if (scales->input(1) == activation_scale) weight_scale = index.constant(scales->input(0));
      }
    }
    if (!weight_scale || !scale_follows_weight_axis(dims_of(*weight_scale), dims_of(*weight), is_conv)) {
      ++left_alone;
      continue;
    }
    const std::size_t axis = is_conv ? 0 : static_cast<std::size_t>(std::max(weight->dims_size() - 1, 0));
    const int quantize_position = index.producer.at(quantize->output(0));
    auto [entry, created] = quantize_replacements.try_emplace(quantize_position);
    const std::string name = fresh_name(index, taken_names, node.input(1) + "_integer");
    TensorProto integers;
    integers.set_name(name);
    store_floats(integers, dims_of(*weight), integer_weight(*weight, weight_zero_point, axis));
    new_initializers.push_back(std::move(integers));
    const std::string scale_name = fresh_name(index, taken_names, node.input(1) + "_step");
    TensorProto weight_steps;
    weight_steps.set_name(scale_name);
    const std::vector<float> scales = to_floats(values_as_double(*weight_scale));
    store_floats(weight_steps, {static_cast<std::int64_t>(scales.size())}, scales);
    new_initializers.push_back(std::move(weight_steps));

    // Not "..._quantized": OpenCV 4.6's importer takes a node output whose name ends in
    // "quantized" for an int8 tensor and looks for "<prefix>scale" / "<prefix>zero_point" blobs.
    if (created) {
      entry->second.integers = fresh_name(index, taken_names, quantize->input(0) + "_steps");
      entry->second.scale = fresh_name(index, taken_names, quantize->input(0) + "_step_size");
    }
    const std::string sum = fresh_name(index, taken_names, node.output(0) + "_sum");
    remove[static_cast<std::size_t>(index.producer.at(cast->output(0)))] = true;
    // The rescale Mul becomes the rescale layer: Cast(sum) * (x_scale * w_scale).
    auto& rescale_node = *graph.mutable_node(index.producer.at(rescale->output(0)));
    const std::string output = rescale_node.output(0);
    rescale_node.set_op_type(integer_rescale_op);
    rescale_node.clear_input();
    rescale_node.add_input(sum);
    rescale_node.add_input(entry->second.scale);
    rescale_node.add_input(scale_name);
    rescale_node.clear_attribute();
    auto& channel_axis = *rescale_node.add_attribute();
    channel_axis.set_name("axis");
    channel_axis.set_type(onnx::AttributeProto::INT);
    channel_axis.set_i(is_conv ? 1 : -1);
    auto& constants = *rescale_node.add_attribute();
    constants.set_name(constant_inputs_attribute);
    constants.set_type(onnx::AttributeProto::INTS);
    constants.add_ints(2);
    node.set_op_type(is_conv ? "Conv" : "MatMul");
    node.clear_input();
    node.add_input(entry->second.integers);
    node.add_input(name);
    node.clear_output();
    node.add_output(sum);
    ++(is_conv ? convolutions : matrix_products);
  }
  if (convolutions + matrix_products == 0) return std::nullopt;
  // Rebuild the node list: each DetflowDynamicQuantize node goes where its DynamicQuantizeLinear was, so
  // it precedes every reader (OpenCV imports nodes in file order).
  google::protobuf::RepeatedPtrField<onnx::NodeProto> rebuilt;
  for (int position = 0; position < graph.node_size(); ++position) {
    if (const auto found = quantize_replacements.find(position); found != quantize_replacements.end()) {
      const auto& quantize = graph.node(position);
      auto& replacement = *rebuilt.Add();
      replacement.set_op_type(dynamic_quantize_op);
      replacement.set_name(quantize.name() + "_integer");
      replacement.add_input(quantize.input(0));
      replacement.add_output(found->second.integers);
      replacement.add_output(found->second.scale);
    }
    if (!remove[static_cast<std::size_t>(position)]) rebuilt.Add(std::move(*graph.mutable_node(position)));
  }
  graph.mutable_node()->Swap(&rebuilt);
  for (auto& tensor : new_initializers) *graph.add_initializer() = std::move(tensor);
  // The scale products and DynamicQuantizeLinear nodes are now unused.
  remove_dead_code(graph);
  // Float MatMuls of two computed tensors (attention) and Softmax: ONNX Runtime folds a Transpose
  // of the last two axes and a scalar Mul feeding it into FusedMatMul (transA/transB, alpha) and
  // sums in MLAS's SGEMM order; its Softmax uses MLAS's exp. detflow's layers repeat both.
  const int matmuls = route_computed_matmuls(graph, [](const std::string&) { return -1; });
  int softmaxes = 0;
  std::int64_t opset = 0;
  for (const auto& import : model.opset_import()) {
    if (import.domain().empty() || import.domain() == "ai.onnx") opset = import.version();
  }
  for (auto& node : *graph.mutable_node()) {
    // Opset 13's one-axis semantics only (older opsets flatten to 2-D first).
    if (node.op_type() == "Softmax" && node.domain().empty() && opset >= 13) {
      node.set_op_type(softmax_op);
      ++softmaxes;
    }
  }
  // ONNX Runtime's Sigmoid is MLAS's rational approximation, a few ulp from OpenCV's
  // 1 / (1 + exp(-x)); in a dynamic int8 network such ulps move values across quantisation steps
  // and the per-tensor scales amplify them, so these models get MLAS's arithmetic (float models
  // keep OpenCV's faster built-in, within 1e-6 there).
  int sigmoids = 0;
  for (auto& node : *graph.mutable_node()) {
    if (node.op_type() == "Sigmoid" && node.domain().empty()) {
      node.set_op_type(logistic_op);
      ++sigmoids;
    }
  }
  std::ostringstream note;
  note << "dynamic int8: " << quantize_replacements.size() << " DynamicQuantizeLinear -> " << dynamic_quantize_op
       << ", " << convolutions << " ConvInteger -> Conv, " << matrix_products << " MatMulInteger -> MatMul on integer "
       << "steps and weights (exact integer sums), rescaled by " << integer_rescale_op << "; " << sigmoids
       << " Sigmoid -> " << logistic_op << ", " << softmaxes << " Softmax -> " << softmax_op << ", " << matmuls
       << " float MatMul -> " << mlas_matmul_op << " (ONNX Runtime's MLAS arithmetic)";
  if (left_alone > 0) note << " (" << left_alone << " integer nodes not in the DynamicQuantizeLinear pattern kept)";
  return note.str();
}

// ---- 6b. MatMul of two computed tensors ---------------------------------------------------------

std::optional<std::string> computed_matmuls_to_host_layer(onnx::ModelProto& model) {
  auto& graph = *model.mutable_graph();
  const GraphIndex index(graph);
  const bool present = std::any_of(graph.node().begin(), graph.node().end(), [&](const onnx::NodeProto& node) {
    return node.op_type() == "MatMul" && node.domain().empty() && node.input_size() == 2 &&
           !index.constant(node.input(0)) && !index.constant(node.input(1));
  });
  if (!present) return std::nullopt;
  // OpenCV loads MatMul as InnerProduct; with two computed inputs its forward() multiplies but
  // never applies an activation, yet it accepts one when fusing layers (the attention's scalar
  // Mul, loaded as a Power layer, a Relu, ...): on the CPU target the activation is silently lost. DetflowMatMul
  // takes no activation, so OpenCV keeps the next layer. Ranks are only known where shape
  // inference reaches (not past detflow's op types); unknown ranks are routed, and a 1-D operand
  // then fails to load, loudly, rather than computing something else.
  const auto facts = infer_values(model);
  const int matmuls = route_computed_matmuls(graph, [&facts](const std::string& name) {
    const auto found = facts.find(name);
    return found == facts.end() ? -1 : found->second.rank;
  });
  if (matmuls == 0) return std::nullopt;
  return "MatMul of two computed tensors: " + std::to_string(matmuls) + " nodes -> " + mlas_matmul_op +
         " (OpenCV 4.6 fuses a following activation, such as the attention's scale Mul, into its two-input "
         "MatMul and then skips it)";
}

// ---- 5a. negative Unsqueeze axes -------------------------------------------------------------------

std::optional<std::string> unsqueeze_axes_non_negative(onnx::ModelProto& model) {
  auto& graph = *model.mutable_graph();
  const GraphIndex index(graph);
  std::optional<std::unordered_map<std::string, ValueFacts>> facts;  // inferred on first need
  std::vector<TensorProto> new_initializers;
  std::unordered_set<std::string> taken_names;
  int rewritten = 0;
  for (auto& node : *graph.mutable_node()) {
    if (node.op_type() != "Unsqueeze" || !node.domain().empty() || node.input_size() < 1) continue;
    onnx::AttributeProto* attribute = nullptr;
    for (auto& candidate : *node.mutable_attribute()) {
      if (candidate.name() == "axes") attribute = &candidate;
    }
    const TensorProto* axes_tensor = node.input_size() >= 2 ? index.constant(node.input(1)) : nullptr;
    std::vector<std::int64_t> axes;
    if (attribute != nullptr) {
      axes.assign(attribute->ints().begin(), attribute->ints().end());
    } else if (axes_tensor != nullptr) {
      for (const double axis : values_as_double(*axes_tensor)) axes.push_back(static_cast<std::int64_t>(axis));
    } else {
      continue;  // computed axes: OpenCV reports that itself
    }
    if (std::none_of(axes.begin(), axes.end(), [](std::int64_t axis) { return axis < 0; })) continue;
    if (!facts) facts = infer_values(model);
    const auto found = facts->find(node.input(0));
    if (found == facts->end() || found->second.rank < 0) {
      throw Error("graph rewrite: Unsqueeze node '" + node.name() + "' has a negative axis on '" + node.input(0) +
                  "', whose rank shape inference cannot tell; OpenCV 4.6 takes non-negative axes only");
    }
    // ONNX counts negative axes from the end of the output, whose rank adds one per axis.
    const auto output_rank = static_cast<std::int64_t>(found->second.rank) + static_cast<std::int64_t>(axes.size());
    for (auto& axis : axes) {
      if (axis < 0) axis += output_rank;
    }
    if (attribute != nullptr) {
      attribute->clear_ints();
      for (const auto axis : axes) attribute->add_ints(axis);
    } else {
      // A new initializer: the original may be shared with other nodes.
      TensorProto tensor;
      tensor.set_name(fresh_name(index, taken_names, node.input(1) + "_non_negative"));
      tensor.set_data_type(TensorProto::INT64);
      tensor.add_dims(static_cast<std::int64_t>(axes.size()));
      for (const auto axis : axes) tensor.add_int64_data(axis);
      node.set_input(1, tensor.name());
      new_initializers.push_back(std::move(tensor));
    }
    ++rewritten;
  }
  if (rewritten == 0) return std::nullopt;
  for (auto& tensor : new_initializers) *graph.add_initializer() = std::move(tensor);
  remove_dead_code(graph);
  return "Unsqueeze: " + std::to_string(rewritten) +
         " nodes get their negative axes counted from the front (OpenCV 4.6 asserts axes >= 0)";
}

// ---- 5b. custom layers ---------------------------------------------------------------------------

namespace {

bool is_integer_type(int element_type) {
  switch (element_type) {
    case TensorProto::INT8:
    case TensorProto::UINT8:
    case TensorProto::INT16:
    case TensorProto::UINT16:
    case TensorProto::INT32:
    case TensorProto::UINT32:
    case TensorProto::INT64:
    case TensorProto::UINT64:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<std::string> use_custom_layers(onnx::ModelProto& model) {
  auto& graph = *model.mutable_graph();
  const GraphIndex index(graph);
  std::optional<std::unordered_map<std::string, ValueFacts>> facts;  // inferred on first need
  auto facts_of = [&](const std::string& name) -> ValueFacts {
    if (const TensorProto* constant = index.constant(name)) {
      ValueFacts value;
      value.element_type = constant->data_type();
      value.dims = dims_of(*constant);
      value.rank = static_cast<int>(value.dims.size());
      return value;
    }
    if (!facts) facts = infer_values(model);
    const auto found = facts->find(name);
    return found == facts->end() ? ValueFacts{} : found->second;
  };
  std::map<std::string, int> routed;  // original op -> count, for the note
  for (auto& node : *graph.mutable_node()) {
    if (!node.domain().empty()) continue;
    const std::string op = node.op_type();
    const char* target = nullptr;
    bool has_axis = false;
    if (op == "TopK") {
      target = topk_op;
      has_axis = true;
      if (node.input_size() >= 2 && index.constant(node.input(1)) == nullptr) {
        throw Error("graph rewrite: TopK node '" + node.name() + "' takes K from '" + node.input(1) +
                    "', computed at run time; detflow's OpenCV TopK layer needs a constant K");
      }
    } else if (op == "GatherElements") {
      target = gather_elements_op;
      has_axis = true;
    } else if (op == "Gather" && node.input_size() == 2 && index.constant(node.input(1)) == nullptr) {
      target = gather_op;  // OpenCV 4.6's Gather takes constant indices only
      has_axis = true;
    } else if (op == "Tile") {
      target = tile_op;  // OpenCV 4.6 has no Tile layer
      if (node.input_size() != 2 || index.constant(node.input(1)) == nullptr) {
        throw Error("graph rewrite: Tile node '" + node.name() + "' takes its repeats from '" +
                    (node.input_size() > 1 ? node.input(1) : std::string()) +
                    "', computed at run time; detflow's OpenCV Tile layer needs constant repeats");
      }
    } else if (op == "Mod") {
      target = mod_op;
    } else if (op == "Div" && node.input_size() == 2 && is_integer_type(facts_of(node.input(0)).element_type) &&
               is_integer_type(facts_of(node.input(1)).element_type)) {
      target = integer_div_op;  // OpenCV would divide the floats carrying the integers: no truncation
    }
    if (target == nullptr) continue;

    if (has_axis) {
      // OpenCV 4.6 holds a rank-1 tensor as an [N, 1] Mat, so a negative axis would count from the
      // wrong end there; the layers take it made non-negative with the ONNX rank.
      const auto* attribute = find_attribute(node, "axis");
      std::int64_t axis = attribute ? attribute->i() : (op == "TopK" ? -1 : 0);
      if (axis < 0) {
        const int rank = facts_of(node.input(0)).rank;
        if (rank < 0) {
          throw Error("graph rewrite: " + op + " node '" + node.name() + "' has axis " + std::to_string(axis) +
                      " on '" + node.input(0) + "', whose rank shape inference cannot tell");
        }
        axis += rank;
      }
      onnx::AttributeProto* axis_attribute = nullptr;
      for (auto& candidate : *node.mutable_attribute()) {
        if (candidate.name() == "axis") axis_attribute = &candidate;
      }
      if (axis_attribute == nullptr) {
        axis_attribute = node.add_attribute();
        axis_attribute->set_name("axis");
        axis_attribute->set_type(onnx::AttributeProto::INT);
      }
      axis_attribute->set_i(axis);
    }
    if (target == mod_op || target == integer_div_op) {
      // A constant operand of more than one element must have the other operand's rank: OpenCV
      // gives a rank-1 constant as [N, 1], which would broadcast differently.
      for (int operand = 0; operand < 2; ++operand) {
        const TensorProto* constant = index.constant(node.input(operand));
        if (constant == nullptr || element_count(dims_of(*constant)) == 1) continue;
        const int other_rank = facts_of(node.input(1 - operand)).rank;
        if (other_rank != constant->dims_size() || other_rank < 2) {
          throw Error("graph rewrite: " + op + " node '" + node.name() + "' has constant operand '" +
                      node.input(operand) + "' of shape " + shape_text(dims_of(*constant)) +
                      "; detflow's OpenCV layer needs one element or the other operand's rank (>= 2)");
        }
      }
    }
    // OpenCV moves constant inputs into the layer's blobs and drops their positions; record them.
    std::vector<std::int64_t> constant_positions;
    for (int input = 0; input < node.input_size(); ++input) {
      if (!node.input(input).empty() && index.constant(node.input(input)) != nullptr)
        constant_positions.push_back(input);
    }
    if (!constant_positions.empty()) {
      auto& attribute = *node.add_attribute();
      attribute.set_name(constant_inputs_attribute);
      attribute.set_type(onnx::AttributeProto::INTS);
      for (const auto position : constant_positions) attribute.add_ints(position);
    }
    node.set_op_type(target);
    ++routed[op];
  }
  if (routed.empty()) return std::nullopt;
  std::ostringstream note;
  note << "custom OpenCV layers:";
  bool first = true;
  for (const auto& [op, count] : routed) {
    note << (first ? " " : ", ") << count << ' ' << (op == "Div" ? "integer Div" : op);
    first = false;
  }
  note << " -> detflow host layers";
  return note.str();
}

// ---- 7. Split sizes input -> attribute ------------------------------------------------------

std::optional<std::string> split_input_to_attribute(onnx::ModelProto& model) {
  auto& graph = *model.mutable_graph();
  const GraphIndex index(graph);
  int rewritten = 0;
  for (auto& node : *graph.mutable_node()) {
    if (node.op_type() != "Split" || !node.domain().empty() || node.input_size() < 2) continue;
    const std::string sizes_name = node.input(1);
    if (!sizes_name.empty()) {
      const TensorProto* sizes = index.constant(sizes_name);
      if (sizes == nullptr) {
        throw Error("graph rewrite: Split node '" + node.name() + "' takes its sizes from '" + sizes_name +
                    "', computed at run time; OpenCV 4.6 needs constant split sizes");
      }
      auto& attribute = *node.add_attribute();
      attribute.set_name("split");
      attribute.set_type(onnx::AttributeProto::INTS);
      for (const double size : values_as_double(*sizes)) attribute.add_ints(static_cast<std::int64_t>(size));
    }
    node.mutable_input()->DeleteSubrange(1, node.input_size() - 1);
    ++rewritten;
  }
  if (rewritten == 0) return std::nullopt;
  remove_dead_code(graph);
  return "Split: " + std::to_string(rewritten) +
         " nodes take their sizes from the `split` attribute instead of an input";
}

// ---- 4. broadcast constants ------------------------------------------------------------------

namespace {

// OpenCV 4.6 broadcasts a constant operand of an element-wise op only when it is a scalar,
// has the other operand's exact shape, or is per channel ([1, C, 1, ...] at the same rank).
// Add and Sub also take some trailing-aligned shapes, Mul and Div none, and every shape with a
// leading 1 below the operand's rank ([1, N] against [1, K, N]) fails in forward() with an
// assertion in shape_utils.hpp total(). Materialising the constant at full shape is exact.
bool opencv_broadcasts(const Shape& constant, const Shape& other) {
  if (element_count(constant) == 1 || constant == other) return true;
  if (constant.size() != other.size() || constant.size() < 2) return false;
  for (std::size_t axis = 0; axis < constant.size(); ++axis) {
    if (constant[axis] != (axis == 1 ? other[1] : 1)) return false;
  }
  return true;
}

// Index into a constant of shape `from` for each element of the broadcast shape `to`.
std::vector<float> broadcast_values(const std::vector<double>& values, const Shape& from, const Shape& to) {
  const std::size_t rank = to.size();
  Shape aligned(rank - from.size(), 1);
  aligned.insert(aligned.end(), from.begin(), from.end());
  Shape source_strides(rank, 0);
  for (std::int64_t axis = static_cast<std::int64_t>(rank) - 1, stride = 1; axis >= 0; --axis) {
    const auto position = static_cast<std::size_t>(axis);
    source_strides[position] = aligned[position] == 1 ? 0 : stride;
    stride *= aligned[position];
  }
  const std::int64_t count = element_count(to);
  std::vector<float> result(static_cast<std::size_t>(count));
  for (std::int64_t element = 0; element < count; ++element) {
    std::int64_t remainder = element;
    std::int64_t source = 0;
    for (std::int64_t axis = static_cast<std::int64_t>(rank) - 1; axis >= 0; --axis) {
      const auto position = static_cast<std::size_t>(axis);
      source += (remainder % to[position]) * source_strides[position];
      remainder /= to[position];
    }
    result[static_cast<std::size_t>(element)] = static_cast<float>(values[static_cast<std::size_t>(source)]);
  }
  return result;
}

bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const std::size_t offset = to.size() - from.size();
  for (std::size_t axis = 0; axis < from.size(); ++axis) {
    if (from[axis] != 1 && from[axis] != to[axis + offset]) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> expand_broadcast_constants(onnx::ModelProto& model) {
  constexpr std::int64_t largest_materialised = std::int64_t{1} << 24;  // elements; keeps memory bounded
  auto& graph = *model.mutable_graph();
  const GraphIndex index(graph);
  std::optional<std::unordered_map<std::string, Shape>> shapes;  // inferred on first need
  std::vector<TensorProto> new_initializers;
  std::unordered_set<std::string> taken_names;
  std::ostringstream rewritten;
  int count = 0;
  for (auto& node : *graph.mutable_node()) {
    const std::string& op = node.op_type();
    if (!node.domain().empty() || node.input_size() != 2 ||
        (op != "Mul" && op != "Add" && op != "Sub" && op != "Div")) {
      continue;
    }
    for (int operand = 0; operand < 2; ++operand) {
      const TensorProto* constant = index.constant(node.input(operand));
      const std::string& other_name = node.input(1 - operand);
      if (constant == nullptr || index.constant(other_name) != nullptr) continue;
      if (constant->data_type() != TensorProto::FLOAT) continue;
      const Shape constant_shape = dims_of(*constant);
      if (element_count(constant_shape) == 1) continue;
      if (!shapes) shapes = infer_static_shapes(model);
      const auto other = shapes->find(other_name);
      if (other == shapes->end()) continue;
      const Shape& other_shape = other->second;
      if (opencv_broadcasts(constant_shape, other_shape) || !broadcasts_to(constant_shape, other_shape)) continue;
      if (element_count(other_shape) > largest_materialised) continue;
      // A constant whose data does not fill its declared dims is malformed (found by fuzzing):
      // leave it to the loader's own error rather than read past its values.
      const std::vector<double> constant_values = values_as_double(*constant);
      if (static_cast<std::int64_t>(constant_values.size()) != element_count(constant_shape)) continue;
      const std::string name = fresh_name(index, taken_names, node.input(operand) + "_full");
      TensorProto full;
      full.set_name(name);
      store_floats(full, other_shape, broadcast_values(constant_values, constant_shape, other_shape));
      new_initializers.push_back(std::move(full));
      rewritten << (count ? ", " : "") << op << ' ' << shape_text(constant_shape) << " -> " << shape_text(other_shape);
      *node.mutable_input(operand) = name;
      ++count;
    }
  }
  if (count == 0) return std::nullopt;
  for (auto& tensor : new_initializers) *graph.add_initializer() = std::move(tensor);
  remove_dead_code(graph);
  return "broadcast constants materialised at full shape: " + rewritten.str();
}

// ---- 3. Div with a constant numerator --------------------------------------------------------

std::optional<std::string> divide_by_reciprocal(onnx::ModelProto& model) {
  auto& graph = *model.mutable_graph();
  const GraphIndex index(graph);
  std::unordered_set<std::string> taken_names;
  google::protobuf::RepeatedPtrField<onnx::NodeProto> rewritten_nodes;
  int rewritten = 0;
  for (auto& node : *graph.mutable_node()) {
    const TensorProto* numerator = node.op_type() == "Div" && node.domain().empty() && node.input_size() == 2
                                       ? index.constant(node.input(0))
                                       : nullptr;
    const bool divisor_computed = node.input_size() == 2 && index.constant(node.input(1)) == nullptr;
    if (numerator == nullptr || !divisor_computed || element_count(dims_of(*numerator)) == 1 ||
        numerator->data_type() != TensorProto::FLOAT) {
      rewritten_nodes.Add(std::move(node));
      continue;
    }
    // c / x == c * (1 / x): Reciprocal first, then the Div node itself becomes the Mul.
    const std::string reciprocal = fresh_name(index, taken_names, node.input(1) + "_reciprocal");
    auto& inverse = *rewritten_nodes.Add();
    inverse.set_op_type("Reciprocal");
    inverse.set_name(node.name() + "_reciprocal");
    inverse.add_input(node.input(1));
    inverse.add_output(reciprocal);
    node.set_op_type("Mul");
    node.set_input(1, reciprocal);
    rewritten_nodes.Add(std::move(node));
    ++rewritten;
  }
  graph.mutable_node()->Swap(&rewritten_nodes);
  if (rewritten == 0) return std::nullopt;
  return "Div: " + std::to_string(rewritten) +
         " nodes dividing a constant tensor by a computed one become Mul by Reciprocal";
}

// ---- 8. Conv kernel_shape -----------------------------------------------------------------------

std::optional<std::string> add_convolution_kernel_shapes(onnx::ModelProto& model) {
  auto& graph = *model.mutable_graph();
  const GraphIndex index(graph);
  int added = 0;
  for (auto& node : *graph.mutable_node()) {
    const bool convolution = node.op_type() == "Conv" || node.op_type() == "ConvTranspose";
    if (!convolution || !node.domain().empty() || node.input_size() < 2 || find_attribute(node, "kernel_shape")) {
      continue;
    }
    const TensorProto* weight = index.constant(node.input(1));
    if (weight == nullptr || weight->dims_size() < 3) continue;  // OpenCV reports a computed weight itself
    auto& attribute = *node.add_attribute();
    attribute.set_name("kernel_shape");
    attribute.set_type(onnx::AttributeProto::INTS);
    for (int axis = 2; axis < weight->dims_size(); ++axis) attribute.add_ints(weight->dims(axis));
    ++added;
  }
  if (added == 0) return std::nullopt;
  return "Conv kernel_shape: " + std::to_string(added) + " nodes get it from their weight's dims";
}

RewriteResult rewrite_for_opencv(onnx::ModelProto model, const InputShapeDecision& shape) {
  RewriteResult result;
  auto record = [&result](std::optional<std::string> note) {
    if (note) result.applied.push_back(std::move(*note));
  };
  record(fix_input_dims(model, shape));
  record(convert_float16_to_float32(model));
  record(divide_by_reciprocal(model));        // before broadcast: its Mul may need a full-shape constant
  record(expand_broadcast_constants(model));  // before the Split rewrite: shape inference reads opset-13 Split
  // The next two introduce op types onnx shape inference does not know (everything downstream of
  // them would lose its shape), so they run after the passes that infer shapes.
  record(unsqueeze_axes_non_negative(model));
  record(use_custom_layers(model));
  // (The OpenCL target once gave F1 0 on YOLOv10 int8: not the int8 reproduction but OpenCV's
  // in-place reshapes of host-layer outputs; the engine keeps those alive, see opencv_engine.cpp.)
  record(reproduce_dynamic_int8(model));
  record(computed_matmuls_to_host_layer(model));  // after int8: that pass routes its own MatMuls
  record(split_input_to_attribute(model));
  record(add_convolution_kernel_shapes(model));
  if (!model.SerializeToString(&result.model_bytes)) {
    throw Error("graph rewrite: the rewritten model could not be serialized (larger than 2 GiB?)");
  }
  return result;
}

RewriteResult rewrite_for_opencv(const std::filesystem::path& model_path, const InputShapeDecision& shape) {
  std::ifstream file(model_path, std::ios::binary);
  if (!file) throw Error("graph rewrite: cannot open model file '" + model_path.string() + "'");
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&file)) {
    throw Error("graph rewrite: '" + model_path.string() + "' is not a readable ONNX model (protobuf parse failed)");
  }
  return rewrite_for_opencv(std::move(model), shape);
}

}  // namespace detflow::detail
