// The JSON Lines sink: one object per frame, each written with a single write(2) so the
// file never holds half a line, whatever ends the process. Rotation by size and a full
// disk are handled here so a run that lasts months neither fills the disk nor stops.
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
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
  JsonLinesSink(std::filesystem::path path, const JsonLinesOptions& options)
      : path_(std::move(path)), options_(options) {
    if (!options_.counters) options_.counters = std::make_shared<FileOutputCounters>();
    if (options_.rotate_keep < 1) {
      throw Error("JSON Lines output " + path_.string() + ": rotate_keep " + std::to_string(options_.rotate_keep) +
                  " is invalid (expected 1 or more)");
    }
  }

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
    // A service restarted by its supervisor keeps the previous run's lines when rotating.
    std::error_code error;
    if (options_.rotate_bytes > 0 && std::filesystem::file_size(path_, error) > 0 && !error) shift_rotated_files();
    open_current();
    if (descriptor_ < 0) {
      throw Error("cannot create JSON Lines output " + path_.string() + ": " + std::strerror(errno));
    }
  }

  bool consume(const FrameResult& result) override {
    std::lock_guard lock(mutex_);
    if (finished_) return true;
    if (!failure_.empty()) throw Error(failure_);
    if (!result.frame) return true;  // the end-of-stream result (frame.h): no frame to describe
    line_ = to_line(result);
    line_ += '\n';
    if (options_.rotate_bytes > 0 && bytes_in_file_ > 0 && bytes_in_file_ + line_.size() > options_.rotate_bytes) {
      rotate();
    }
    if (descriptor_ < 0) open_current();  // a rotation that could not create the new file
    if (descriptor_ < 0) {
      lose_line(std::strerror(errno));
      return true;
    }
    write_whole_line();
    return true;
  }

  void finish() override {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    if (in_full_episode_) {
      spdlog::warn("JSON Lines output {}: {} lines lost; the disk was still full at the end", path_.string(),
                   lost_in_episode_);
    }
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
    // With tracking: a detection that belongs to a reported track gains "track_id"; a briefly
    // lost track adds an entry with its predicted box and "predicted": true.
    std::vector<const track::Track*> track_of_detection(result.tracks.empty() ? 0 : result.detections.size(), nullptr);
    for (const auto& track : result.tracks) {
      if (track.detection_index >= 0 && static_cast<std::size_t>(track.detection_index) < track_of_detection.size()) {
        track_of_detection[static_cast<std::size_t>(track.detection_index)] = &track;
      }
    }
    auto detections = nlohmann::ordered_json::array();
    for (std::size_t index = 0; index < result.detections.size(); ++index) {
      const Detection& detection = result.detections[index];
      nlohmann::ordered_json item;
      item["box"] = {rounded(detection.x1, 100), rounded(detection.y1, 100), rounded(detection.x2, 100),
                     rounded(detection.y2, 100)};
      item["score"] = rounded(detection.score, 1e6);
      item["class"] = detection.class_id;
      item["label"] = detection.label;
      if (index < track_of_detection.size() && track_of_detection[index]) {
        item["track_id"] = track_of_detection[index]->id;
      }
      detections.push_back(std::move(item));
    }
    for (const auto& track : result.tracks) {
      if (!track.predicted) continue;
      nlohmann::ordered_json item;
      item["box"] = {rounded(track.box.x1, 100), rounded(track.box.y1, 100), rounded(track.box.x2, 100),
                     rounded(track.box.y2, 100)};
      item["score"] = rounded(track.score, 1e6);
      item["class"] = track.class_id;
      item["label"] = track.label;
      item["track_id"] = track.id;
      item["predicted"] = true;
      detections.push_back(std::move(item));
    }
    record["detections"] = std::move(detections);
    if (!result.detector_ran) record["detector_ran"] = false;  // detection interval: boxes predicted
    if (result.failed) {
      record["failed"] = true;
      record["reason"] = result.failure;
    }
    // Invalid UTF-8 in a label or reason must not make a whole frame unwritable.
    return record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }

  std::filesystem::path rotated(int number) const { return path_.string() + "." + std::to_string(number); }

  // out.jsonl.<keep> is deleted, out.jsonl.N becomes N + 1, out.jsonl becomes out.jsonl.1.
  void shift_rotated_files() {
    std::error_code ignored;  // missing files are normal: fewer rotations so far
    std::filesystem::remove(rotated(options_.rotate_keep), ignored);
    for (int number = options_.rotate_keep - 1; number >= 1; --number) {
      std::filesystem::rename(rotated(number), rotated(number + 1), ignored);
    }
    std::error_code error;
    std::filesystem::rename(path_, rotated(1), error);
    if (error && error != std::errc::no_such_file_or_directory) {
      spdlog::warn("JSON Lines output {}: cannot rotate ({}); continuing in the same file", path_.string(),
                   error.message());
    }
  }

  void rotate() {
    if (descriptor_ >= 0) {
      ::close(descriptor_);
      descriptor_ = -1;
    }
    shift_rotated_files();
    options_.counters->rotations.fetch_add(1, std::memory_order_relaxed);
    open_current();
  }

  // O_TRUNC: a rotation that failed to rename must not leave the new lines after old ones
  // beyond the size bound; errno is kept for the caller when it fails.
  void open_current() {
    descriptor_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bytes_in_file_ = 0;
  }

  static bool is_out_of_space(int error) { return error == ENOSPC || error == EDQUOT; }

  void lose_line(const char* reason) {
    options_.counters->lines_lost.fetch_add(1, std::memory_order_relaxed);
    options_.counters->disk_full.store(true, std::memory_order_relaxed);
    ++lost_in_episode_;
    if (!in_full_episode_) {
      in_full_episode_ = true;
      spdlog::warn("JSON Lines output {}: {}; lines are counted as lost until space returns", path_.string(), reason);
    }
  }

  void end_full_episode() {
    in_full_episode_ = false;
    options_.counters->disk_full.store(false, std::memory_order_relaxed);
    spdlog::warn("JSON Lines output {}: space returned; {} lines were lost while the disk was full", path_.string(),
                 lost_in_episode_);
    lost_in_episode_ = 0;
  }

  void write_whole_line() {
    const char* data = line_.data();
    std::size_t remaining = line_.size();
    while (remaining > 0) {
      const ssize_t written = ::write(descriptor_, data, remaining);
      if (written < 0) {
        if (errno == EINTR) continue;
        if (is_out_of_space(errno)) {
          const int reason = errno;
          // A short write left part of the line: cut it off so the file holds whole lines only.
          if (remaining != line_.size() && ::ftruncate(descriptor_, static_cast<off_t>(bytes_in_file_)) == 0) {
            ::lseek(descriptor_, static_cast<off_t>(bytes_in_file_), SEEK_SET);
          }
          lose_line(std::strerror(reason));
          return;
        }
        failure_ = "cannot write JSON Lines output " + path_.string() + ": " + std::strerror(errno);
        throw Error(failure_);
      }
      data += written;
      remaining -= static_cast<std::size_t>(written);
    }
    bytes_in_file_ += line_.size();
    options_.counters->lines_written.fetch_add(1, std::memory_order_relaxed);
    if (in_full_episode_) end_full_episode();
  }

  const std::filesystem::path path_;
  JsonLinesOptions options_;
  std::mutex mutex_;  // consume() and an emergency finish() from another thread
  int descriptor_ = -1;
  std::uint64_t bytes_in_file_ = 0;
  bool finished_ = false;
  bool in_full_episode_ = false;
  std::int64_t lost_in_episode_ = 0;
  std::string failure_;
  std::string line_;  // reused between frames
};

}  // namespace

std::unique_ptr<Sink> make_jsonl_sink(const std::filesystem::path& path, const JsonLinesOptions& options) {
  return std::make_unique<JsonLinesSink>(path, options);
}

}  // namespace detflow
