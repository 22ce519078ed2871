// graph_rewrite_fuzzer — the ONNX graph rewrites made for OpenCV's importer
// (inference/src/graph_rewrite.h) on arbitrary bytes, reached as detflow reaches them: the
// bytes must pass read_model_info_from_bytes (the OpenCV engine is only ever created from a
// ModelInfo), the input shape is decide_input_shape's, then rewrite_for_opencv runs every
// rewrite. The rewritten model must serialize to bytes that parse again.
// Accepted failure: detflow::Error (from any of the three steps).
#include <onnx/onnx_pb.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "../inference/src/graph_rewrite.h"
#include "detflow/error.h"
#include "detflow/inference/engine.h"
#include "detflow/inference/model_info.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = detflow::fuzz::as_text(data, size);
  try {
    const auto info = detflow::read_model_info_from_bytes(bytes, "/nonexistent/detflow-fuzz/model.onnx");
    const auto shape = detflow::decide_input_shape(info, detflow::EngineOptions{});
    onnx::ModelProto model;
    if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      detflow::fuzz::property_violated("read_model_info accepted bytes that do not parse");
    }
    const auto result = detflow::detail::rewrite_for_opencv(std::move(model), shape);
    onnx::ModelProto rewritten;
    if (!rewritten.ParseFromString(result.model_bytes)) {
      detflow::fuzz::property_violated("the rewritten model does not parse");
    }
  } catch (const detflow::Error&) {
  }
  return 0;
}
