// detflow/service/preview.h — the newest annotated frame for HTTP clients.
//
//   graph thread ──publish()──► LatestFrame ◄──wait_newer()── HTTP client threads
//   (PreviewSink::consume)      (one frame +     (annotate + JPEG at most once per new
//                                detections)      frame, shared by every client)
//
// The graph only swaps a shared_ptr and copies the detections under a short lock: no
// drawing and no encoding happen on its thread, whether or not anyone watches. The first
// client that wants a frame newer than the cached JPEG draws and encodes it; the others
// wait for that one encoding and share its bytes. A slow client simply asks again when it
// is ready and gets whatever is newest then: it skips frames, never holds one back.
//
// Drawn as the video is (annotate.h): boxes, and with tracking the track ids, lines, zones and
// counts. The lines and zones are the Pipeline's settings (FrameResult::analytics): the
// Pipeline must outlive the last encoding (stop the HTTP server before destroying it).
// Memory: one FramePtr (the image the graph already made), one detections and one tracks
// vector, a copy of the counts and one encoded JPEG, whatever the number of clients.
// Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "detflow/pipeline/annotate.h"
#include "detflow/pipeline/frame.h"
#include "detflow/pipeline/sink.h"

namespace detflow::service {

struct EncodedFrame {
  std::int64_t sequence = 0;     // 1 for the first frame published, +1 for each later one
  std::int64_t frame_index = 0;  // Frame::index
  std::vector<unsigned char> jpeg;
};
using EncodedFramePtr = std::shared_ptr<const EncodedFrame>;

class LatestFrame {
 public:
  explicit LatestFrame(int jpeg_quality = 80, AnnotationStyle style = {});

  // Keeps `result` as the newest frame (graph thread; cheap, never encodes). A result without
  // a frame (the end-of-run events) is ignored.
  void publish(const FrameResult& result);
  // Wakes every waiter for good (end of the run, server stopping).
  void close();
  bool closed() const;

  // The newest frame as JPEG if its sequence is above `after`, waiting up to `timeout` for
  // one; nullptr on timeout or after close(). Encodes at most once per published frame.
  EncodedFramePtr wait_newer(std::int64_t after, std::chrono::milliseconds timeout);
  // The newest frame as JPEG, nullptr before the first frame.
  EncodedFramePtr latest();

  // Frames published so far and when the last one came (nullopt before the first).
  std::int64_t frames_published() const { return sequence_.load(std::memory_order_acquire); }
  std::optional<Clock::time_point> last_frame_time() const;
  // JPEG encodings done so far (at most one per published frame).
  std::int64_t encodings() const { return encodings_.load(std::memory_order_relaxed); }

 private:
  EncodedFramePtr encode_newest();

  const int jpeg_quality_;
  const AnnotationStyle style_;

  mutable std::mutex mutex_;  // guards the fields below
  std::condition_variable frame_arrived_;
  FramePtr frame_;
  // What is drawn on frame_: its detections and, with tracking, its tracks, the lines and
  // zones (the Pipeline's constant settings) and a copy of the counts at that frame.
  std::vector<Detection> detections_;
  std::vector<track::Track> tracks_;
  const track::AnalyticsSettings* analytics_ = nullptr;
  std::optional<track::CountsSnapshot> counts_;
  Clock::time_point last_frame_time_{};
  bool closed_ = false;
  EncodedFramePtr encoded_;  // the cached JPEG, for sequence encoded_->sequence

  std::mutex encoder_mutex_;  // one encoding at a time; the others reuse its result
  // Guarded by encoder_mutex_: the encoder's drawing buffers, reused between frames.
  std::vector<Detection> canvas_detections_;
  std::vector<track::Track> canvas_tracks_;
  std::optional<track::CountsSnapshot> canvas_counts_;
  cv::Mat canvas_;
  std::atomic<std::int64_t> sequence_{0};
  std::atomic<std::int64_t> encodings_{0};
};

// A Sink that publishes every result into `latest` and never fails or asks to stop.
// finish() closes `latest` so streaming clients end.
std::unique_ptr<Sink> make_preview_sink(std::shared_ptr<LatestFrame> latest);

}  // namespace detflow::service
