#include "detflow/inference/model_info.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "detflow/inference/describe.h"

namespace detflow {

namespace {

// Built by appending: GCC 12 at -O3 reports a false -Wrestrict for "'" + path.string() + "'".
std::string quoted(const std::filesystem::path& path) {
  std::string text(1, '\'');
  text += path.string();
  text += '\'';
  return text;
}

[[noreturn]] void refuse(const std::filesystem::path& path, const std::string& why) {
  throw Error("model " + quoted(path) + ": " + why);
}

std::string first_line(const std::string& text) {
  const auto end = text.find('\n');
  std::string line = text.substr(0, end);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

// Files people rename to .onnx by mistake, recognised by their leading bytes so the error
// can say what the file is instead of only what it is not.
std::string recognise_other_format(std::string_view head) {
  struct Signature {
    std::string_view magic;
    std::size_t offset;
    const char* what;
  };
  static constexpr std::array<Signature, 8> signatures{{
      {"\x89PNG\r\n\x1a\n", 0, "a PNG image"},
      {"\xff\xd8\xff", 0, "a JPEG image"},
      {"GIF8", 0, "a GIF image"},
      {"PK\x03\x04", 0, "a zip archive (a PyTorch .pt checkpoint?)"},
      {"TFL3", 4, "a TensorFlow Lite model"},
      {"\x7f"
       "ELF",
       0, "an ELF binary"},
      {"<", 0, "a text/HTML/XML file (a download error page?)"},
      {"{", 0, "a JSON file"},
  }};
  for (const auto& signature : signatures) {
    if (head.size() >= signature.offset + signature.magic.size() &&
        head.substr(signature.offset, signature.magic.size()) == signature.magic) {
      return signature.what;
    }
  }
  return {};
}

ElementType element_type_from_onnx(std::int32_t onnx_type) {
  switch (onnx_type) {
    case onnx::TensorProto_DataType_FLOAT:
      return ElementType::float32;
    case onnx::TensorProto_DataType_FLOAT16:
      return ElementType::float16;
    case onnx::TensorProto_DataType_UINT8:
      return ElementType::uint8;
    case onnx::TensorProto_DataType_INT8:
      return ElementType::int8;
    case onnx::TensorProto_DataType_INT32:
      return ElementType::int32;
    case onnx::TensorProto_DataType_INT64:
      return ElementType::int64;
    case onnx::TensorProto_DataType_BOOL:
      return ElementType::boolean;
    default:
      return ElementType::unknown;
  }
}

std::string onnx_type_name(std::int32_t onnx_type) {
  const auto type = element_type_from_onnx(onnx_type);
  if (type != ElementType::unknown) return std::string(element_type_name(type));
  if (!onnx::TensorProto_DataType_IsValid(onnx_type)) return "type#" + std::to_string(onnx_type);
  std::string name = onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(onnx_type));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

TensorInfo tensor_info_from(const onnx::ValueInfoProto& value) {
  TensorInfo info;
  info.name = value.name();
  if (!value.type().has_tensor_type()) {
    info.type_name = value.type().has_sequence_type() ? "sequence" : value.type().has_map_type() ? "map" : "non-tensor";
    return info;
  }
  const auto& tensor_type = value.type().tensor_type();
  info.type = element_type_from_onnx(tensor_type.elem_type());
  info.type_name = onnx_type_name(tensor_type.elem_type());
  info.has_shape = tensor_type.has_shape();
  for (const auto& dimension : tensor_type.shape().dim()) {
    Dim dim;
    if (dimension.has_dim_value()) {
      dim.value = dimension.dim_value();
    } else if (dimension.has_dim_param()) {
      dim.symbol = dimension.dim_param();
    }
    info.shape.push_back(std::move(dim));
  }
  return info;
}

std::string qualified_op_type(const onnx::NodeProto& node) {
  if (node.domain().empty() || node.domain() == "ai.onnx") return node.op_type();
  return node.domain() + "." + node.op_type();
}

void count_operators(const onnx::GraphProto& graph, std::map<std::string, std::size_t>& histogram) {
  for (const auto& node : graph.node()) {
    ++histogram[qualified_op_type(node)];
    for (const auto& attribute : node.attribute()) {
      if (attribute.has_g()) count_operators(attribute.g(), histogram);
      for (const auto& subgraph : attribute.graphs()) count_operators(subgraph, histogram);
    }
  }
}

std::uint64_t element_count(const onnx::TensorProto& tensor) {
  std::uint64_t count = 1;
  for (const auto dim : tensor.dims()) count *= static_cast<std::uint64_t>(std::max<std::int64_t>(dim, 0));
  return count;
}

std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) refuse(path, "cannot be opened for reading");
  std::ostringstream contents;
  contents << stream.rdbuf();
  if (stream.bad()) refuse(path, "read error");
  return std::move(contents).str();
}

// A graph cut short at a field boundary still parses; what gives it away is a node that
// reads a tensor nothing defines, or a graph output nothing produces.
void check_graph_is_complete(const std::filesystem::path& path, const onnx::GraphProto& graph) {
  std::unordered_set<std::string> defined;
  for (const auto& input : graph.input()) defined.insert(input.name());
  for (const auto& initializer : graph.initializer()) defined.insert(initializer.name());
  for (const auto& sparse : graph.sparse_initializer()) defined.insert(sparse.values().name());
  for (const auto& node : graph.node()) {
    for (const auto& output : node.output()) defined.insert(output);
  }
  for (const auto& node : graph.node()) {
    for (const auto& input : node.input()) {
      if (!input.empty() && !defined.contains(input)) {
        refuse(path, "node '" + node.name() + "' (" + node.op_type() + ") reads '" + input +
                         "' which nothing in the graph defines (truncated or corrupt file)");
      }
    }
  }
  for (const auto& output : graph.output()) {
    if (!defined.contains(output.name())) {
      refuse(path, "graph output '" + output.name() + "' is produced by no node (truncated or corrupt file)");
    }
  }
}

void collect_external_data(const std::filesystem::path& path, const onnx::GraphProto& graph, ModelInfo& info) {
  const auto folder = path.parent_path();
  auto visit = [&](const onnx::TensorProto& tensor) {
    if (tensor.data_location() != onnx::TensorProto_DataLocation_EXTERNAL) return;
    info.uses_external_data = true;
    std::string location;
    for (const auto& entry : tensor.external_data()) {
      if (entry.key() == "location") location = entry.value();
    }
    if (location.empty()) {
      refuse(path, "initializer '" + tensor.name() + "' is stored externally but names no location");
    }
    const auto file = folder / location;
    std::error_code error;
    if (!std::filesystem::is_regular_file(file, error)) {
      refuse(path, "external data file " + quoted(file) + " for initializer '" + tensor.name() +
                       "' is missing (it must sit beside the model)");
    }
    if (std::find(info.external_data_files.begin(), info.external_data_files.end(), file) ==
        info.external_data_files.end()) {
      info.external_data_files.push_back(file);
    }
  };
  std::function<void(const onnx::GraphProto&)> walk = [&](const onnx::GraphProto& current) {
    for (const auto& initializer : current.initializer()) visit(initializer);
    for (const auto& node : current.node()) {
      for (const auto& attribute : node.attribute()) {
        if (attribute.has_t()) visit(attribute.t());
        if (attribute.has_g()) walk(attribute.g());
        for (const auto& subgraph : attribute.graphs()) walk(subgraph);
      }
    }
  };
  walk(graph);
}

void run_checker(const onnx::ModelProto& proto, ModelInfo& info) {
  if (info.ir_version > onnx::IR_VERSION) {
    info.warnings.push_back("IR version " + std::to_string(info.ir_version) + " is newer than libonnx knows (" +
                            std::to_string(static_cast<int>(onnx::IR_VERSION)) + "): onnx checker skipped");
    return;
  }
  info.checker_ran = true;
  try {
    onnx::checker::check_model(proto);
    info.checker_passed = true;
  } catch (const std::exception& error) {
    info.checker_message = first_line(error.what());
    info.warnings.push_back("onnx checker: " + info.checker_message);
  }
}

}  // namespace

