// Output checks made before a run, the sink factory, the image-folder and window sinks.
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "detflow/error.h"
#include "detflow/pipeline/sinks.h"
#include "shared_data.h"
#include "sink_test_support.h"

namespace detflow {
namespace {

// Sets or unsets environment variables for one test and restores them afterwards.
class EnvironmentOverride {
 public:
  void unset(const char* name) {
    remember(name);
    ::unsetenv(name);
  }
  void set(const char* name, const char* value) {
    remember(name);
    ::setenv(name, value, 1);
  }
  ~EnvironmentOverride() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  void remember(const char* name) {
    const char* value = std::getenv(name);
    saved_.emplace_back(name, value ? std::optional<std::string>(value) : std::nullopt);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return {};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(OutputChecks, MissingFolderIsNamed) {
  const auto message = error_of([] { check_output_file("/nonexistent-detflow/x.jsonl", "JSON Lines output"); });
  EXPECT_TRUE(contains(message, "JSON Lines output /nonexistent-detflow/x.jsonl")) << message;
  EXPECT_TRUE(contains(message, "does not exist")) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(OutputChecks, DirectoryInsteadOfFileIsRefused) {
  const auto folder = test::temporary_directory("output-checks");
  EXPECT_TRUE(contains(error_of([&] { check_output_file(folder, "video output"); }), "is a directory"));
}

TEST(OutputChecks, UnwritableFolderIsRefused) {
  // /proc refuses new files even to root, where permission bits would not.
  const auto message = error_of([] { check_output_file("/proc/detflow-out.mp4", "video output"); });
  EXPECT_TRUE(contains(message, "not writable")) << message;
}

TEST(OutputChecks, WritableTargetsPassAndLeaveNoTrace) {
  const auto folder = test::temporary_directory("output-checks");
  EXPECT_NO_THROW(check_output_file(folder / "new.mp4", "video output"));
  EXPECT_FALSE(std::filesystem::exists(folder / "new.mp4"));
  std::ofstream(folder / "old.jsonl") << "keep\n";
  EXPECT_NO_THROW(check_output_file(folder / "old.jsonl", "JSON Lines output"));
  EXPECT_EQ(std::filesystem::file_size(folder / "old.jsonl"), 5u);  // not truncated by the check
  EXPECT_NO_THROW(check_output_folder(folder, "image output folder"));
  EXPECT_NO_THROW(check_output_folder(folder / "to-create/", "image output folder"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(folder), std::filesystem::directory_iterator()), 1);
}

TEST(OutputChecks, FolderChecks) {
  const auto folder = test::temporary_directory("output-checks");
  std::ofstream(folder / "file.txt") << "x";
  EXPECT_TRUE(
      contains(error_of([&] { check_output_folder(folder / "file.txt", "image output folder"); }), "is a file"));
  EXPECT_TRUE(contains(error_of([] { check_output_folder("/nonexistent-detflow/a/b", "image output folder"); }),
                       "does not exist"));
}

TEST(OutputChecks, VideoExtensionIsCheckedUpFront) {
  SinkSettings settings;
  settings.display = DisplayMode::off;
  settings.video = test::temporary_directory("output-checks") / "out.webm";
  const auto message = error_of([&] { check_sink_settings(settings); });
  EXPECT_TRUE(contains(message, "'.webm'")) << message;
  EXPECT_TRUE(contains(message, ".mp4, .mkv, .avi")) << message;
  settings.video.replace_extension(".MKV");
  EXPECT_NO_THROW(check_sink_settings(settings));
}

TEST(SinkFactory, MakesWhatIsAskedForInAFixedOrder) {
  EnvironmentOverride environment;
  environment.unset("DISPLAY");
  environment.unset("WAYLAND_DISPLAY");
  const auto folder = test::temporary_directory("sink-factory");
  SinkSettings settings;
  settings.json = folder / "out.jsonl";
  settings.video = folder / "out.mp4";
  settings.images = folder / "images";
  const auto sinks = make_sinks(settings);  // display automatic, none available: no window
  ASSERT_EQ(sinks.size(), 3u);
  EXPECT_EQ(sinks[0]->name(), "video " + settings.video.string());
  EXPECT_EQ(sinks[1]->name(), "images " + settings.images.string());
  EXPECT_EQ(sinks[2]->name(), "jsonl " + settings.json.string());
  EXPECT_TRUE(make_sinks(SinkSettings{}).empty());
}

TEST(SinkFactory, WindowNeedsADisplay) {
  EnvironmentOverride environment;
  environment.unset("DISPLAY");
  environment.unset("WAYLAND_DISPLAY");
  EXPECT_FALSE(display_available());
  EXPECT_THROW(make_window_sink("detflow"), Error);
  SinkSettings settings;
  settings.display = DisplayMode::on;
  EXPECT_TRUE(contains(error_of([&] { make_sinks(settings); }), "no display"));
  environment.set("WAYLAND_DISPLAY", "wayland-0");
  EXPECT_TRUE(display_available());
  settings.display = DisplayMode::off;
  EXPECT_TRUE(make_sinks(settings).empty());  // never a window when off
}

TEST(ImageFolderSink, KeepsFileNamesAndNumbersVideoFrames) {
  const auto folder = test::temporary_directory("image-sink") / "annotated";
  auto sink = make_image_folder_sink(folder);
  sink->open(SourceInfo{});  // creates the folder
  ASSERT_TRUE(std::filesystem::is_directory(folder));
  Detection person;
  person.x1 = 2, person.y1 = 2, person.x2 = 40, person.y2 = 40, person.score = 0.9f, person.label = "person";
  const FramePtr photo = test::make_test_frame(0, 64, 48, "photos/bus.jpg");
  EXPECT_TRUE(sink->consume(test::make_result(photo, {person})));
  EXPECT_TRUE(sink->consume(test::make_result(test::make_test_frame(1, 64, 48, "scan.png"))));
  EXPECT_TRUE(sink->consume(test::make_result(test::make_test_frame(2, 64, 48, "odd.xyz"))));
  EXPECT_TRUE(sink->consume(test::make_result(test::make_test_frame(42, 64, 48))));
  sink->finish();
  EXPECT_NO_THROW(sink->finish());

  const cv::Mat bus = cv::imread((folder / "bus.jpg").string());
  ASSERT_FALSE(bus.empty());
  EXPECT_EQ(bus.size(), cv::Size(64, 48));
  const cv::Mat scan = cv::imread((folder / "scan.png").string());
  ASSERT_FALSE(scan.empty());
  EXPECT_EQ(cv::norm(scan, test::make_test_frame(1, 64, 48)->image, cv::NORM_INF), 0.0);  // lossless, no boxes
  EXPECT_TRUE(std::filesystem::exists(folder / "odd.xyz.png"));
  EXPECT_TRUE(std::filesystem::exists(folder / "frame_000042.jpg"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(folder), std::filesystem::directory_iterator()), 4);
}

TEST(ImageFolderSink, WriteFailureNamesTheFile) {
  const auto folder = test::temporary_directory("image-sink") / "gone";
  auto sink = make_image_folder_sink(folder);
  sink->open(SourceInfo{});
  std::filesystem::remove_all(folder);
  try {
    sink->consume(test::make_result(test::make_test_frame(0, 16, 16, "a.png")));
    FAIL() << "expected detflow::Error";
  } catch (const Error& error) {
    EXPECT_TRUE(contains(error.what(), (folder / "a.png").string())) << error.what();
  }
}

}  // namespace
}  // namespace detflow
