// Sources: video files (whole and truncated), images, folders, globs, GStreamer
// pipelines (live and not), and the one-line errors for what cannot be opened.
#include "detflow/pipeline/source.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "detflow/error.h"
#include "shared_data.h"
#include "source_internal.h"

namespace detflow {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kVideoFrames = 30;

// An MJPG AVI of kVideoFrames frames, 320x240 at 10 fps; each frame shows its number.
fs::path write_test_video(const fs::path& folder) {
  const fs::path path = folder / "clip.avi";
  cv::VideoWriter writer(path.string(), cv::CAP_OPENCV_MJPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0,
                         cv::Size(320, 240));
  if (!writer.isOpened()) throw std::runtime_error("cannot write " + path.string());
  for (int frame = 0; frame < kVideoFrames; ++frame) {
    cv::Mat image(240, 320, CV_8UC3, cv::Scalar(40, 80, 120));
    cv::rectangle(image, cv::Rect(frame * 8, 100, 40, 40), cv::Scalar(255, 255, 255), cv::FILLED);
    cv::putText(image, std::to_string(frame), {10, 40}, cv::FONT_HERSHEY_SIMPLEX, 1.0, cv::Scalar(0, 0, 0), 2);
    writer.write(image);
  }
  return path;
}

struct Drained {
  std::vector<Frame> frames;
  SourceCounters counters;
};

Drained read_all(Source& source, std::size_t limit = 100000) {
  Drained drained;
  Frame frame;
  while (drained.frames.size() < limit && source.read(frame)) {
    drained.frames.push_back(frame);
    frame = Frame{};
  }
  drained.counters = source.counters();
  return drained;
}

std::string error_of(const std::string& uri) {
  try {
    open_source({.uri = uri});
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(VideoFileSource, ReadsEveryFrameWithCountSizeAndTimestamps) {
  const fs::path folder = test::temporary_directory("detflow_source");
  const fs::path video = write_test_video(folder);
  auto source = open_source({.uri = video.string()});
  const SourceInfo& info = source->info();
  EXPECT_EQ(info.kind, "video file");
  EXPECT_FALSE(info.live);
  EXPECT_EQ(info.width, 320);
  EXPECT_EQ(info.height, 240);
  EXPECT_NEAR(info.fps, 10.0, 1e-6);
  EXPECT_EQ(info.frame_count, kVideoFrames);
  // "auto" reads files with FFmpeg (pixel-identical to cv2.VideoCapture, see source.h).
  EXPECT_NE(info.description.find("FFmpeg"), std::string::npos) << info.description;

  const Drained drained = read_all(*source);
  ASSERT_EQ(drained.frames.size(), static_cast<std::size_t>(kVideoFrames));
  for (std::size_t index = 0; index < drained.frames.size(); ++index) {
    const Frame& frame = drained.frames[index];
    EXPECT_EQ(frame.image.type(), CV_8UC3);
    EXPECT_EQ(frame.image.size(), cv::Size(320, 240));
    EXPECT_NEAR(frame.pts_ms, 100.0 * static_cast<double>(index), 1.0);
  }
  // The white square moves 8 pixels per frame: frame 10 has it at x = 80..119.
  const cv::Vec3b inside = drained.frames[10].image.at<cv::Vec3b>(120, 100);
  EXPECT_GT(inside[0], 200);
  EXPECT_TRUE(drained.counters.last_warning.empty()) << drained.counters.last_warning;
  EXPECT_EQ(drained.counters.corrupt_frames, 0);
}

TEST(VideoFileSource, OpenCvReaderReadsTheSameFile) {
  const fs::path folder = test::temporary_directory("detflow_source");
  const fs::path video = write_test_video(folder);
  auto source = open_source({.uri = video.string(), .video_reader = "opencv"});
  EXPECT_EQ(source->info().frame_count, kVideoFrames);
  EXPECT_NE(source->info().description.find("OpenCV"), std::string::npos) << source->info().description;
  EXPECT_THROW(open_source({.uri = video.string(), .video_reader = "vlc"}), Error);
  EXPECT_EQ(read_all(*source).frames.size(), static_cast<std::size_t>(kVideoFrames));
}

TEST(VideoFileSource, TruncatedFileReadsWhatDecodesAndWarns) {
  const fs::path folder = test::temporary_directory("detflow_source");
  const fs::path video = write_test_video(folder);
  const fs::path truncated = folder / "truncated.avi";
  {
    std::ifstream input(video, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(input)), std::istreambuf_iterator<char>());
    std::ofstream output(truncated, std::ios::binary);
    output.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  auto source = open_source({.uri = truncated.string()});
  const Drained drained = read_all(*source);
  EXPECT_GT(drained.frames.size(), 5u);
  EXPECT_LT(drained.frames.size(), static_cast<std::size_t>(kVideoFrames));
  EXPECT_FALSE(drained.counters.last_warning.empty()) << "a truncated file should say so";
}

TEST(VideoFileSource, CorruptFrameIsCountedAndReadingContinues) {
  const fs::path folder = test::temporary_directory("detflow_source");
  const fs::path video = write_test_video(folder);
  std::string bytes;
  {
    std::ifstream input(video, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(input), std::istreambuf_iterator<char>());
  }
  // Frame 10's JPEG data ("00dc" chunk): keep its markers, overwrite the entropy-coded
  // middle so the decoder cannot decode it.
  std::size_t chunk = 0;
  for (int frame = 0; frame <= 10; ++frame) chunk = bytes.find("00dc", chunk + 4);
  ASSERT_NE(chunk, std::string::npos);
  const std::size_t start_of_scan = bytes.find("\xFF\xDA", chunk);
  for (std::size_t offset = start_of_scan; offset < start_of_scan + 64; ++offset) bytes[offset] = '\xFF';
  const fs::path damaged = folder / "damaged.avi";
  std::ofstream(damaged, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));

  // GStreamer's decoder reports the damaged frame (QoS): it is counted and reading goes on.
  auto source = open_source({.uri = damaged.string(), .video_reader = "gstreamer"});
  const Drained drained = read_all(*source);
  EXPECT_GE(drained.frames.size(), static_cast<std::size_t>(kVideoFrames - 1));
  EXPECT_GE(drained.counters.corrupt_frames + drained.counters.read_errors, 1) << drained.counters.last_warning;

  // FFmpeg (the default reader) conceals the damage and delivers every frame.
  auto concealing = open_source({.uri = damaged.string()});
  EXPECT_EQ(read_all(*concealing).frames.size(), static_cast<std::size_t>(kVideoFrames));
}

TEST(VideoFileSource, LoopStartsAgainAtTheEnd) {
  const fs::path folder = test::temporary_directory("detflow_source");
  const fs::path video = write_test_video(folder);
  auto source = open_source({.uri = video.string(), .loop = true});
  const Drained drained = read_all(*source, kVideoFrames + 5);
  ASSERT_EQ(drained.frames.size(), static_cast<std::size_t>(kVideoFrames + 5));
  EXPECT_LT(drained.frames.back().pts_ms, 1000.0) << "pts restart after the loop";
}

class ImageSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = test::temporary_directory("detflow_images");
    for (int image = 0; image < 3; ++image) {
      cv::Mat pixels(48 + image, 64, CV_8UC3, cv::Scalar(10.0 * image, 20, 30));
      cv::imwrite((folder_ / ("img_" + std::to_string(image) + ".png")).string(), pixels);
    }
    std::ofstream(folder_ / "img_1b.png") << "this is not a PNG";
    std::ofstream(folder_ / "notes.txt") << "ignored";
  }
  fs::path folder_;
};

