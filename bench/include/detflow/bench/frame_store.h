// detflow/bench/frame_store.h — a source decoded into memory once, and a Source that
// replays it, so every benchmark mode sees the same pixels and none pays for decoding.
//
// DecodedFrames owns the images (8-bit BGR, one buffer each). MemorySource shares them
// (no copy per frame: Frame::image refers to the stored buffer, which the pipeline treats
// as read-only) and must not outlive the DecodedFrames it was given (it keeps a
// shared_ptr, so it cannot).
//
// Replay modes:
//   file  every stored frame once, in order, as fast as the reader asks; live = false, so
//         the pipeline applies back-pressure and drops nothing.
//   live  frames handed over at a fixed rate (the stored frames in a cycle) for a fixed
//         duration; live = true, so the pipeline drops frames when it falls behind.
//
// Thread-safety: read() from one thread; stop() from any thread.
// Units: frames per second, seconds, bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <opencv2/core.hpp>

#include "detflow/pipeline/frame.h"
#include "detflow/pipeline/source.h"

namespace detflow::bench {

struct DecodedFrames {
  std::vector<cv::Mat> images;  // CV_8UC3, in source order
  std::vector<double> pts_ms;   // presentation time per image; -1 when unknown
  SourceInfo source;            // what the source said about itself
  bool stopped_at_memory_budget = false;

  std::size_t size() const { return images.size(); }
  std::int64_t byte_size() const;
};

// Reads up to `max_frames` frames (0: all) of the source, stopping early once the stored
// images would exceed `memory_budget_bytes`. Throws detflow::Error when the source cannot
// be opened, for a negative frame count, or when it yields no frame at all.
std::shared_ptr<const DecodedFrames> decode_frames(const SourceSettings& settings, std::int64_t max_frames,
                                                   std::int64_t memory_budget_bytes);

struct ReplaySettings {
  bool live = false;
  double fps = 30;         // live: hand-over rate, > 0
  double duration_s = 0;   // live: stop after this long, > 0
  double nominal_fps = 0;  // reported as SourceInfo::fps in file mode (the video's rate); 0: the source's
};

class MemorySource final : public Source {
 public:
  // Throws detflow::Error for an empty frame store, or a live rate or duration <= 0.
  MemorySource(std::shared_ptr<const DecodedFrames> frames, const ReplaySettings& settings);

  const SourceInfo& info() const override { return info_; }
  bool read(Frame& frame) override;
  void stop() override { stopped_.store(true); }
  SourceCounters counters() const override { return {}; }

  // Frames handed over so far.
  std::int64_t frames_read() const { return next_; }

 private:
  std::shared_ptr<const DecodedFrames> frames_;
  ReplaySettings settings_;
  SourceInfo info_;
  std::atomic<bool> stopped_{false};
  std::int64_t next_ = 0;
  Clock::time_point live_start_{};
};

}  // namespace detflow::bench
