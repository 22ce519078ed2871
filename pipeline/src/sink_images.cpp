// The annotated-images sink: one file per frame in an output folder.
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include <opencv2/imgcodecs.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/sinks.h"

namespace detflow {

namespace {

class ImageFolderSink final : public Sink {
 public:
  ImageFolderSink(std::filesystem::path folder, const AnnotationStyle& style)
      : folder_(std::move(folder)), style_(style) {}

  std::string name() const override { return "images " + folder_.string(); }

  void open(const SourceInfo&) override {
    std::lock_guard lock(mutex_);
    std::error_code error;
    std::filesystem::create_directories(folder_, error);
    if (error || !std::filesystem::is_directory(folder_)) {
      throw Error("cannot create image output folder " + folder_.string() + ": " +
                  (error ? error.message() : "a file of that name exists"));
    }
  }

  bool consume(const FrameResult& result) override {
    std::lock_guard lock(mutex_);
    if (finished_ || !result.frame || result.frame->image.empty()) return true;
    copy_and_annotate(result.frame->image, annotation_layers(result), canvas_, style_);
    const std::filesystem::path path = folder_ / file_name(*result.frame);
    bool written = false;
    std::string reason = "the encoder failed (disk full or unwritable folder?)";
    try {
      written = cv::imwrite(path.string(), canvas_);
    } catch (const cv::Exception& error) {
      reason = error.err;
    }
    if (!written) throw Error("cannot write annotated image " + path.string() + ": " + reason);
    return true;
  }

  void finish() override {
    std::lock_guard lock(mutex_);
    finished_ = true;
    canvas_.release();
  }

 private:
  // Image sources keep their file name (only the last component, so a name can never
  // escape the folder); an extension OpenCV cannot write gets ".png" appended.
  static std::string file_name(const Frame& frame) {
    if (frame.name.empty()) {
      char numbered[32];
      std::snprintf(numbered, sizeof numbered, "frame_%06lld.jpg", static_cast<long long>(frame.index));
      return numbered;
    }
    std::string name = std::filesystem::path(frame.name).filename().string();
    if (name.empty() || name == "." || name == "..") name = "frame_" + std::to_string(frame.index);
    if (!cv::haveImageWriter(name)) name += ".png";
    return name;
  }

  const std::filesystem::path folder_;
  const AnnotationStyle style_;
  std::mutex mutex_;  // consume() and an emergency finish() from another thread
  cv::Mat canvas_;    // reused between frames of the same size
  bool finished_ = false;
};

}  // namespace

std::unique_ptr<Sink> make_image_folder_sink(const std::filesystem::path& folder, const AnnotationStyle& style) {
  return std::make_unique<ImageFolderSink>(folder, style);
}

}  // namespace detflow
