// onnxruntime_engine.h — the ONNX Runtime backend of detflow::Engine (internal to
// detflow_inference; compiled only when DETFLOW_HAVE_ONNXRUNTIME is defined).
//
// One Ort::Env serves the whole process; each engine owns one Ort::Session created with
// ORT_ENABLE_ALL graph optimisation, options.intra_op_threads intra-op threads (0 = the
// runtime's default) and one inter-op thread. Inputs are wrapped without copying; outputs
// whose shape is fixed are written by ONNX Runtime straight into the caller's tensors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "detflow/inference/engine.h"

namespace detflow::detail {

// Creates a session for model.path with the execution providers resolved from options
// (options.providers, else {options.target, "cpu"}). Providers this ONNX Runtime build
// lacks are skipped with one warning and a note; CPU is always last. Dynamic input dims
// are fixed as shape says. Throws detflow::Error when ONNX Runtime cannot load or run the
// model, or when a provider name is not one detflow knows.
std::unique_ptr<Engine> create_onnxruntime_engine(const ModelInfo& model, const EngineOptions& options,
                                                  const InputShapeDecision& shape);

// Short provider names ("cpu", "cuda", ...) this ONNX Runtime build offers, "cpu" first.
std::vector<std::string> onnxruntime_providers_available();

// Provider names detflow accepts for ONNX Runtime (short forms), for error messages.
std::vector<std::string> onnxruntime_providers_known();

}  // namespace detflow::detail
