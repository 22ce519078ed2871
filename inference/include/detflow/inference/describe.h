// detflow/inference/describe.h — a model described for people and for tools (`detflow
// inspect`), and a probe of which engines on this machine can run it.
//
// to_json() and to_text() are pure functions of a ModelInfo value. probe_engines() loads
// the model once per backend:target (seconds for a real detector) and runs it once on
// zeros; it is for inspection, never for the per-frame path. All are safe to call from any
// thread on values the caller does not mutate meanwhile.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "detflow/inference/engine.h"
#include "detflow/inference/model_info.h"

namespace detflow {

// Every ModelInfo field. Keys: path, file_size_bytes, ir_version, opset_imports
// [{domain, version}], producer_name, producer_version, domain, model_version, doc_string,
// inputs/outputs [{name, type, shape (numbers, symbols as strings, null when anonymous),
// has_shape}], initializer_count, parameter_count, operator_histogram {op: count},
// metadata {key: value}, uses_external_data, external_data_files, checker {ran, passed,
// message}, warnings. Bytes of the file that are not valid UTF-8 (ONNX strings are not
// checked) are given as U+FFFD, so the document always dump()s.
nlohmann::json to_json(const ModelInfo& model);

// The same as readable lines ("inputs:", "  images: float [1, 3, 640, 640]", ...),
// operators sorted by count; long metadata values (e.g. Ultralytics names) are kept whole.
std::string to_text(const ModelInfo& model);

// Whether one backend:target can load the model and run it once.
struct EngineProbe {
  std::string engine;  // "onnxruntime:cpu", "opencv:cpu", "opencv:opencl", ...
  bool loads = false;  // loaded and ran once on zeros
  // When it loads: the targets actually used (e.g. "OpenCL fell back to CPU" shows here),
  // notes and the output shapes; otherwise the reason it failed, one line.
  std::string detail;
};

// Tries every engine available_engines() lists, each without fallback, with the other
// settings (threads, input size, provider options) taken from base. Never throws for a
// backend that fails: that is what the probe reports. Throws detflow::Error only when the
// model's input cannot be given a shape at all (see decide_input_shape).
std::vector<EngineProbe> probe_engines(const ModelInfo& model, const EngineOptions& base);

}  // namespace detflow
