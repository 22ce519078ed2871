// The newest annotated frame, encoded on demand by the HTTP clients that want it.
#include "detflow/service/preview.h"

#include <opencv2/imgcodecs.hpp>

namespace detflow::service {

LatestFrame::LatestFrame(int jpeg_quality, AnnotationStyle style) : jpeg_quality_(jpeg_quality), style_(style) {}

void LatestFrame::publish(const FrameResult& result) {
  if (!result.frame) return;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    frame_ = result.frame;
    detections_ = result.detections;  // reuses the vector's capacity from frame to frame
    tracks_ = result.tracks;
    analytics_ = result.analytics;
    if (result.counts != nullptr) {
      counts_ = *result.counts;
    } else {
      counts_.reset();
    }
    last_frame_time_ = Clock::now();
    sequence_.fetch_add(1, std::memory_order_acq_rel);
  }
  frame_arrived_.notify_all();
}

void LatestFrame::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  frame_arrived_.notify_all();
}

bool LatestFrame::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

std::optional<Clock::time_point> LatestFrame::last_frame_time() const {
  std::lock_guard lock(mutex_);
  if (!frame_) return std::nullopt;
  return last_frame_time_;
}

EncodedFramePtr LatestFrame::wait_newer(std::int64_t after, std::chrono::milliseconds timeout) {
  {
    std::unique_lock lock(mutex_);
    const bool ready = frame_arrived_.wait_for(
        lock, timeout, [&] { return closed_ || sequence_.load(std::memory_order_acquire) > after; });
    if (!ready || closed_) return nullptr;
  }
  return encode_newest();
}

EncodedFramePtr LatestFrame::latest() {
  if (frames_published() == 0) return nullptr;
  return encode_newest();
}

EncodedFramePtr LatestFrame::encode_newest() {
  // Clients that arrive while another encodes wait here, then find its result cached.
  std::lock_guard encoding(encoder_mutex_);
  FramePtr frame;
  const track::AnalyticsSettings* analytics = nullptr;
  std::int64_t sequence = 0;
  {
    std::lock_guard lock(mutex_);
    sequence = sequence_.load(std::memory_order_acquire);
    if (encoded_ && encoded_->sequence == sequence) return encoded_;
    frame = frame_;
    canvas_detections_ = detections_;
    canvas_tracks_ = tracks_;
    canvas_counts_ = counts_;
    analytics = analytics_;
  }
  if (!frame || frame->image.empty()) return nullptr;
  // The frame is shared read-only: draw on this encoder's own canvas, with the same layers as
  // the video (ids, lines, zones and counts).
  AnnotationLayers layers;
  layers.detections = canvas_detections_;
  layers.tracks = canvas_tracks_;
  layers.analytics = analytics;
  layers.counts = canvas_counts_ ? &*canvas_counts_ : nullptr;
  layers.source_size = frame->image.size();
  copy_and_annotate(frame->image, layers, canvas_, style_);
  auto encoded = std::make_shared<EncodedFrame>();
  encoded->sequence = sequence;
  encoded->frame_index = frame->index;
  cv::imencode(".jpg", canvas_, encoded->jpeg, {cv::IMWRITE_JPEG_QUALITY, jpeg_quality_});
  encodings_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  encoded_ = encoded;
  return encoded;
}

namespace {

class PreviewSink final : public Sink {
 public:
  explicit PreviewSink(std::shared_ptr<LatestFrame> latest) : latest_(std::move(latest)) {}
  std::string name() const override { return "preview (HTTP)"; }
  void open(const SourceInfo&) override {}
  bool consume(const FrameResult& result) override {
    latest_->publish(result);
    return true;
  }
  void finish() override { latest_->close(); }

 private:
  std::shared_ptr<LatestFrame> latest_;
};

}  // namespace

std::unique_ptr<Sink> make_preview_sink(std::shared_ptr<LatestFrame> latest) {
  return std::make_unique<PreviewSink>(std::move(latest));
}

}  // namespace detflow::service