std::vector<std::int64_t> TensorInfo::fixed_shape() const {
  std::vector<std::int64_t> result;
  result.reserve(shape.size());
  for (const auto& dim : shape) result.push_back(dim.is_fixed() ? dim.value : -1);
  return result;
}

std::string TensorInfo::to_string() const {
  std::string text = name + ": " + (type_name.empty() ? std::string(element_type_name(type)) : type_name);
  if (!has_shape) return text + " [shape not declared]";
  text += " [";
  for (std::size_t axis = 0; axis < shape.size(); ++axis) {
    if (axis > 0) text += ", ";
    const auto& dim = shape[axis];
    text += dim.is_fixed() ? std::to_string(dim.value) : (dim.symbol.empty() ? "?" : dim.symbol);
  }
  return text + "]";
}

std::int64_t ModelInfo::default_opset() const { return opset(""); }

std::int64_t ModelInfo::opset(const std::string& wanted) const {
  const bool wants_default = wanted.empty() || wanted == "ai.onnx";
  for (const auto& [domain, version] : opset_imports) {
    const bool is_default = domain.empty() || domain == "ai.onnx";
    if (wants_default ? is_default : domain == wanted) return version;
  }
  return 0;
}

std::optional<std::string> ModelInfo::metadata_value(const std::string& key) const {
  const auto found = metadata.find(key);
  if (found == metadata.end()) return std::nullopt;
  return found->second;
}

