#include "detflow/bench/frame_store.h"

#include <cmath>
#include <sstream>
#include <string>
#include <thread>

#include "detflow/error.h"

namespace detflow::bench {

std::int64_t DecodedFrames::byte_size() const {
  std::int64_t bytes = 0;
  for (const auto& image : images) bytes += static_cast<std::int64_t>(image.total() * image.elemSize());
  return bytes;
}

std::shared_ptr<const DecodedFrames> decode_frames(const SourceSettings& settings, std::int64_t max_frames,
                                                   std::int64_t memory_budget_bytes) {
  if (max_frames < 0) {
    throw Error("frame count " + std::to_string(max_frames) + " is invalid (expected 0 for all frames, or more)");
  }
  SourceSettings file_settings = settings;
  file_settings.loop = false;
  std::unique_ptr<Source> source = open_source(file_settings);
  auto frames = std::make_shared<DecodedFrames>();
  frames->source = source->info();
  if (frames->source.live) {
    if (max_frames == 0) {
      throw Error("source " + settings.uri + " is live: give --frames N to say how many frames to record");
    }
  }
  std::int64_t stored_bytes = 0;
  Frame frame;
  while (max_frames == 0 || static_cast<std::int64_t>(frames->images.size()) < max_frames) {
    if (!source->read(frame)) break;
    if (frame.image.empty()) continue;
    const auto bytes = static_cast<std::int64_t>(frame.image.total() * frame.image.elemSize());
    if (stored_bytes + bytes > memory_budget_bytes && !frames->images.empty()) {
      frames->stopped_at_memory_budget = true;
      break;
    }
    stored_bytes += bytes;
    // The source may reuse its buffer for the next frame: keep a copy of our own.
    frames->images.push_back(frame.image.clone());
    frames->pts_ms.push_back(frame.pts_ms);
    frame.image.release();
  }
  source->stop();
  if (frames->images.empty()) throw Error("source " + settings.uri + " gave no frames to benchmark on");
  return frames;
}

MemorySource::MemorySource(std::shared_ptr<const DecodedFrames> frames, const ReplaySettings& settings)
    : frames_(std::move(frames)), settings_(settings) {
  if (!frames_ || frames_->images.empty()) throw Error("in-memory source: no frames to replay");
  if (settings_.live && !(settings_.fps > 0 && std::isfinite(settings_.fps))) {
    throw Error("in-memory live source: rate " + std::to_string(settings_.fps) +
                " fps is invalid (expected > 0 and finite)");
  }
  if (settings_.live && !(settings_.duration_s > 0)) {
    throw Error("in-memory live source: duration " + std::to_string(settings_.duration_s) +
                " s is invalid (expected > 0)");
  }
  const cv::Mat& first = frames_->images.front();
  info_.kind = settings_.live ? "camera" : "video file";
  info_.live = settings_.live;
  info_.width = first.cols;
  info_.height = first.rows;
  if (settings_.live) {
    info_.fps = settings_.fps;
    info_.frame_count = -1;
    std::ostringstream description;
    description << frames_->size() << " frames in memory replayed live at " << settings_.fps << " fps for "
                << settings_.duration_s << " s";
    info_.description = description.str();
  } else {
    info_.fps = settings_.nominal_fps > 0 ? settings_.nominal_fps : frames_->source.fps;
    info_.frame_count = static_cast<std::int64_t>(frames_->size());
    info_.description = std::to_string(frames_->size()) + " frames in memory from " + frames_->source.description;
  }
}

bool MemorySource::read(Frame& frame) {
  if (stopped_.load()) return false;
  const auto count = static_cast<std::int64_t>(frames_->size());
  if (!settings_.live) {
    if (next_ >= count) return false;
    const auto index = static_cast<std::size_t>(next_);
    frame.image = frames_->images[index];
    frame.pts_ms = frames_->pts_ms[index];
    frame.name.clear();
    ++next_;
    return true;
  }

  // A camera hands frame n over at start + n / fps; sleeping in slices keeps stop() prompt.
  if (next_ == 0) live_start_ = Clock::now();
  const auto due = live_start_ + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(static_cast<double>(next_) / settings_.fps));
  const auto end =
      live_start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(settings_.duration_s));
  if (due >= end) return false;
  while (Clock::now() < due) {
    if (stopped_.load()) return false;
    std::this_thread::sleep_until(std::min(due, Clock::now() + std::chrono::milliseconds(20)));
  }
  const auto index = static_cast<std::size_t>(next_ % count);
  frame.image = frames_->images[index];
  frame.pts_ms = 1000.0 * static_cast<double>(next_) / settings_.fps;
  frame.name.clear();
  ++next_;
  return true;
}

}  // namespace detflow::bench