TEST_F(ImageSourceTest, FolderReadsImagesInOrderAndCountsTheCorruptOne) {
  auto source = open_source({.uri = folder_.string()});
  EXPECT_EQ(source->info().kind, "image folder");
  EXPECT_EQ(source->info().frame_count, 4);
  const Drained drained = read_all(*source);
  ASSERT_EQ(drained.frames.size(), 3u);
  EXPECT_EQ(drained.frames[0].name, "img_0.png");
  EXPECT_EQ(drained.frames[1].name, "img_1.png");
  EXPECT_EQ(drained.frames[2].name, "img_2.png");
  EXPECT_EQ(drained.frames[2].image.rows, 50);
  EXPECT_EQ(drained.counters.corrupt_frames, 1);
  EXPECT_NE(drained.counters.last_warning.find("img_1b.png"), std::string::npos);
}

TEST_F(ImageSourceTest, GlobSelectsMatchingFiles) {
  auto source = open_source({.uri = (folder_ / "img_?.png").string()});
  const Drained drained = read_all(*source);
  ASSERT_EQ(drained.frames.size(), 3u);
  EXPECT_EQ(drained.counters.corrupt_frames, 0);
  EXPECT_EQ(drained.frames[1].name, "img_1.png");
}

TEST_F(ImageSourceTest, SingleImageKnowsItsSizeBeforeReading) {
  auto source = open_source({.uri = (folder_ / "img_1.png").string()});
  EXPECT_EQ(source->info().kind, "image");
  EXPECT_EQ(source->info().width, 64);
  EXPECT_EQ(source->info().height, 49);
  EXPECT_EQ(read_all(*source).frames.size(), 1u);
}

TEST_F(ImageSourceTest, UnreadableSingleImageAndEmptyMatchesAreErrors) {
  EXPECT_NE(error_of((folder_ / "img_1b.png").string()).find("cannot decode"), std::string::npos);
  EXPECT_NE(error_of((folder_ / "*.jpg").string()).find("matches no files"), std::string::npos);
  const fs::path empty = test::temporary_directory("detflow_empty");
  EXPECT_NE(error_of(empty.string()).find("no image files"), std::string::npos);
}

