// detflow/inference/output_capture.h — keeps third-party prints off standard output.
//
// Libraries detflow loads models with print on their own: PoCL writes OpenCL build logs
// with printf() to file descriptor 1 ("OpenCL program build log: dnn/dummy ... Invalid
// build option: -cl-no-subgroup-ifp"), OpenCV writes "[ERROR:0@0.5] global
// onnx_importer.cpp ..." to std::cerr, ONNX Runtime writes its warnings to stderr. Such
// text before `detflow inspect --json`'s document breaks every script that parses it, so
// standard output must carry only what a command promises.
//
// OutputCapture redirects file descriptors 1 and 2 (not only std::cout: C code writes to
// the descriptors) into an anonymous in-memory file for its lifetime, restores them when it
// ends, and routes every captured line to detflow's log (spdlog) at the level
// classify_captured_output() gives it.
//
// Process-wide, so used only around setup: engine creation and probing, OpenCL discovery,
// model loading. Never around a running pipeline: a second thread printing meanwhile has its
// text captured too (it is logged, not lost, but reordered). One capture at a time per
// process: a capture started on another thread waits for the current one to end; a capture
// nested inside one on the same thread does nothing (the outer one collects). spdlog lines
// written while capturing (detflow's own, recognised by their "detflow: " prefix) are
// written back to standard error unchanged, in order.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace detflow {

// The level a captured line is logged at.
enum class CapturedLevel {
  debug,    // noise for users (build logs, library chatter): shown with --verbose
  warning,  // a library reported an error while the operation still succeeded
  detflow,  // detflow's own log line: written back to stderr as it was
};

struct CapturedLine {
  CapturedLevel level = CapturedLevel::debug;
  std::string text;  // without the line break
};

// Splits text into lines (empty ones dropped) and classifies them:
//  - "detflow: ..." (detflow's own spdlog output) -> detflow;
//  - an OpenCL build log ("OpenCL program build log: ..." and the lines after it up to a
//    blank line or a line of another kind) -> debug, errors inside it included: OpenCV
//    builds probe programs expected to fail on some drivers;
//  - a line reporting an error (OpenCV "[ERROR:" / "[FATAL:", ONNX Runtime "[E:", or the
//    word "error" in any case) -> warning when the operation succeeded, debug when it failed
//    (detflow's own error message then tells the story in one line);
//  - anything else -> debug.
std::vector<CapturedLine> classify_captured_output(std::string_view text, bool operation_failed);

// Captures descriptors 1 and 2 from construction to destruction (see the file comment).
// The destructor restores them and logs the captured lines, prefixed with `context`
// (e.g. "OpenCV loading yolo11n_320.onnx for opencv:opencl"). The operation counts as
// failed when the capture ends during stack unwinding (an exception is leaving the scope).
// Best effort: when a descriptor cannot be duplicated, nothing is captured and output goes
// where it always went. Not copyable or movable.
class OutputCapture {
 public:
  explicit OutputCapture(std::string context);
  ~OutputCapture();
  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;

  // True when this object redirected the descriptors (false when nested or unavailable).
  bool active() const { return active_; }

 private:
  void restore_and_route(bool operation_failed) noexcept;

  std::string context_;
  int uncaught_at_start_ = 0;
  bool active_ = false;
  int capture_file_ = -1;
  int saved_stdout_ = -1;
  int saved_stderr_ = -1;
};

}  // namespace detflow
