#include "model_builder.h"

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace detflow::test {

namespace {

void set_shape(onnx::ValueInfoProto& value, ElementType type, const std::vector<DimSpec>& shape) {
  auto* tensor_type = value.mutable_type()->mutable_tensor_type();
  tensor_type->set_elem_type(onnx_element_type(type));
  auto* declared = tensor_type->mutable_shape();
  for (const auto& dim : shape) {
    auto* added = declared->add_dim();
    if (dim.symbol.empty()) {
      added->set_dim_value(dim.value);
    } else {
      added->set_dim_param(dim.symbol);
    }
  }
}

// Builds the family graphs from operators both ONNX Runtime and OpenCV 4.6 run well
// (1x1 Conv, AveragePool, Reshape, Concat, Transpose, Tile, same-shape Add), so that no
// step depends on an importer's broadcasting rules.
class FamilyGraph {
 public:
  FamilyGraph(ModelBuilder& builder, const SyntheticModelOptions& options) : builder_(builder), options_(options) {}

  // The image input, cast to float when float16, averaged over channels by a 1x1 Conv
  // with weights 1/3: [B, 1, H, W].
  std::string channel_mean(const std::string& input, bool nhwc) {
    std::string current = input;
    if (options_.io_type == ElementType::float16) {
      builder_.node("Cast", {current}, {"input_as_float"},
                    {Attribute::integer("to", onnx::TensorProto_DataType_FLOAT)});
      current = "input_as_float";
    }
    if (nhwc) {
      builder_.node("Transpose", {current}, {"input_nchw"}, {Attribute::integers("perm", {0, 3, 1, 2})});
      current = "input_nchw";
    }
    builder_.initializer("mean_weights", {1, 3, 1, 1}, {1.0f / 3.0f, 1.0f / 3.0f, 1.0f / 3.0f});
    builder_.node("Conv", {current, "mean_weights"}, {"channel_mean"}, {Attribute::integers("kernel_shape", {1, 1})});
    return "channel_mean";
  }

  // s x s block means of the channel mean: [B, 1, H/s, W/s].
  std::string pooled(const std::string& mean, int stride) {
    const auto name = "pool_" + std::to_string(stride);
    builder_.node(
        "AveragePool", {mean}, {name},
        {Attribute::integers("kernel_shape", {stride, stride}), Attribute::integers("strides", {stride, stride})});
    return name;
  }

  // [B, 1, h, w] -> 1x1 Conv (weights channel_scale, bias channel_offset) -> [1, C, h*w].
  std::string columns(const std::string& grid, int count, const std::string& name) {
    std::vector<float> scales(static_cast<std::size_t>(count));
    std::vector<float> offsets(static_cast<std::size_t>(count));
    for (int c = 0; c < count; ++c) {
      const auto index = static_cast<std::size_t>(c);
      scales[index] = options_.channel_scales.empty() ? channel_scale(c) : options_.channel_scales.at(index);
      offsets[index] = options_.channel_offsets.empty() ? channel_offset(c) : options_.channel_offsets.at(index);
    }
    builder_.initializer(name + "_weights", {count, 1, 1, 1}, scales);
    builder_.initializer(name + "_bias", {count}, offsets);
    builder_.node("Conv", {grid, name + "_weights", name + "_bias"}, {name + "_grid"},
                  {Attribute::integers("kernel_shape", {1, 1})});
    const auto shape = "shape_1_" + std::to_string(count) + "_n";
    ensure_int64(shape, {1, count, -1});
    builder_.node("Reshape", {name + "_grid", shape}, {name});
    return name;
  }

  std::string concat(const std::vector<std::string>& parts, int axis, const std::string& name) {
    if (parts.size() == 1) return parts.front();
    builder_.node("Concat", parts, {name}, {Attribute::integer("axis", axis)});
    return name;
  }

  std::string transpose_rows(const std::string& tensor, const std::string& name) {
    builder_.node("Transpose", {tensor}, {name}, {Attribute::integers("perm", {0, 2, 1})});
    return name;
  }

  // Adds options.full_offset (when given), casts to the I/O type and names the output.
  void finish(const std::string& tensor, const std::string& output, const std::vector<std::int64_t>& shape,
              const std::vector<DimSpec>& declared, bool apply_full_offset) {
    std::string current = tensor;
    if (apply_full_offset && !options_.full_offset.empty()) {
      std::size_t elements = 1;
      for (const auto dim : shape) elements *= static_cast<std::size_t>(dim);
      if (options_.dynamic) throw std::invalid_argument("full_offset needs fixed shapes (dynamic = false)");
      if (options_.full_offset.size() != elements) {
        throw std::invalid_argument("full_offset has " + std::to_string(options_.full_offset.size()) +
                                    " values, the output has " + std::to_string(elements));
      }
      builder_.initializer(output + "_full_offset", shape, options_.full_offset);
      builder_.node("Add", {current, output + "_full_offset"}, {output + "_with_offset"});
      current = output + "_with_offset";
    }
    if (options_.io_type == ElementType::float16) {
      builder_.node("Cast", {current}, {output}, {Attribute::integer("to", onnx::TensorProto_DataType_FLOAT16)});
    } else {
      builder_.node("Identity", {current}, {output});
    }
    builder_.output(output, options_.io_type, declared);
  }

  void ensure_int64(const std::string& name, const std::vector<std::int64_t>& values) {
    for (const auto& existing : builder_.proto().graph().initializer()) {
      if (existing.name() == name) return;
    }
    builder_.initializer_int64(name, {static_cast<std::int64_t>(values.size())}, values);
  }

 private:
  ModelBuilder& builder_;
  const SyntheticModelOptions& options_;
};

void check_size(const SyntheticModelOptions& options, int multiple) {
  if (options.width <= 0 || options.height <= 0 || options.width % multiple || options.height % multiple) {
    throw std::invalid_argument("synthetic model size " + std::to_string(options.width) + "x" +
                                std::to_string(options.height) + " must be a positive multiple of " +
                                std::to_string(multiple));
  }
  if (options.io_type != ElementType::float32 && options.io_type != ElementType::float16) {
    throw std::invalid_argument("synthetic models take float32 or float16 I/O");
  }
}

ModelBuilder family_builder(const SyntheticModelOptions& options) {
  ModelBuilder builder(options.opset);
  for (const auto& [key, value] : options.metadata) builder.metadata(key, value);
  return builder;
}

std::vector<DimSpec> image_input_shape(const SyntheticModelOptions& options) {
  if (options.dynamic) return {"batch", 3, "height", "width"};
  return {1, 3, options.height, options.width};
}

// [1, C, N] over strides 8, 16, 32, each stride's grid repeated `repeats` times (YOLOv5).
std::string yolo_columns(FamilyGraph& graph, const std::string& mean, int columns, int repeats) {
  std::vector<std::string> levels;
  for (const int stride : {8, 16, 32}) {
    const auto level = graph.columns(graph.pooled(mean, stride), columns, "level_" + std::to_string(stride));
    levels.insert(levels.end(), static_cast<std::size_t>(repeats), level);
  }
  return graph.concat(levels, 2, "anchors");
}

std::filesystem::path write_rows_model(const std::filesystem::path& path, const SyntheticModelOptions& options,
                                       int repeats, const std::string& output_name) {
  check_size(options, 32);
  auto builder = family_builder(options);
  builder.input("images", options.io_type, image_input_shape(options));
  FamilyGraph graph(builder, options);
  const int columns = 5 + options.classes;
  const auto values = yolo_columns(graph, graph.channel_mean("images", false), columns, repeats);
  const auto rows = graph.transpose_rows(values, "rows");
  const auto count = anchor_count(options.width, options.height) * repeats;
  const std::vector<DimSpec> declared =
      options.dynamic ? std::vector<DimSpec>{"batch", "anchors", columns} : std::vector<DimSpec>{1, count, columns};
  graph.finish(rows, output_name, {1, count, columns}, declared, true);
  return builder.write(path);
}

}  // namespace

Attribute Attribute::integer(const std::string& name, std::int64_t value) {
  Attribute attribute;
  attribute.proto.set_name(name);
  attribute.proto.set_type(onnx::AttributeProto_AttributeType_INT);
  attribute.proto.set_i(value);
  return attribute;
}

Attribute Attribute::real(const std::string& name, float value) {
  Attribute attribute;
  attribute.proto.set_name(name);
  attribute.proto.set_type(onnx::AttributeProto_AttributeType_FLOAT);
  attribute.proto.set_f(value);
  return attribute;
}

Attribute Attribute::integers(const std::string& name, std::vector<std::int64_t> values) {
  Attribute attribute;
  attribute.proto.set_name(name);
  attribute.proto.set_type(onnx::AttributeProto_AttributeType_INTS);
  for (const auto value : values) attribute.proto.add_ints(value);
  return attribute;
}

Attribute Attribute::reals(const std::string& name, std::vector<float> values) {
  Attribute attribute;
  attribute.proto.set_name(name);
  attribute.proto.set_type(onnx::AttributeProto_AttributeType_FLOATS);
  for (const auto value : values) attribute.proto.add_floats(value);
  return attribute;
}

Attribute Attribute::text(const std::string& name, const std::string& value) {
  Attribute attribute;
  attribute.proto.set_name(name);
  attribute.proto.set_type(onnx::AttributeProto_AttributeType_STRING);
  attribute.proto.set_s(value);
  return attribute;
}

Attribute Attribute::tensor(const std::string& name, std::vector<std::int64_t> dims, std::vector<float> values) {
  Attribute attribute;
  attribute.proto.set_name(name);
  attribute.proto.set_type(onnx::AttributeProto_AttributeType_TENSOR);
  auto* tensor = attribute.proto.mutable_t();
  tensor->set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (const auto dim : dims) tensor->add_dims(dim);
  for (const auto value : values) tensor->add_float_data(value);
  return attribute;
}

int onnx_element_type(ElementType type) {
  switch (type) {
    case ElementType::float32:
      return onnx::TensorProto_DataType_FLOAT;
    case ElementType::float16:
      return onnx::TensorProto_DataType_FLOAT16;
    case ElementType::uint8:
      return onnx::TensorProto_DataType_UINT8;
    case ElementType::int8:
      return onnx::TensorProto_DataType_INT8;
    case ElementType::int32:
      return onnx::TensorProto_DataType_INT32;
    case ElementType::int64:
      return onnx::TensorProto_DataType_INT64;
    case ElementType::boolean:
      return onnx::TensorProto_DataType_BOOL;
    case ElementType::unknown:
      break;
  }
  return onnx::TensorProto_DataType_UNDEFINED;
}

ModelBuilder::ModelBuilder(std::int64_t opset_version, std::int64_t ir) {
  model_.set_ir_version(ir);
  model_.set_producer_name("detflow-tests");
  model_.mutable_graph()->set_name("synthetic");
  opset(opset_version);
}

ModelBuilder& ModelBuilder::ir_version(std::int64_t version) {
  model_.set_ir_version(version);
  return *this;
}

ModelBuilder& ModelBuilder::opset(std::int64_t version, const std::string& domain_name) {
  for (auto& existing : *model_.mutable_opset_import()) {
    if (existing.domain() == domain_name) {
      existing.set_version(version);
      return *this;
    }
  }
  auto* added = model_.add_opset_import();
  added->set_domain(domain_name);
  added->set_version(version);
  return *this;
}

ModelBuilder& ModelBuilder::producer(const std::string& name, const std::string& version) {
  model_.set_producer_name(name);
  model_.set_producer_version(version);
  return *this;
}

ModelBuilder& ModelBuilder::domain(const std::string& name) {
  model_.set_domain(name);
  return *this;
}

ModelBuilder& ModelBuilder::model_version(std::int64_t version) {
  model_.set_model_version(version);
  return *this;
}

ModelBuilder& ModelBuilder::doc_string(const std::string& text) {
  model_.set_doc_string(text);
  return *this;
}

ModelBuilder& ModelBuilder::metadata(const std::string& key, const std::string& value) {
  auto* property = model_.add_metadata_props();
  property->set_key(key);
  property->set_value(value);
  return *this;
}

ModelBuilder& ModelBuilder::input(const std::string& name, ElementType type, const std::vector<DimSpec>& shape) {
  auto* value = model_.mutable_graph()->add_input();
  value->set_name(name);
  set_shape(*value, type, shape);
  return *this;
}

ModelBuilder& ModelBuilder::output(const std::string& name, ElementType type, const std::vector<DimSpec>& shape) {
  auto* value = model_.mutable_graph()->add_output();
  value->set_name(name);
  set_shape(*value, type, shape);
  return *this;
}

ModelBuilder& ModelBuilder::output_without_shape(const std::string& name, ElementType type) {
  auto* value = model_.mutable_graph()->add_output();
  value->set_name(name);
  value->mutable_type()->mutable_tensor_type()->set_elem_type(onnx_element_type(type));
  return *this;
}

ModelBuilder& ModelBuilder::initializer(const std::string& name, const std::vector<std::int64_t>& dims,
                                        const std::vector<float>& values) {
  auto* tensor = model_.mutable_graph()->add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (const auto dim : dims) tensor->add_dims(dim);
  tensor->set_raw_data(values.data(), values.size() * sizeof(float));
  return *this;
}

ModelBuilder& ModelBuilder::initializer_float16(const std::string& name, const std::vector<std::int64_t>& dims,
                                                const std::vector<float>& values) {
  auto* tensor = model_.mutable_graph()->add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(onnx::TensorProto_DataType_FLOAT16);
  for (const auto dim : dims) tensor->add_dims(dim);
  std::vector<std::uint16_t> halves;
  for (const auto value : values) halves.push_back(float_to_half(value));
  tensor->set_raw_data(halves.data(), halves.size() * sizeof(std::uint16_t));
  return *this;
}

ModelBuilder& ModelBuilder::initializer_int64(const std::string& name, const std::vector<std::int64_t>& dims,
                                              const std::vector<std::int64_t>& values) {
  auto* tensor = model_.mutable_graph()->add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(onnx::TensorProto_DataType_INT64);
  for (const auto dim : dims) tensor->add_dims(dim);
  tensor->set_raw_data(values.data(), values.size() * sizeof(std::int64_t));
  return *this;
}

ModelBuilder& ModelBuilder::external_initializer(const std::string& name, const std::vector<std::int64_t>& dims,
                                                 const std::vector<float>& values, const std::string& location) {
  auto& file = external_files_[location];
  const auto offset = file.size();
  file.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  auto* tensor = model_.mutable_graph()->add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (const auto dim : dims) tensor->add_dims(dim);
  tensor->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  const std::vector<std::pair<std::string, std::string>> entries{
      {"location", location},
      {"offset", std::to_string(offset)},
      {"length", std::to_string(values.size() * sizeof(float))}};
  for (const auto& [key, value] : entries) {
    auto* entry = tensor->add_external_data();
    entry->set_key(key);
    entry->set_value(value);
  }
  return *this;
}

ModelBuilder& ModelBuilder::node(const std::string& op_type, const std::vector<std::string>& inputs,
                                 const std::vector<std::string>& outputs, const std::vector<Attribute>& attributes,
                                 const std::string& node_domain) {
  auto* added = model_.mutable_graph()->add_node();
  added->set_op_type(op_type);
  added->set_name(op_type + "_" + std::to_string(model_.graph().node_size()));
  if (!node_domain.empty()) added->set_domain(node_domain);
  for (const auto& input : inputs) added->add_input(input);
  for (const auto& output : outputs) added->add_output(output);
  for (const auto& attribute : attributes) *added->add_attribute() = attribute.proto;
  return *this;
}

std::string ModelBuilder::serialize() const {
  std::string bytes;
  if (!model_.SerializeToString(&bytes)) throw std::runtime_error("ModelBuilder: serialisation failed");
  return bytes;
}

std::filesystem::path ModelBuilder::write(const std::filesystem::path& path) const {
  write_bytes(path, serialize());
  for (const auto& [location, bytes] : external_files_) write_bytes(path.parent_path() / location, bytes);
  return path;
}

float channel_scale(int column) { return 1.0f + static_cast<float>(column) / 100.0f; }
float channel_offset(int column) { return static_cast<float>(column) / 1000.0f; }

std::int64_t anchor_count(int width, int height) {
  std::int64_t count = 0;
  for (const int stride : {8, 16, 32}) count += static_cast<std::int64_t>(width / stride) * (height / stride);
  return count;
}

std::filesystem::path write_yolov8_model(const std::filesystem::path& path, const SyntheticModelOptions& options) {
  check_size(options, 32);
  auto builder = family_builder(options);
  builder.input("images", options.io_type, image_input_shape(options));
  FamilyGraph graph(builder, options);
  const int columns = 4 + options.classes;
  const auto values = yolo_columns(graph, graph.channel_mean("images", false), columns, 1);
  const auto count = anchor_count(options.width, options.height);
  const std::vector<DimSpec> declared =
      options.dynamic ? std::vector<DimSpec>{"batch", columns, "anchors"} : std::vector<DimSpec>{1, columns, count};
  graph.finish(values, "output0", {1, columns, count}, declared, true);
  return builder.write(path);
}

std::filesystem::path write_yolov5_model(const std::filesystem::path& path, const SyntheticModelOptions& options) {
  return write_rows_model(path, options, 3, "output0");
}

std::filesystem::path write_yolox_model(const std::filesystem::path& path, const SyntheticModelOptions& options) {
  return write_rows_model(path, options, 1, "output");
}

std::filesystem::path write_yolov10_model(const std::filesystem::path& path, const SyntheticModelOptions& options) {
  check_size(options, 32);
  auto builder = family_builder(options);
  builder.input("images", options.io_type, image_input_shape(options));
  FamilyGraph graph(builder, options);
  const auto mean = graph.channel_mean("images", false);
  builder.node("GlobalAveragePool", {mean}, {"global_mean"});            // [B, 1, 1, 1]
  const auto values = graph.columns("global_mean", 6, "global_values");  // [1, 6, 1]
  const int rows = options.yolov10_rows;
  graph.ensure_int64("repeat_rows", {1, 1, rows});
  builder.node("Tile", {values, "repeat_rows"}, {"tiled_rows"});  // [1, 6, K]
  std::vector<float> row_terms(static_cast<std::size_t>(6 * rows));
  for (int c = 0; c < 6; ++c) {
    for (int k = 0; k < rows; ++k) {
      row_terms[static_cast<std::size_t>(c * rows + k)] = static_cast<float>(k) / static_cast<float>(rows);
    }
  }
  builder.initializer("row_terms", {1, 6, rows}, row_terms);
  builder.node("Add", {"tiled_rows", "row_terms"}, {"columns_by_row"});
  const auto transposed = graph.transpose_rows("columns_by_row", "rows");  // [1, K, 6]
  const std::vector<DimSpec> declared =
      options.dynamic ? std::vector<DimSpec>{"batch", rows, 6} : std::vector<DimSpec>{1, rows, 6};
  graph.finish(transposed, "output0", {1, rows, 6}, declared, true);
  return builder.write(path);
}

std::filesystem::path write_nanodet_model(const std::filesystem::path& path, const SyntheticModelOptions& options) {
  check_size(options, 32);
  auto builder = family_builder(options);
  builder.input("image", options.io_type, image_input_shape(options));
  FamilyGraph graph(builder, options);
  const auto mean = graph.channel_mean("image", false);
  const std::vector<int> strides{8, 16, 32};
  std::vector<std::string> grids;
  for (const int stride : strides) grids.push_back(graph.pooled(mean, stride));
  for (const bool classes : {true, false}) {
    for (std::size_t level = 0; level < strides.size(); ++level) {
      const int stride = strides[level];
      const int columns = classes ? options.classes : 32;
      const auto name = std::string(classes ? "cls_pred_stride_" : "dis_pred_stride_") + std::to_string(stride);
      const auto values = graph.columns(grids[level], columns, name + "_values");
      const auto rows = graph.transpose_rows(values, name + "_rows");
      const std::int64_t cells = static_cast<std::int64_t>(options.width / stride) * (options.height / stride);
      const std::vector<DimSpec> declared =
          options.dynamic ? std::vector<DimSpec>{"batch", "anchors_" + std::to_string(stride), columns}
                          : std::vector<DimSpec>{1, cells, columns};
      graph.finish(rows, name, {1, cells, columns}, declared, level == 0 && classes);
    }
  }
  return builder.write(path);
}

std::filesystem::path write_blazeface_model(const std::filesystem::path& path, const SyntheticModelOptions& options) {
  SyntheticModelOptions face = options;
  face.width = 128;
  face.height = 128;
  check_size(face, 16);
  auto builder = family_builder(face);
  const std::vector<DimSpec> input_shape =
      face.dynamic ? std::vector<DimSpec>{"batch", "height", "width", 3} : std::vector<DimSpec>{1, 128, 128, 3};
  builder.input("input", face.io_type, input_shape);
  FamilyGraph graph(builder, face);
  const auto mean = graph.channel_mean("input", true);
  // Cell-major anchors: the per-cell copies sit next to each other, so each level is
  // [1, cells, 1] tiled to [1, cells, per_cell] and read as [1, cells * per_cell, 1].
  std::vector<std::string> levels;
  for (const auto& [stride, per_cell] : std::vector<std::pair<int, int>>{{8, 2}, {16, 6}}) {
    const auto suffix = std::to_string(stride);
    const auto cells = graph.transpose_rows(graph.columns(graph.pooled(mean, stride), 1, "cells_" + suffix),
                                            "cell_column_" + suffix);  // [1, cells, 1]
    graph.ensure_int64("repeat_" + suffix, {1, 1, per_cell});
    builder.node("Tile", {cells, "repeat_" + suffix}, {"tiled_" + suffix});
    graph.ensure_int64("shape_1_n_1", {1, -1, 1});
    builder.node("Reshape", {"tiled_" + suffix, "shape_1_n_1"}, {"level_" + suffix});
    levels.push_back("level_" + suffix);
  }
  graph.concat(levels, 1, "anchor_column");  // [1, 896, 1]
  // Back to the grid form [1, 1, 896, 1] so a 1x1 Conv spreads each anchor over columns.
  graph.ensure_int64("shape_1_1_n_1", {1, 1, -1, 1});
  builder.node("Reshape", {"anchor_column", "shape_1_1_n_1"}, {"anchor_grid"});
  const bool dynamic = face.dynamic;
  for (const auto& [name, columns] :
       std::vector<std::pair<std::string, int>>{{"regressors", 16}, {"classificators", 1}}) {
    const auto values = graph.columns("anchor_grid", columns, name + "_values");  // [1, C, 896]
    const auto rows = graph.transpose_rows(values, name + "_rows");
    graph.finish(rows, name, {1, 896, columns},
                 dynamic ? std::vector<DimSpec>{"batch", "anchors", columns} : std::vector<DimSpec>{1, 896, columns},
                 name == "regressors");
  }
  return builder.write(path);
}

std::map<std::string, std::string> ultralytics_metadata(int classes, int width, int height,
                                                        const std::vector<std::string>& names) {
  std::string text = "{";
  for (int index = 0; index < classes; ++index) {
    const auto name = index < static_cast<int>(names.size()) ? names[static_cast<std::size_t>(index)]
                                                             : "class" + std::to_string(index);
    text += (index ? ", " : "") + std::to_string(index) + ": '" + name + "'";
  }
  text += "}";
  return {{"names", text},
          {"stride", "32"},
          {"imgsz", "[" + std::to_string(height) + ", " + std::to_string(width) + "]"},
          {"task", "detect"}};
}

void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  if (!stream) throw std::runtime_error("cannot write " + path.string());
  stream.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!stream) throw std::runtime_error("short write to " + path.string());
}

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream contents;
  contents << stream.rdbuf();
  return std::move(contents).str();
}

std::string random_bytes(std::size_t count, std::uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string bytes(count, '\0');
  for (auto& value : bytes) value = static_cast<char>(byte(generator));
  return bytes;
}

std::string png_bytes() {
  // A 1x1 grey PNG: signature, IHDR, IDAT (zlib stream of one filtered row), IEND.
  static constexpr unsigned char image[] = {
      0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00,
      0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3A, 0x7E, 0x9B, 0x55, 0x00,
      0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x68, 0x00, 0x00, 0x00, 0x82, 0x00, 0x81,
      0x77, 0xCD, 0x72, 0xB6, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};
  return std::string(reinterpret_cast<const char*>(image), sizeof image);
}

}  // namespace detflow::test
