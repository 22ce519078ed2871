// The window sink: cv::imshow with annotations; the user's 'q', Esc or closing the
// window asks the pipeline for a clean stop.
//
// GUI toolkits (Qt, GTK) accept calls only from the thread that created the window, while
// the pipeline calls a sink from whichever oneTBB worker runs the sink node. So the window
// lives on a thread of its own: consume() annotates and leaves the newest frame in a
// one-slot mailbox (a window shows the present, so an unshown older frame is replaced), and
// the GUI thread shows it, polls the keyboard between frames (the window stays responsive
// when frames are slow) and reports a quit back to consume().
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <opencv2/highgui.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/sinks.h"

namespace detflow {

namespace {

constexpr int escape_key = 27;
constexpr int key_poll_ms = 15;

class WindowSink final : public Sink {
 public:
  WindowSink(std::string title, const AnnotationStyle& style) : title_(std::move(title)), style_(style) {}
  ~WindowSink() override { finish(); }

  std::string name() const override { return "window"; }

  void open(const SourceInfo&) override {
    std::lock_guard lock(mutex_);
    if (!gui_thread_.joinable() && !finished_) gui_thread_ = std::thread([this] { show_frames(); });
  }

  bool consume(const FrameResult& result) override {
    if (!result.frame || result.frame->image.empty()) return !quit_requested_.load();
    copy_and_annotate(result.frame->image, annotation_layers(result), annotated_, style_);
    std::lock_guard lock(mutex_);
    if (!failure_.empty()) throw Error(failure_);
    if (quit_requested_.load()) return false;
    if (!gui_thread_.joinable() && !finished_) gui_thread_ = std::thread([this] { show_frames(); });
    cv::swap(annotated_, pending_);  // the GUI thread's previous frame, if unshown, is dropped
    has_pending_ = true;
    wake_.notify_one();
    return true;
  }

  void finish() override {
    {
      std::lock_guard lock(mutex_);
      if (finished_) return;
      finished_ = true;
      wake_.notify_one();
    }
    if (gui_thread_.joinable()) gui_thread_.join();
  }

 private:
  // The GUI thread: every highgui call happens here.
  void show_frames() {
    bool window_open = false;
    cv::Mat showing;
    try {
      while (true) {
        {
          std::unique_lock lock(mutex_);
          wake_.wait_for(lock, std::chrono::milliseconds(key_poll_ms), [this] { return has_pending_ || finished_; });
          if (finished_) break;
          if (has_pending_) {
            cv::swap(pending_, showing);
            has_pending_ = false;
          }
        }
        if (!showing.empty()) {
          if (!window_open) {
            cv::namedWindow(title_, cv::WINDOW_NORMAL | cv::WINDOW_KEEPRATIO);
            cv::resizeWindow(title_, showing.cols, showing.rows);
            window_open = true;
          } else if (cv::getWindowProperty(title_, cv::WND_PROP_VISIBLE) < 1) {
            quit_requested_.store(true);  // the user closed the window
            break;
          }
          cv::imshow(title_, showing);
          showing.release();
        }
        if (!window_open) continue;
        const int key = cv::waitKey(1) & 0xFF;
        if (key == 'q' || key == 'Q' || key == escape_key) {
          quit_requested_.store(true);
          break;
        }
      }
      if (window_open) {
        cv::destroyWindow(title_);
        cv::waitKey(1);
      }
    } catch (const cv::Exception& error) {
      std::lock_guard lock(mutex_);
      failure_ = "cannot show the window '" + title_ + "': " + error.err + " (use --no-display)";
    }
  }

  const std::string title_;
  const AnnotationStyle style_;
  cv::Mat annotated_;  // consume()'s canvas, swapped into the mailbox
  std::thread gui_thread_;
  std::mutex mutex_;  // guards everything below and the thread's start
  std::condition_variable wake_;
  cv::Mat pending_;  // the newest annotated frame not yet shown
  bool has_pending_ = false;
  bool finished_ = false;
  std::string failure_;  // set by the GUI thread, thrown by the next consume()
  std::atomic<bool> quit_requested_{false};
};

}  // namespace

std::unique_ptr<Sink> make_window_sink(const std::string& title, const AnnotationStyle& style) {
  if (!display_available()) {
    throw Error("cannot open a window: no display (DISPLAY and WAYLAND_DISPLAY are unset); use --no-display");
  }
  return std::make_unique<WindowSink>(title, style);
}

}  // namespace detflow
