#include "detflow/inference/output_capture.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <iostream>
#include <mutex>

namespace detflow {
namespace {

// Whole captures are serialised across threads; nesting on one thread is counted.
std::mutex capture_mutex;
thread_local int capture_depth = 0;

// More than this is a library gone wild; the rest is dropped with a note.
constexpr std::size_t maximum_captured_bytes = 256 * 1024;

constexpr std::string_view own_prefix = "detflow: ";
constexpr std::string_view build_log_prefix = "OpenCL program build log:";

bool contains_case_insensitive(std::string_view text, std::string_view word) {
  const auto found = std::search(text.begin(), text.end(), word.begin(), word.end(), [](char left, char right) {
    return std::tolower(static_cast<unsigned char>(left)) == std::tolower(static_cast<unsigned char>(right));
  });
  return found != text.end();
}

bool reports_error(std::string_view line) {
  return line.find("[ERROR:") != std::string_view::npos || line.find("[FATAL:") != std::string_view::npos ||
         line.find("[E:") != std::string_view::npos || contains_case_insensitive(line, "error");
}

// OpenCV's own log lines start "[LEVEL:thread@time]"; ONNX Runtime's carry "[W:onnxruntime:".
bool is_log_line_of_a_library(std::string_view line) {
  for (const std::string_view tag : {"[FATAL:", "[ERROR:", "[ WARN:", "[WARN:", "[ INFO:", "[INFO:", "[DEBUG:"}) {
    if (line.starts_with(tag)) return true;
  }
  return line.find(":onnxruntime:") != std::string_view::npos;
}

void flush_every_stream() {
  std::cout.flush();
  std::cerr.flush();
  std::clog.flush();
  std::fflush(nullptr);
}

int duplicate(int descriptor) { return ::fcntl(descriptor, F_DUPFD_CLOEXEC, 3); }

void write_all(int descriptor, std::string_view text) {
  while (!text.empty()) {
    const ssize_t written = ::write(descriptor, text.data(), text.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(written));
  }
}

std::string read_from_start(int descriptor, bool& truncated) {
  std::string text;
  char buffer[8192];
  off_t offset = 0;
  truncated = false;
  for (;;) {
    const ssize_t count = ::pread(descriptor, buffer, sizeof buffer, offset);
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0) break;
    offset += count;
    const std::size_t room = maximum_captured_bytes - text.size();
    text.append(buffer, std::min(room, static_cast<std::size_t>(count)));
    if (text.size() >= maximum_captured_bytes) {
      truncated = true;
      break;
    }
  }
  return text;
}

}  // namespace

std::vector<CapturedLine> classify_captured_output(std::string_view text, bool operation_failed) {
  std::vector<CapturedLine> lines;
  bool in_build_log = false;
  while (!text.empty()) {
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const bool blank = line.find_first_not_of(" \t") == std::string_view::npos;
    if (blank) {
      in_build_log = false;
      continue;
    }
    CapturedLine captured;
    captured.text = std::string(line);
    if (line.starts_with(own_prefix)) {
      in_build_log = false;
      captured.level = CapturedLevel::detflow;
    } else if (line.starts_with(build_log_prefix)) {
      in_build_log = true;
      captured.level = CapturedLevel::debug;
    } else if (in_build_log && !is_log_line_of_a_library(line)) {
      captured.level = CapturedLevel::debug;
    } else {
      in_build_log = false;
      captured.level = reports_error(line) && !operation_failed ? CapturedLevel::warning : CapturedLevel::debug;
    }
    lines.push_back(std::move(captured));
  }
  return lines;
}

OutputCapture::OutputCapture(std::string context)
    : context_(std::move(context)), uncaught_at_start_(std::uncaught_exceptions()) {
  if (capture_depth++ > 0) return;  // the outer capture on this thread collects
  capture_mutex.lock();
  flush_every_stream();
  capture_file_ = ::memfd_create("detflow-output-capture", MFD_CLOEXEC);
  saved_stdout_ = duplicate(STDOUT_FILENO);
  saved_stderr_ = duplicate(STDERR_FILENO);
  if (capture_file_ >= 0 && saved_stdout_ >= 0 && saved_stderr_ >= 0 && ::dup2(capture_file_, STDOUT_FILENO) >= 0) {
    if (::dup2(capture_file_, STDERR_FILENO) >= 0) {
      active_ = true;
      return;
    }
    ::dup2(saved_stdout_, STDOUT_FILENO);
  }
  // Could not capture: leave the descriptors as they were.
  for (int* descriptor : {&capture_file_, &saved_stdout_, &saved_stderr_}) {
    if (*descriptor >= 0) ::close(*descriptor);
    *descriptor = -1;
  }
  capture_mutex.unlock();
}

OutputCapture::~OutputCapture() {
  const bool failed = std::uncaught_exceptions() > uncaught_at_start_;
  if (active_) restore_and_route(failed);
  --capture_depth;
}

void OutputCapture::restore_and_route(bool operation_failed) noexcept {
  flush_every_stream();
  ::dup2(saved_stdout_, STDOUT_FILENO);
  ::dup2(saved_stderr_, STDERR_FILENO);
  ::close(saved_stdout_);
  ::close(saved_stderr_);
  bool truncated = false;
  const std::string text = read_from_start(capture_file_, truncated);
  ::close(capture_file_);
  saved_stdout_ = saved_stderr_ = capture_file_ = -1;
  active_ = false;
  capture_mutex.unlock();

  try {
    for (const auto& line : classify_captured_output(text, operation_failed)) {
      switch (line.level) {
        case CapturedLevel::detflow:
          write_all(STDERR_FILENO, line.text + "\n");
          break;
        case CapturedLevel::warning:
          spdlog::warn("{} printed: {}", context_, line.text);
          break;
        case CapturedLevel::debug:
          spdlog::debug("{} printed: {}", context_, line.text);
          break;
      }
    }
    if (truncated)
      spdlog::debug("{} printed more than {} KiB; the rest was dropped", context_, maximum_captured_bytes / 1024);
  } catch (...) {
    // Logging must not turn a finished setup step into a failure.
  }
}

}  // namespace detflow
