// graph_building.h — small onnx::ModelProto helpers for the graph-rewrite and custom-layer
// tests, which build graphs node by node (tests/support/model_builder.h makes whole
// detector-shaped models). Header-only; each test file keeps its own initializer helpers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "detflow/inference/engine.h"

namespace detflow::test {

using Shape = std::vector<std::int64_t>;

// An empty model of the given opset, named `graph_name`.
inline onnx::ModelProto new_model(std::int64_t opset, const std::string& graph_name) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("detflow-tests");
  model.add_opset_import()->set_version(opset);
  model.mutable_graph()->set_name(graph_name);
  return model;
}

// A graph input, output or value_info of fixed shape.
inline void declare(onnx::ValueInfoProto* info, const std::string& name, int element_type, const Shape& shape) {
  info->set_name(name);
  auto* tensor_type = info->mutable_type()->mutable_tensor_type();
  tensor_type->set_elem_type(element_type);
  auto* declared = tensor_type->mutable_shape();
  for (const auto dim : shape) declared->add_dim()->set_dim_value(dim);
}

inline onnx::NodeProto& add_node(onnx::GraphProto& graph, const std::string& op, const std::vector<std::string>& inputs,
                                 const std::vector<std::string>& outputs) {
  auto* node = graph.add_node();
  node->set_op_type(op);
  node->set_name(op + "_" + std::to_string(graph.node_size()));
  for (const auto& input : inputs) node->add_input(input);
  for (const auto& output : outputs) node->add_output(output);
  return *node;
}

inline void set_int(onnx::NodeProto& node, const std::string& name, std::int64_t value) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::INT);
  attribute->set_i(value);
}

inline std::string bytes_of(const onnx::ModelProto& model) {
  std::string bytes;
  EXPECT_TRUE(model.SerializeToString(&bytes));
  return bytes;
}

// The input-shape decision a rewrite needs, for a graph whose input is already fixed.
inline InputShapeDecision decision_for(const std::string& input, const Shape& shape) {
  InputShapeDecision decision;
  decision.input_name = input;
  decision.shape = shape;
  decision.reason = "test";
  return decision;
}

}  // namespace detflow::test