TEST(GstreamerSource, LiveTestSourceIsLiveAndDelivers) {
  auto source = open_source(
      {.uri = "gst:videotestsrc is-live=true num-buffers=30 ! video/x-raw,width=320,height=240,framerate=30/1"});
  EXPECT_EQ(source->info().kind, "gstreamer");
  EXPECT_TRUE(source->info().live);
  EXPECT_EQ(source->info().width, 320);
  EXPECT_EQ(source->info().height, 240);
  EXPECT_NEAR(source->info().fps, 30.0, 1e-6);
  EXPECT_EQ(source->info().frame_count, -1);
  const Drained drained = read_all(*source);
  // Reading keeps up with 30 fps, but a live appsink may drop one when the machine is busy.
  EXPECT_GE(drained.frames.size(), 20u);
  EXPECT_LE(drained.frames.size(), 30u);
  for (std::size_t index = 1; index < drained.frames.size(); ++index) {
    EXPECT_GT(drained.frames[index].pts_ms, drained.frames[index - 1].pts_ms);
  }
}

TEST(GstreamerSource, NonLivePipelineDeliversEveryBuffer) {
  auto source = open_source({.uri = "gst:videotestsrc num-buffers=12 ! video/x-raw,width=64,height=48,format=I420"});
  EXPECT_FALSE(source->info().live);
  EXPECT_EQ(read_all(*source).frames.size(), 12u);
}

TEST(GstreamerSource, ModeOverrideMakesAFilePipelineLive) {
  auto source =
      open_source({.uri = "gst:videotestsrc num-buffers=5 ! video/x-raw,width=64,height=48", .mode = SourceMode::live});
  EXPECT_TRUE(source->info().live);
}

TEST(GstreamerSource, UserAppSinkIsUsedAsIs) {
  EXPECT_EQ(detail::complete_gstreamer_launch("videotestsrc ! appsink"), "videotestsrc ! appsink");
  auto source =
      open_source({.uri = "gst:videotestsrc num-buffers=3 ! videoconvert ! video/x-raw,format=RGB,width=32,height=24 "
                          "! appsink name=mine"});
  const Drained drained = read_all(*source);
  ASSERT_EQ(drained.frames.size(), 3u);
  EXPECT_EQ(drained.frames[0].image.type(), CV_8UC3);
}

TEST(GstreamerSource, PlanarYuvAppSinkIsConvertedToBgr) {
  const std::string pattern = "gst:videotestsrc num-buffers=2 pattern=smpte ! video/x-raw,width=64,height=48";
  auto yuv = open_source({.uri = pattern + ",format=I420 ! appsink"});
  auto bgr = open_source({.uri = pattern + ",format=I420 ! videoconvert ! video/x-raw,format=BGR ! appsink"});
  Frame from_yuv, from_bgr;
  ASSERT_TRUE(yuv->read(from_yuv));
  ASSERT_TRUE(bgr->read(from_bgr));
  ASSERT_EQ(from_yuv.image.type(), CV_8UC3);
  ASSERT_EQ(from_yuv.image.size(), from_bgr.image.size());
  cv::Mat difference;
  cv::absdiff(from_yuv.image, from_bgr.image, difference);
  EXPECT_LT(cv::mean(difference)[0], 6.0) << "same picture, different YUV converters";
}

TEST(GstreamerSource, StopUnblocksAReadFromAnotherThread) {
  auto source = open_source({.uri = "gst:videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=5/1"});
  std::thread stopper([&] {
    std::this_thread::sleep_for(300ms);
    source->stop();
  });
  const auto start = std::chrono::steady_clock::now();
  const Drained drained = read_all(*source);
  stopper.join();
  EXPECT_GE(drained.frames.size(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(SourceErrors, AreOneLineAndNameTheSource) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"/nonexistent/video.mp4", "no such file"},
      {"/dev/video9", "does not exist"},
      {"ftp://x", "unknown URL scheme 'ftp'"},
      {"gst:nosuchelement ! appsink", "invalid"},
      {"", "empty"},
  };
  for (const auto& [uri, expected] : cases) {
    const std::string message = error_of(uri);
    EXPECT_NE(message.find(expected), std::string::npos) << uri << " -> " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    if (!uri.empty()) {
      EXPECT_NE(message.find(uri), std::string::npos) << message;
    }
  }
  EXPECT_NE(error_of("ftp://x").find("rtsp://"), std::string::npos) << "lists the accepted schemes";
}

TEST(SourceErrors, NotAVideoIsAnError) {
  const fs::path folder = test::temporary_directory("detflow_source");
  const fs::path bogus = folder / "movie.mp4";
  std::ofstream(bogus) << "definitely not a video";
  const std::string message = error_of(bogus.string());
  EXPECT_NE(message.find("movie.mp4"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(SharedMedia, VtestAviHasTheDocumentedFrameCount) {
  DETFLOW_SHARED_FILE(video, "media/vtest.avi");
  auto source = open_source({.uri = video.string()});
  EXPECT_EQ(source->info().width, 768);
  EXPECT_EQ(source->info().height, 576);
  EXPECT_EQ(source->info().frame_count, 795);
  EXPECT_EQ(read_all(*source, 5).frames.size(), 5u);
}

}  // namespace
}  // namespace detflow
