// model_builder.h — tiny synthetic ONNX models for tests, written with the onnx protobuf
// classes (libonnx), and corrupt files for error-path tests.
//
// ModelBuilder is a thin, chainable layer over onnx::ModelProto: declare inputs, outputs,
// initializers and nodes, then write() the model to a file. It checks nothing itself; run
// detflow::read_model_info on the result if you need validation. Not thread-safe (a value
// type; build one per test).
//
//   detflow::test::ModelBuilder builder;                     // IR 8, ai.onnx opset 13
//   builder.input("x", detflow::ElementType::float32, {1, 3, "height", "width"})
//       .initializer("two", {1}, {2.0f})
//       .node("Mul", {"x", "two"}, {"y"})
//       .output("y", detflow::ElementType::float32, {1, 3, "height", "width"})
//       .metadata("imgsz", "[320, 320]");
//   const auto path = builder.write(directory / "double.onnx");
//
// The family helpers (write_yolov8_model, ...) write models whose outputs have the exact
// tensor layout of each detector family, computed from the input by real ONNX operators so
// that both engines can run them. Values are deterministic and easy to predict:
//
//   g(y, x)      = mean over channels of the input pixel (y, x), computed in float32
//                  by a 1x1 Conv (float16 models Cast the input to float first and the
//                  outputs back). Only Conv, AveragePool, Reshape, Concat, Transpose, Tile,
//                  Cast and same-shape Add are used, so OpenCV 4.6 runs these models too.
//   pool_s[i]    = mean of g over the s x s block i of the grid H/s x W/s, row-major.
//   anchors      = the pool_s sequences concatenated over strides 8, 16, 32 (smallest
//                  stride first); N = sum over s of (H/s)(W/s). YOLOv5 repeats each stride's
//                  grid 3 times (anchor-major: [a][gy][gx]); BlazeFace repeats each cell
//                  (cell-major: cell 0 anchor 0, cell 0 anchor 1, ...).
//   value(n, c)  = anchors[n] * channel_scale(c) + channel_offset(c)
//                  (+ options.full_offset[element] when given: an additive tensor of the
//                  output's full shape, e.g. to plant a confident box for a decoder test;
//                  set channel_scales to zeros to make the output exactly that tensor).
//
// Layouts ([batch, rows, columns], C = classes):
//   yolov8   "images" [1,3,H,W] -> "output0" [1, 4+C, N]       value(n, c) at [0, c, n]
//   yolov5   "images" [1,3,H,W] -> "output0" [1, 3N, 5+C]      value(n, c) at [0, n, c]
//   yolox    "images" [1,3,H,W] -> "output"  [1, N, 5+C]       value(n, c) at [0, n, c]
//   yolov10  "images" [1,3,H,W] -> "output0" [1, K, 6]         value(k, c) = m * channel_scale(c)
//            + channel_offset(c) + k / K, with m the mean of the whole input
//   nanodet  "image"  [1,3,H,W] -> "cls_pred_stride_8/16/32" [1, N_s, C] then
//            "dis_pred_stride_8/16/32" [1, N_s, 32] (strides 8, 16, 32; six outputs in that order)
//   blazeface "input" [1,128,128,3] (NHWC) -> "regressors" [1, 896, 16], "classificators"
//            [1, 896, 1]; anchors: stride 8 (16x16 cells, 2 per cell) then stride 16 (8x8, 6)
//
// With options.dynamic the image input is declared [batch, 3, height, width] (NHWC:
// [batch, height, width, 3]) and the anchor count of outputs as "anchors" (yolov10: fixed).
// H and W must be multiples of 32 (BlazeFace: 16).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "detflow/tensor.h"

namespace detflow::test {

// One declared dimension: a size (DimSpec(640) or just 640) or a symbol ("height").
struct DimSpec {
  DimSpec(std::int64_t size) : value(size) {}             // NOLINT(google-explicit-constructor): reads like a shape
  DimSpec(int size) : value(size) {}                      // NOLINT(google-explicit-constructor)
  DimSpec(const char* name) : symbol(name) {}             // NOLINT(google-explicit-constructor)
  DimSpec(std::string name) : symbol(std::move(name)) {}  // NOLINT(google-explicit-constructor)
  std::int64_t value = -1;                                // >= 0 when fixed
  std::string symbol;                                     // when symbolic
};

// A node attribute, made with one of the named constructors.
struct Attribute {
  static Attribute integer(const std::string& name, std::int64_t value);
  static Attribute real(const std::string& name, float value);
  static Attribute integers(const std::string& name, std::vector<std::int64_t> values);
  static Attribute reals(const std::string& name, std::vector<float> values);
  static Attribute text(const std::string& name, const std::string& value);
  // A tensor attribute (e.g. ConstantOfShape's value) holding float32 values.
  static Attribute tensor(const std::string& name, std::vector<std::int64_t> dims, std::vector<float> values);
  onnx::AttributeProto proto;
};

// The onnx TensorProto element type for a detflow type (float32 -> FLOAT, ...).
int onnx_element_type(ElementType type);

class ModelBuilder {
 public:
  // ai.onnx opset `opset`, IR version `ir_version`, producer "detflow-tests".
  explicit ModelBuilder(std::int64_t opset = 13, std::int64_t ir_version = 8);

