// The annotated-video sink: frame counts, rates and containers as ffprobe sees them, and
// completion on every exit path (finish, finish twice, destructor only, full disk).
#include <atomic>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>

#include "detflow/error.h"
#include "detflow/pipeline/sinks.h"
#include "shared_data.h"
#include "sink_test_support.h"

namespace detflow {
namespace {

using test::make_result;
using test::make_test_frame;

#define DETFLOW_REQUIRE_FFPROBE() \
  if (!test::have_ffprobe()) GTEST_SKIP() << "ffprobe is not installed (Debian: apt install ffmpeg): skipped"

SourceInfo video_source(int width, int height, double fps) {
  SourceInfo info;
  info.kind = "video file";
  info.width = width;
  info.height = height;
  info.fps = fps;
  return info;
}

std::vector<Detection> two_boxes() {
  Detection person;
  person.x1 = 10, person.y1 = 12, person.x2 = 60, person.y2 = 90, person.score = 0.91f, person.label = "person";
  Detection car;
  car.x1 = 80, car.y1 = 40, car.x2 = 150, car.y2 = 100, car.score = 0.42f, car.class_id = 2, car.label = "car";
  return {person, car};
}

void write_frames(Sink& sink, int count, int width, int height) {
  for (int index = 0; index < count; ++index) {
    ASSERT_TRUE(sink.consume(make_result(make_test_frame(index, width, height), two_boxes())));
  }
}

class VideoContainer : public ::testing::TestWithParam<std::string> {};

TEST_P(VideoContainer, EveryFrameIsDecodableAtTheSourceRateAndSize) {
  DETFLOW_REQUIRE_FFPROBE();
  const auto path = test::temporary_directory("video-sink") / ("out" + GetParam());
  auto sink = make_video_sink(path);
  EXPECT_EQ(sink->name(), "video " + path.string());
  sink->open(video_source(162, 120, 10.0));  // width 162: rows are padded to 4 bytes in GStreamer
  write_frames(*sink, 23, 162, 120);
  sink->finish();

  const auto video = test::probe_video(path);
  ASSERT_TRUE(video) << path;
  EXPECT_EQ(video->frames, 23);
  EXPECT_EQ(video->width, 162);
  EXPECT_EQ(video->height, 120);
  EXPECT_EQ(video->frame_rate, "10/1");
  EXPECT_EQ(video->codec, GetParam() == ".avi" ? "mjpeg" : "h264");
}

INSTANTIATE_TEST_SUITE_P(Containers, VideoContainer, ::testing::Values(".mp4", ".mkv", ".avi"),
                         [](const auto& parameter) { return parameter.param.substr(1); });

TEST(VideoSink, UnknownFrameRateIsWrittenAs30AndSizeComesFromTheFirstFrame) {
  DETFLOW_REQUIRE_FFPROBE();
  const auto path = test::temporary_directory("video-sink") / "unknown-rate.mp4";
  auto sink = make_video_sink(path);
  sink->open(SourceInfo{});  // no size, no rate
  write_frames(*sink, 7, 96, 64);
  sink->finish();
  const auto video = test::probe_video(path);
  ASSERT_TRUE(video);
  EXPECT_EQ(video->frames, 7);
  EXPECT_EQ(video->frame_rate, "30/1");
  EXPECT_EQ(video->width, 96);
  EXPECT_EQ(video->height, 64);
}

TEST(VideoSink, FractionalRateIsKept) {
  DETFLOW_REQUIRE_FFPROBE();
  const auto path = test::temporary_directory("video-sink") / "ntsc.mkv";
  auto sink = make_video_sink(path);
  sink->open(video_source(64, 48, 30000.0 / 1001.0));
  write_frames(*sink, 5, 64, 48);
  sink->finish();
  const auto video = test::probe_video(path);
  ASSERT_TRUE(video);
  EXPECT_EQ(video->frames, 5);
  EXPECT_EQ(video->frame_rate, "30000/1001");
}

TEST(VideoSink, FramesOfAnotherSizeAreFittedToTheVideo) {
  DETFLOW_REQUIRE_FFPROBE();
  const auto path = test::temporary_directory("video-sink") / "mixed.mp4";
  auto sink = make_video_sink(path);
  sink->open(SourceInfo{});
  EXPECT_TRUE(sink->consume(make_result(make_test_frame(0, 128, 96), two_boxes())));
  EXPECT_TRUE(sink->consume(make_result(make_test_frame(1, 300, 200), two_boxes())));
  EXPECT_TRUE(sink->consume(make_result(make_test_frame(2, 64, 64), two_boxes())));
  sink->finish();
  const auto video = test::probe_video(path);
  ASSERT_TRUE(video);
  EXPECT_EQ(video->frames, 3);
  EXPECT_EQ(video->width, 128);
  EXPECT_EQ(video->height, 96);
}

TEST(VideoSink, FailedFramesAreStillWrittenSoTimingIsKept) {
  DETFLOW_REQUIRE_FFPROBE();
  const auto path = test::temporary_directory("video-sink") / "failed.mp4";
  auto sink = make_video_sink(path);
  sink->open(video_source(64, 48, 10));
  for (int index = 0; index < 6; ++index) {
    auto result = make_result(make_test_frame(index, 64, 48));
    result.failed = index % 2 == 1;
    result.failure = "inference failed";
    EXPECT_TRUE(sink->consume(result));
  }
  sink->finish();
  const auto video = test::probe_video(path);
  ASSERT_TRUE(video);
  EXPECT_EQ(video->frames, 6);
}

TEST(VideoSink, FinishTwiceIsSafeAndLaterFramesAreIgnored) {
  DETFLOW_REQUIRE_FFPROBE();
  const auto path = test::temporary_directory("video-sink") / "twice.mp4";
  auto sink = make_video_sink(path);
  sink->open(video_source(64, 48, 10));
  write_frames(*sink, 4, 64, 48);
  sink->finish();
  EXPECT_NO_THROW(sink->finish());
  EXPECT_TRUE(sink->consume(make_result(make_test_frame(9, 64, 48))));
  sink.reset();
  const auto video = test::probe_video(path);
  ASSERT_TRUE(video);
  EXPECT_EQ(video->frames, 4);
}

TEST(VideoSink, DestructorAloneCompletesTheFile) {
  DETFLOW_REQUIRE_FFPROBE();
  for (const char* extension : {".mp4", ".mkv"}) {
    const auto path = test::temporary_directory("video-sink") / (std::string("destructor") + extension);
    {
      auto sink = make_video_sink(path);
      sink->open(video_source(64, 48, 10));
      write_frames(*sink, 9, 64, 48);
    }
    const auto video = test::probe_video(path);
    ASSERT_TRUE(video) << path;
    EXPECT_EQ(video->frames, 9) << path;
  }
}

TEST(VideoSink, FinishFromAnotherThreadWhileFramesArriveLeavesAPlayableFile) {
  DETFLOW_REQUIRE_FFPROBE();
  const auto path = test::temporary_directory("video-sink") / "emergency.mp4";
  auto sink = make_video_sink(path);
  sink->open(video_source(64, 48, 10));
  std::atomic<int> consumed{0};
  std::thread producer([&] {
    for (int index = 0; index < 200; ++index) {
      sink->consume(make_result(make_test_frame(index, 64, 48)));
      consumed.fetch_add(1);
    }
  });
  while (consumed.load() < 5) std::this_thread::yield();
  sink->finish();
  producer.join();
  const auto video = test::probe_video(path);
  ASSERT_TRUE(video);
  EXPECT_GE(video->frames, 5);
  EXPECT_LE(video->frames, 200);
}

TEST(VideoSink, UnsupportedExtensionIsRefusedWithTheAcceptedOnes) {
  try {
    make_video_sink(test::temporary_directory("video-sink") / "out.mov");
    FAIL() << "expected detflow::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(".mov"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find(".mp4, .mkv, .avi"), std::string::npos) << error.what();
  }
}

TEST(VideoSink, MissingFolderFailsOnOpenNamingThePath) {
  const std::filesystem::path path = "/nonexistent-detflow-folder/out.mp4";
  auto sink = make_video_sink(path);
  try {
    sink->open(video_source(64, 48, 10));
    FAIL() << "expected detflow::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
  }
}

TEST(VideoSink, FullDiskThrowsNamingThePathAndKeepsWhatWasWritten) {
  DETFLOW_REQUIRE_FFPROBE();
  const test::SmallDisk disk("small-disk");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a small tmpfs (needs root): skipped";
  const auto path = disk.folder() / "full.mp4";
  auto sink = make_video_sink(path);
  sink->open(video_source(320, 240, 10));
  std::string failure;
  int written = 0;
  for (int index = 0; index < 600 && failure.empty(); ++index) {
    try {
      sink->consume(make_result(test::make_noise_frame(index, 320, 240)));
      ++written;
    } catch (const Error& error) {
      failure = error.what();
    }
  }
  ASSERT_FALSE(failure.empty()) << "600 noise frames fitted into 1 MiB";
  EXPECT_NE(failure.find(path.string()), std::string::npos) << failure;
  EXPECT_THROW(sink->consume(make_result(test::make_noise_frame(999, 320, 240))), Error);
  EXPECT_NO_THROW(sink->finish());  // the failure was already reported
  const auto video = test::probe_video(path);
  ASSERT_TRUE(video) << "the frames before the disk filled must still play";
  EXPECT_GT(video->frames, 0);
  EXPECT_LT(video->frames, written);
}

}  // namespace
}  // namespace detflow
