#include "sink_test_support.h"

#include "shared_data.h"

#include <array>
#include <cstdio>
#include <sstream>

#include <sys/wait.h>

#include <opencv2/imgproc.hpp>

namespace detflow::test {

FramePtr make_test_frame(std::int64_t index, int width, int height, std::string name) {
  auto frame = std::make_shared<Frame>();
  frame->index = index;
  frame->pts_ms = static_cast<double>(index) * 100.0;
  frame->captured = Clock::now();
  frame->name = std::move(name);
  frame->image.create(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    auto* row = frame->image.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width; ++x) {
      row[x] = cv::Vec3b(static_cast<unsigned char>((x + index * 7) & 0xFF), static_cast<unsigned char>(y & 0xFF),
                         static_cast<unsigned char>((x + y) & 0xFF));
    }
  }
  const int side = std::max(4, std::min(width, height) / 4);
  const int left = static_cast<int>((index * 5) % std::max(1, width - side));
  cv::rectangle(frame->image, cv::Rect(left, height / 3, side, side), cv::Scalar(255, 255, 255), cv::FILLED);
  return frame;
}

FramePtr make_noise_frame(std::int64_t index, int width, int height) {
  auto frame = std::make_shared<Frame>();
  frame->index = index;
  frame->captured = Clock::now();
  frame->image.create(height, width, CV_8UC3);
  cv::RNG generator(static_cast<std::uint64_t>(index) + 1);
  generator.fill(frame->image, cv::RNG::UNIFORM, 0, 256);
  return frame;
}

FrameResult make_result(FramePtr frame, std::vector<Detection> detections) {
  FrameResult result;
  result.frame = std::move(frame);
  result.detections = std::move(detections);
  return result;
}

CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  std::size_t count = 0;
  while ((count = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), count);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool have_ffprobe() { return run_command("command -v ffprobe >/dev/null 2>&1").status == 0; }

std::optional<ProbedVideo> probe_video(const std::filesystem::path& path) {
  const auto result = run_command(
      "ffprobe -v error -count_frames -select_streams v:0 "
      "-show_entries stream=codec_name,width,height,r_frame_rate,nb_read_frames -of default=noprint_wrappers=1 '" +
      path.string() + "' 2>/dev/null");
  if (result.status != 0) return std::nullopt;
  ProbedVideo video;
  std::istringstream lines(result.output);
  std::string line;
  while (std::getline(lines, line)) {
    const auto equals = line.find('=');
    if (equals == std::string::npos) continue;
    const std::string key = line.substr(0, equals);
    const std::string value = line.substr(equals + 1);
    if (key == "codec_name") video.codec = value;
    if (key == "width") video.width = std::stoi(value);
    if (key == "height") video.height = std::stoi(value);
    if (key == "r_frame_rate") video.frame_rate = value;
    if (key == "nb_read_frames" && value != "N/A") video.frames = std::stoll(value);
  }
  if (video.frames < 0) return std::nullopt;
  return video;
}

SmallDisk::SmallDisk(const std::string& prefix) : folder_(temporary_directory(prefix)) {
  mounted_ = run_command("mount -t tmpfs -o size=1m tmpfs '" + folder_.string() + "' 2>/dev/null").status == 0;
}

SmallDisk::~SmallDisk() {
  if (mounted_) run_command("umount -l '" + folder_.string() + "' 2>/dev/null");
}

}  // namespace detflow::test