  ModelBuilder& ir_version(std::int64_t version);
  // Adds the domain's opset import, or replaces its version. "" is ai.onnx.
  ModelBuilder& opset(std::int64_t version, const std::string& domain = "");
  ModelBuilder& producer(const std::string& name, const std::string& version = "");
  ModelBuilder& domain(const std::string& name);
  ModelBuilder& model_version(std::int64_t version);
  ModelBuilder& doc_string(const std::string& text);
  ModelBuilder& metadata(const std::string& key, const std::string& value);

  // Graph inputs and outputs, in declaration order.
  ModelBuilder& input(const std::string& name, ElementType type, const std::vector<DimSpec>& shape);
  ModelBuilder& output(const std::string& name, ElementType type, const std::vector<DimSpec>& shape);
  // An input or output declared with no shape at all.
  ModelBuilder& output_without_shape(const std::string& name, ElementType type);

  // Initializers (weights). float16 values are given as float and rounded.
  ModelBuilder& initializer(const std::string& name, const std::vector<std::int64_t>& dims,
                            const std::vector<float>& values);
  ModelBuilder& initializer_float16(const std::string& name, const std::vector<std::int64_t>& dims,
                                    const std::vector<float>& values);
  ModelBuilder& initializer_int64(const std::string& name, const std::vector<std::int64_t>& dims,
                                  const std::vector<std::int64_t>& values);
  // A float32 initializer stored as external data in `location` (relative to the model);
  // write() writes that file beside the model.
  ModelBuilder& external_initializer(const std::string& name, const std::vector<std::int64_t>& dims,
                                     const std::vector<float>& values, const std::string& location);

  ModelBuilder& node(const std::string& op_type, const std::vector<std::string>& inputs,
                     const std::vector<std::string>& outputs, const std::vector<Attribute>& attributes = {},
                     const std::string& domain = "");

  onnx::ModelProto& proto() { return model_; }
  const onnx::ModelProto& proto() const { return model_; }
  std::string serialize() const;
  // Writes the model (and any external data files) and returns path.
  std::filesystem::path write(const std::filesystem::path& path) const;

 private:
  onnx::ModelProto model_;
  std::map<std::string, std::string> external_files_;  // location -> bytes
};

// Options shared by the family helpers; see the header comment for the values they produce.
struct SyntheticModelOptions {
  int width = 64;  // multiples of 32 (BlazeFace ignores these: 128x128)
  int height = 64;
  int classes = 80;
  ElementType io_type = ElementType::float32;  // float32 or float16 for input and outputs
  bool dynamic = false;                        // symbolic batch/height/width and anchor count
  std::int64_t opset = 13;                     // ai.onnx opset to declare (11..17)
  std::map<std::string, std::string> metadata;
  std::vector<float> channel_scales;   // per output column; empty: channel_scale(c)
  std::vector<float> channel_offsets;  // per output column; empty: channel_offset(c)
  std::vector<float> full_offset;      // empty, or one value per element of the (first) output
  int yolov10_rows = 300;              // K
};

// The default per-column factors: 1 + c / 100 and c / 1000.
float channel_scale(int column);
float channel_offset(int column);

// Anchor count N for an H x W input over strides 8, 16, 32.
std::int64_t anchor_count(int width, int height);

std::filesystem::path write_yolov8_model(const std::filesystem::path& path, const SyntheticModelOptions& options = {});
std::filesystem::path write_yolov5_model(const std::filesystem::path& path, const SyntheticModelOptions& options = {});
std::filesystem::path write_yolox_model(const std::filesystem::path& path, const SyntheticModelOptions& options = {});
std::filesystem::path write_yolov10_model(const std::filesystem::path& path, const SyntheticModelOptions& options = {});
std::filesystem::path write_nanodet_model(const std::filesystem::path& path, const SyntheticModelOptions& options = {});
std::filesystem::path write_blazeface_model(const std::filesystem::path& path,
                                            const SyntheticModelOptions& options = {});

// Ultralytics-style metadata: names "{0: 'class0', 1: 'class1', ...}" (or the given names),
// stride "32", imgsz "[height, width]", task "detect".
std::map<std::string, std::string> ultralytics_metadata(int classes, int width, int height,
                                                        const std::vector<std::string>& names = {});

// Corrupt and foreign files.
void write_bytes(const std::filesystem::path& path, std::string_view bytes);
std::string read_bytes(const std::filesystem::path& path);
std::string random_bytes(std::size_t count, std::uint32_t seed);
std::string png_bytes();  // a complete 1x1 PNG image

}  // namespace detflow::test
