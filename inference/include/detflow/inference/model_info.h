// detflow/inference/model_info.h — what an ONNX file declares, read without running it.
//
// read_model_info() parses the file with the onnx protobuf classes (libonnx, protobuf),
// runs onnx::checker where the model's IR version is one libonnx knows (a newer IR
// version is a warning, not a refusal) and fills a ModelInfo value. It owns nothing
// after it returns; ModelInfo is a plain value, safe to copy and to share read-only
// between threads.
//
// Errors (detflow::Error, one line, naming the path): missing file, a directory, empty
// file, not ONNX (e.g. a PNG renamed .onnx, random bytes that happen to parse as protobuf),
// truncated file (protobuf parse failure, or a graph that reads tensors nothing defines, or
// no opset import), missing external-data file, no graph inputs.
//
// The onnx checker is advisory: its verdict is recorded (checker_passed, checker_message,
// a line in warnings) but does not refuse the model, because ONNX Runtime and OpenCV run
// models that libonnx 1.12's checker does not know (newer opsets, contrib domains). The
// structural checks above are what refuse a file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detflow/tensor.h"

namespace detflow {

// One dimension of a declared shape: a fixed size, or a symbol (e.g. "batch") / unknown.
struct Dim {
  std::int64_t value = -1;  // >= 0 when fixed
  std::string symbol;       // dim_param when symbolic; empty when fixed or anonymous
  bool is_fixed() const { return value >= 0; }
  friend bool operator==(const Dim&, const Dim&) = default;
};

struct TensorInfo {
  std::string name;
  ElementType type = ElementType::unknown;
  std::string type_name;  // ONNX name of the element type, also for types detflow does not carry
  std::vector<Dim> shape;
  bool has_shape = false;  // false when the model declares no shape at all

  // Fixed sizes with -1 for every symbolic or unknown dim.
  std::vector<std::int64_t> fixed_shape() const;
  // e.g. "images: float [1, 3, 640, 640]" or "images: float [batch, 3, height, width]".
  std::string to_string() const;
};

struct ModelInfo {
  std::filesystem::path path;
  std::uint64_t file_size_bytes = 0;
  std::int64_t ir_version = 0;
  std::vector<std::pair<std::string, std::int64_t>> opset_imports;  // domain ("" = ai.onnx), version
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  std::int64_t model_version = 0;
  std::string doc_string;

  std::vector<TensorInfo> inputs;  // graph inputs that are not initializers
  std::vector<TensorInfo> outputs;

  std::size_t initializer_count = 0;
  std::uint64_t parameter_count = 0;                      // elements over all initializers
  std::map<std::string, std::size_t> operator_histogram;  // op_type -> count (domain-qualified when not ai.onnx)
  std::map<std::string, std::string> metadata;            // metadata_props (Ultralytics: names, stride, imgsz, task)
  bool uses_external_data = false;
  std::vector<std::filesystem::path> external_data_files;  // as resolved beside the model, each once

  bool checker_ran = false;  // false when the IR version is newer than libonnx knows
  bool checker_passed = false;
  std::string checker_message;  // first line of the checker's complaint, if any
  std::vector<std::string> warnings;

  // Opset of the default (ai.onnx) domain, 0 when not imported.
  std::int64_t default_opset() const;
  // Opset imported for a domain ("" or "ai.onnx" = the default domain), 0 when not imported.
  std::int64_t opset(const std::string& domain) const;
  // The metadata_props value for key; std::nullopt when absent.
  std::optional<std::string> metadata_value(const std::string& key) const;
};

// Reads and checks the file; throws detflow::Error as described above. Cost: one parse of
// the whole file (tens of milliseconds for a detector); call once per model, not per frame.
ModelInfo read_model_info(const std::filesystem::path& path);

// The same checks on a model already in memory (e.g. the fuzz targets): `path` names the model
// in messages and is where external data files are looked for (beside it); it is not read.
// file_size_bytes is bytes.size().
ModelInfo read_model_info_from_bytes(std::string_view bytes, const std::filesystem::path& path);

}  // namespace detflow
