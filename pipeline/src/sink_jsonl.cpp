// The JSON Lines sink: one object per frame, each written with a single write(2) so the
// file never holds half a line, whatever ends the process.
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/sinks.h"

namespace detflow {

namespace {

// Floats printed at full precision ("643.1862182617188") only add noise: boxes keep
// 1/100 pixel and scores 1e-6, far below what any consumer compares.
double rounded(float value, double steps_per_unit) {
  return std::isfinite(value) ? std::round(static_cast<double>(value) * steps_per_unit) / steps_per_unit : 0.0;
}

class JsonLinesSink final : public Sink {
 public:
  explicit JsonLinesSink(std::filesystem::path path) : path_(std::move(path)) {}

  ~JsonLinesSink() override {
    try {
      finish();
    } catch (const std::exception& error) {
      spdlog::error("{}", error.what());
    }
  }

  std::string name() const override { return "jsonl " + path_.string(); }

  void open(const SourceInfo&) override {
    std::lock_guard lock(mutex_);
    if (descriptor_ >= 0) return;
    descriptor_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (descriptor_ < 0) {
      throw Error("cannot create JSON Lines output " + path_.string() + ": " + std::strerror(errno));
    }
  }

  bool consume(const FrameResult& result) override {
    std::lock_guard lock(mutex_);
    if (finished_) return true;
    if (!failure_.empty()) throw Error(failure_);
    if (descriptor_ < 0) throw Error("JSON Lines output " + path_.string() + " was not opened");
    line_ = to_line(result);
    line_ += '\n';
    write_whole_line();
    return true;
  }

  void finish() override {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    if (descriptor_ < 0) return;
    // close() is where some file systems (NFS, full quotas) report deferred write errors.
    const int closed = ::close(descriptor_);
    descriptor_ = -1;
    if (closed != 0 && failure_.empty()) {
      throw Error("cannot finish JSON Lines output " + path_.string() + ": " + std::strerror(errno));
    }
  }

 private:
  static std::string to_line(const FrameResult& result) {
    nlohmann::ordered_json record;
    const Frame* frame = result.frame.get();
    record["frame"] = frame ? frame->index : -1;
    if (frame && frame->pts_ms >= 0 && std::isfinite(frame->pts_ms)) {
      record["pts_ms"] = frame->pts_ms;
    } else {
      record["pts_ms"] = nullptr;
    }
    record["width"] = frame ? frame->image.cols : 0;
    record["height"] = frame ? frame->image.rows : 0;
    auto detections = nlohmann::ordered_json::array();
    for (const Detection& detection : result.detections) {
      nlohmann::ordered_json item;
      item["box"] = {rounded(detection.x1, 100), rounded(detection.y1, 100), rounded(detection.x2, 100),
                     rounded(detection.y2, 100)};
      item["score"] = rounded(detection.score, 1e6);
      item["class"] = detection.class_id;
      item["label"] = detection.label;
      detections.push_back(std::move(item));
    }
    record["detections"] = std::move(detections);
    if (result.failed) {
      record["failed"] = true;
      record["reason"] = result.failure;
    }
    // Invalid UTF-8 in a label or reason must not make a whole frame unwritable.
    return record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }

  void write_whole_line() {
    const char* data = line_.data();
    std::size_t remaining = line_.size();
    while (remaining > 0) {
      const ssize_t written = ::write(descriptor_, data, remaining);
      if (written < 0) {
        if (errno == EINTR) continue;
        failure_ = "cannot write JSON Lines output " + path_.string() + ": " + std::strerror(errno);
        throw Error(failure_);
      }
      data += written;
      remaining -= static_cast<std::size_t>(written);
    }
  }

  const std::filesystem::path path_;
  std::mutex mutex_;  // consume() and an emergency finish() from another thread
  int descriptor_ = -1;
  bool finished_ = false;
  std::string failure_;
  std::string line_;  // reused between frames
};

}  // namespace

std::unique_ptr<Sink> make_jsonl_sink(const std::filesystem::path& path) {
  return std::make_unique<JsonLinesSink>(path);
}

}  // namespace detflow
