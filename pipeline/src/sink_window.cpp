// The window sink: cv::imshow with annotations; the user's 'q', Esc or closing the
// window asks the pipeline for a clean stop.
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <opencv2/highgui.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/sinks.h"

namespace detflow {

namespace {

constexpr int escape_key = 27;

class WindowSink final : public Sink {
 public:
  WindowSink(std::string title, const AnnotationStyle& style) : title_(std::move(title)), style_(style) {}

  std::string name() const override { return "window"; }

  void open(const SourceInfo&) override {}

  bool consume(const FrameResult& result) override {
    if (closed_) return false;
    if (!result.frame || result.frame->image.empty()) return true;
    copy_and_annotate(result.frame->image, result.detections, canvas_, style_);
    try {
      if (!shown_.load(std::memory_order_relaxed)) {
        cv::namedWindow(title_, cv::WINDOW_NORMAL | cv::WINDOW_KEEPRATIO);
        cv::resizeWindow(title_, canvas_.cols, canvas_.rows);
        gui_thread_ = std::this_thread::get_id();
        shown_.store(true, std::memory_order_release);
      } else if (cv::getWindowProperty(title_, cv::WND_PROP_VISIBLE) < 1) {
        closed_ = true;  // the user closed the window
        return false;
      }
      cv::imshow(title_, canvas_);
      const int key = cv::waitKey(1) & 0xFF;
      if (key == 'q' || key == 'Q' || key == escape_key) {
        closed_ = true;
        return false;
      }
    } catch (const cv::Exception& error) {
      throw Error("cannot show the window '" + title_ + "': " + error.err + " (use --no-display)");
    }
    return true;
  }

  void finish() override {
    // GUI toolkits only tolerate the thread that created the window; an emergency finish
    // from another thread leaves the window to the process exit.
    if (!shown_.load(std::memory_order_acquire) || finished_ || std::this_thread::get_id() != gui_thread_) return;
    finished_ = true;
    try {
      cv::destroyWindow(title_);
      cv::waitKey(1);
    } catch (const cv::Exception&) {
      // The window may already be gone (closed by the user); nothing is left to release.
    }
  }

 private:
  const std::string title_;
  const AnnotationStyle style_;
  cv::Mat canvas_;
  std::thread::id gui_thread_;
  std::atomic<bool> shown_{false};  // read by an emergency finish() from another thread
  bool closed_ = false;
  bool finished_ = false;
};

}  // namespace

std::unique_ptr<Sink> make_window_sink(const std::string& title, const AnnotationStyle& style) {
  if (!display_available()) {
    throw Error("cannot open a window: no display (DISPLAY and WAYLAND_DISPLAY are unset); use --no-display");
  }
  return std::make_unique<WindowSink>(title, style);
}

}  // namespace detflow