ModelInfo read_model_info(const std::filesystem::path& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) refuse(path, "file not found");
  if (std::filesystem::is_directory(status)) refuse(path, "is a directory, expected an .onnx file");
  if (!std::filesystem::is_regular_file(status)) refuse(path, "is not a regular file");

  return read_model_info_from_bytes(read_whole_file(path), path);
}

ModelInfo read_model_info_from_bytes(std::string_view bytes, const std::filesystem::path& path) {
  ModelInfo info;
  info.path = path;
  info.file_size_bytes = bytes.size();
  if (bytes.empty()) refuse(path, "is empty (0 bytes), expected an ONNX model");

  const auto other_format = recognise_other_format(std::string_view(bytes).substr(0, 16));
  if (!other_format.empty()) refuse(path, "is " + other_format + ", not an ONNX model");

  // protobuf reads at most 2 GiB; larger models keep their weights in external data files.
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    refuse(path, "is larger than 2 GiB, protobuf's limit (store the weights as external data)");
  }
  onnx::ModelProto proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    refuse(path, "is not an ONNX model or is truncated (protobuf parsing failed after reading " +
                     std::to_string(bytes.size()) + " bytes)");
  }
  // Random bytes often parse as some protobuf message; a real model always has these.
  if (proto.ir_version() <= 0) refuse(path, "is not an ONNX model (no IR version)");
  if (!proto.has_graph()) refuse(path, "is not an ONNX model or is truncated (no graph)");
  if (proto.graph().node_size() == 0) refuse(path, "is not an ONNX model or is truncated (graph has no nodes)");
  if (proto.opset_import_size() == 0) {
    refuse(path, "declares no opset import (truncated file? a complete model lists them after the graph)");
  }

  info.ir_version = proto.ir_version();
  for (const auto& opset : proto.opset_import()) info.opset_imports.emplace_back(opset.domain(), opset.version());
  info.producer_name = proto.producer_name();
  info.producer_version = proto.producer_version();
  info.domain = proto.domain();
  info.model_version = proto.model_version();
  info.doc_string = proto.doc_string();
  for (const auto& property : proto.metadata_props()) info.metadata[property.key()] = property.value();

  const auto& graph = proto.graph();
  std::unordered_set<std::string> initializer_names;
  for (const auto& initializer : graph.initializer()) {
    initializer_names.insert(initializer.name());
    info.parameter_count += element_count(initializer);
  }
  for (const auto& sparse : graph.sparse_initializer()) {
    initializer_names.insert(sparse.values().name());
    std::uint64_t dense = 1;
    for (const auto dim : sparse.dims()) dense *= static_cast<std::uint64_t>(std::max<std::int64_t>(dim, 0));
    info.parameter_count += dense;
  }
  info.initializer_count = static_cast<std::size_t>(graph.initializer_size() + graph.sparse_initializer_size());

  for (const auto& input : graph.input()) {
    if (!initializer_names.contains(input.name())) info.inputs.push_back(tensor_info_from(input));
  }
  for (const auto& output : graph.output()) info.outputs.push_back(tensor_info_from(output));
  if (info.inputs.empty())
    refuse(path, "has no inputs (every graph input is an initializer); detflow needs an image input");
  if (info.outputs.empty()) refuse(path, "declares no graph outputs (truncated or corrupt file)");

  check_graph_is_complete(path, graph);
  count_operators(graph, info.operator_histogram);
  collect_external_data(path, graph, info);
  run_checker(proto, info);
  return info;
}

