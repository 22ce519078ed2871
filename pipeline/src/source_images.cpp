#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>

#include <spdlog/spdlog.h>
#include <opencv2/imgcodecs.hpp>

#include "detflow/error.h"
#include "source_internal.h"

namespace detflow::detail {
namespace {

class ImageSource final : public CountingSource {
 public:
  ImageSource(std::vector<std::filesystem::path> files, SourceInfo info, bool loop)
      : files_(std::move(files)), info_(std::move(info)), loop_(loop) {}

  const SourceInfo& info() const override { return info_; }

  bool read(Frame& frame) override {
    std::size_t unreadable_in_a_row = 0;
    while (!stopped()) {
      if (next_ == files_.size()) {
        // Looping over a folder with nothing readable would spin forever.
        if (!loop_ || unreadable_in_a_row >= files_.size()) return false;
        next_ = 0;
      }
      const std::filesystem::path& file = files_[next_++];
      frame.image = cv::imread(file.string(), cv::IMREAD_COLOR);
      if (frame.image.empty()) {
        ++unreadable_in_a_row;
        const std::string warning = "cannot decode image " + file.string();
        with_counters([&](SourceCounters& counters) {
          ++counters.corrupt_frames;
          counters.last_warning = warning;
        });
        spdlog::warn("source: {}", warning);
        continue;
      }
      frame.name = file.filename().string();
      frame.pts_ms = -1.0;
      return true;
    }
    return false;
  }

 private:
  std::vector<std::filesystem::path> files_;
  SourceInfo info_;
  bool loop_ = false;
  std::size_t next_ = 0;
};

}  // namespace

bool is_image_file(const std::filesystem::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char character) { return static_cast<char>(std::tolower(character)); });
  static const std::vector<std::string> kExtensions{".jpg",  ".jpeg", ".png", ".bmp", ".tif", ".tiff",
                                                    ".webp", ".ppm",  ".pgm", ".pbm", ".pnm", ".jp2"};
  return std::find(kExtensions.begin(), kExtensions.end(), extension) != kExtensions.end();
}

std::unique_ptr<Source> open_image_source(std::vector<std::filesystem::path> files, const std::string& kind,
                                          const std::string& label, const SourceSettings& settings) {
  SourceInfo info;
  info.kind = kind;
  info.live = settings.mode == SourceMode::live;
  info.frame_count = settings.loop || info.live ? -1 : static_cast<std::int64_t>(files.size());
  if (kind == "image") {
    // A single image is read once here so that a broken file fails at setup, and sinks
    // learn its size before the first frame.
    const cv::Mat image = cv::imread(files.front().string(), cv::IMREAD_COLOR);
    if (image.empty()) {
      throw Error("source '" + label +
                  "': cannot decode the image (accepted: " + "jpg, png, bmp, tiff, webp, ppm/pgm, jp2)");
    }
    info.width = image.cols;
    info.height = image.rows;
    info.description = files.front().filename().string() + " (" + std::to_string(image.cols) + "x" +
                       std::to_string(image.rows) + " image)";
  } else {
    info.description = label + " (" + std::to_string(files.size()) + " images)";
  }
  return std::make_unique<ImageSource>(std::move(files), std::move(info), settings.loop);
}

}  // namespace detflow::detail
