// opencv_engine.h (internal to detflow_inference) — the OpenCV DNN backend of detflow::Engine.
//
// The engine owns one cv::dnn::Net loaded from the model after the graph rewrites of
// graph_rewrite.h (applied rewrites are listed in EngineReport::notes). It is not thread-safe:
// OpenCV's Net keeps per-run state, so run() must be called from one thread at a time and each
// inference worker keeps its own engine.
//
// Targets (EngineOptions::target): "cpu" (DNN_BACKEND_OPENCV + DNN_TARGET_CPU), "opencl"
// (DNN_TARGET_OPENCL) and "opencl_fp16" (DNN_TARGET_OPENCL_FP16). OpenCV 4.6 uses OpenCL only
// on GPUs unless told otherwise; for an OpenCL target the engine therefore sets, once per
// process and only where the user has not set them, OPENCV_OPENCL_DEVICE=":GPU|CPU:" (GPUs
// first, then CPU devices such as PoCL) and OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES=1, before
// OpenCV initialises OpenCL. A "cpu" engine leaves the environment alone.
// Fallbacks, each recorded in EngineReport::notes and logged once per process as a warning:
//   opencl_fp16 on a device without cl_khr_fp16 -> opencl (what OpenCV itself would do);
//   no usable OpenCL device, or the OpenCL forward pass fails -> cpu.
// EngineReport::targets holds the target actually in use, read back from the Net after a
// warm-up run, so a silent switch inside OpenCV is reported too.
//
// Tensors: inputs() are float32 with the decided fixed shape (float16 models are rewritten to
// float32); outputs() are float32 with the model's declared shape when it is fixed, else the
// shape OpenCV produces. run() views each input Tensor as a cv::Mat header (no copy on our
// side; Net::setInput copies into the Net), runs Net::forward into cv::Mats kept across calls,
// and copies them into the caller's Tensors in the model's output order.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "detflow/inference/engine.h"

namespace detflow {
namespace detail {

// Loads model.path for options.target ("cpu", "opencl", "opencl_fp16"), applying the graph
// rewrites and the OpenCL -> CPU fallback above, and runs it once on zeros. Throws
// detflow::Error (one line: what OpenCV said) when OpenCV cannot load or run the model, when
// the target is not one of the three, or when an input is not a float tensor.
std::unique_ptr<Engine> create_opencv_engine(const ModelInfo& model, const EngineOptions& options,
                                             const InputShapeDecision& shape);

// OpenCV targets usable here: "cpu" always; "opencl" when OpenCV finds a usable OpenCL device
// (GPU or CPU); "opencl_fp16" when that device also supports cl_khr_fp16. The first call
// prepares the OpenCL environment as described above. Safe to call from any thread.
std::vector<std::string> opencv_targets_available();

}  // namespace detail

using detail::create_opencv_engine;
using detail::opencv_targets_available;

}  // namespace detflow