namespace {

nlohmann::json tensor_json(const TensorInfo& tensor) {
  nlohmann::json shape = nlohmann::json::array();
  for (const auto& dim : tensor.shape) {
    if (dim.is_fixed()) {
      shape.push_back(dim.value);
    } else if (!dim.symbol.empty()) {
      shape.push_back(dim.symbol);
    } else {
      shape.push_back(nullptr);
    }
  }
  return {{"name", tensor.name},
          {"type", tensor.type_name.empty() ? std::string(element_type_name(tensor.type)) : tensor.type_name},
          {"shape", std::move(shape)},
          {"has_shape", tensor.has_shape}};
}

std::string byte_size_text(std::uint64_t bytes) {
  char text[32];
  if (bytes >= 1024 * 1024) {
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  } else if (bytes >= 1024) {
    std::snprintf(text, sizeof text, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  } else {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
  }
  return text;
}

}  // namespace

nlohmann::json to_json(const ModelInfo& model) {
  nlohmann::json opsets = nlohmann::json::array();
  for (const auto& [domain, version] : model.opset_imports) {
    opsets.push_back({{"domain", domain.empty() ? std::string("ai.onnx") : domain}, {"version", version}});
  }
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& input : model.inputs) inputs.push_back(tensor_json(input));
  nlohmann::json outputs = nlohmann::json::array();
  for (const auto& output : model.outputs) outputs.push_back(tensor_json(output));
  nlohmann::json external_files = nlohmann::json::array();
  for (const auto& file : model.external_data_files) external_files.push_back(file.string());
  const nlohmann::json document = {
      {"path", model.path.string()},
      {"file_size_bytes", model.file_size_bytes},
      {"ir_version", model.ir_version},
      {"opset_imports", std::move(opsets)},
      {"producer_name", model.producer_name},
      {"producer_version", model.producer_version},
      {"domain", model.domain},
      {"model_version", model.model_version},
      {"doc_string", model.doc_string},
      {"inputs", std::move(inputs)},
      {"outputs", std::move(outputs)},
      {"initializer_count", model.initializer_count},
      {"parameter_count", model.parameter_count},
      {"operator_histogram", model.operator_histogram},
      {"metadata", model.metadata},
      {"uses_external_data", model.uses_external_data},
      {"external_data_files", std::move(external_files)},
      {"checker", {{"ran", model.checker_ran}, {"passed", model.checker_passed}, {"message", model.checker_message}}},
      {"warnings", model.warnings}};
  // ONNX's string fields are proto2 strings, which protobuf does not check for UTF-8: a file can
  // carry any bytes in names, metadata or doc strings, and nlohmann::json refuses to dump() such a
  // document. Invalid sequences become U+FFFD here, once, so every consumer can dump it.
  return nlohmann::json::parse(document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string to_text(const ModelInfo& model) {
  std::ostringstream text;
  text << "model: " << model.path.string() << " (" << byte_size_text(model.file_size_bytes) << ")\n";
  text << "ir version: " << model.ir_version << "\n";
  text << "opsets:";
  for (const auto& [domain, version] : model.opset_imports) {
    text << " " << (domain.empty() ? std::string("ai.onnx") : domain) << " " << version << ";";
  }
  text << "\n";
  text << "producer: " << (model.producer_name.empty() ? "(none)" : model.producer_name)
       << (model.producer_version.empty() ? "" : " " + model.producer_version) << "\n";
  if (!model.domain.empty()) text << "domain: " << model.domain << "\n";
  text << "model version: " << model.model_version << "\n";
  if (!model.doc_string.empty()) text << "doc: " << model.doc_string << "\n";
  text << "inputs:\n";
  for (const auto& input : model.inputs) text << "  " << input.to_string() << "\n";
  text << "outputs:\n";
  for (const auto& output : model.outputs) text << "  " << output.to_string() << "\n";
  text << "initializers: " << model.initializer_count << " (" << model.parameter_count << " parameters)\n";
  if (model.uses_external_data) {
    text << "external data:";
    for (const auto& file : model.external_data_files) text << " " << file.string();
    text << "\n";
  }
  std::vector<std::pair<std::string, std::size_t>> operators(model.operator_histogram.begin(),
                                                             model.operator_histogram.end());
  std::stable_sort(operators.begin(), operators.end(),
                   [](const auto& left, const auto& right) { return left.second > right.second; });
  std::size_t node_count = 0;
  for (const auto& entry : operators) node_count += entry.second;
  text << "operators (" << node_count << " nodes):";
  for (const auto& [op, count] : operators) text << " " << op << " " << count << ";";
  text << "\n";
  text << "metadata:" << (model.metadata.empty() ? " (none)" : "") << "\n";
  for (const auto& [key, value] : model.metadata) text << "  " << key << ": " << value << "\n";
  text << "onnx checker: "
       << (!model.checker_ran     ? "not run"
           : model.checker_passed ? "passed"
                                  : "failed: " + model.checker_message)
       << "\n";
  for (const auto& warning : model.warnings) text << "warning: " << warning << "\n";
  return text.str();
}

}  // namespace detflow
