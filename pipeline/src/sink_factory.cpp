// Up-front output checks and the sink factory.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "detflow/error.h"
#include "detflow/pipeline/sinks.h"

namespace detflow {

namespace {

bool environment_set(const char* name) {
  const char* value = std::getenv(name);
  return value && *value;
}

// Creating a file is the only reliable writability test: access(2) says yes to root on
// read-only file systems' directories and on /proc.
std::string creation_problem(const std::filesystem::path& folder) {
  static std::atomic<int> counter{0};
  const auto probe = folder / (".detflow-write-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  const int descriptor = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (descriptor < 0) return std::strerror(errno);
  ::close(descriptor);
  ::unlink(probe.c_str());
  return {};
}

std::filesystem::path folder_of(const std::filesystem::path& path) {
  const auto parent = path.parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

bool display_available() { return environment_set("DISPLAY") || environment_set("WAYLAND_DISPLAY"); }

void check_output_file(const std::filesystem::path& path, const std::string& what) {
  if (path.empty()) throw Error(what + ": empty path; expected a file name");
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (std::filesystem::is_directory(status)) {
    throw Error(what + " " + path.string() + " is a directory; expected a file name");
  }
  if (std::filesystem::exists(status)) {
    // Open without truncating: a run that fails before its first frame keeps the old file.
    const int descriptor = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (descriptor < 0) throw Error(what + " " + path.string() + " is not writable: " + std::strerror(errno));
    ::close(descriptor);
    return;
  }
  const auto folder = folder_of(path);
  if (!std::filesystem::is_directory(folder, error)) {
    throw Error(what + " " + path.string() + ": folder " + folder.string() + " does not exist");
  }
  if (const auto problem = creation_problem(folder); !problem.empty()) {
    throw Error(what + " " + path.string() + ": folder " + folder.string() + " is not writable (" + problem + ")");
  }
}

void check_output_folder(const std::filesystem::path& folder, const std::string& what) {
  if (folder.empty()) throw Error(what + ": empty path; expected a folder");
  std::error_code error;
  const auto status = std::filesystem::status(folder, error);
  if (std::filesystem::exists(status)) {
    if (!std::filesystem::is_directory(status)) {
      throw Error(what + " " + folder.string() + " is a file; expected a folder");
    }
    if (const auto problem = creation_problem(folder); !problem.empty()) {
      throw Error(what + " " + folder.string() + " is not writable (" + problem + ")");
    }
    return;
  }
  auto normal = folder.lexically_normal();
  if (!normal.has_filename()) normal = normal.parent_path();  // "out/" names the folder "out"
  const auto parent = folder_of(normal);
  if (!std::filesystem::is_directory(parent, error)) {
    throw Error(what + " " + folder.string() + ": folder " + parent.string() + " does not exist");
  }
  if (const auto problem = creation_problem(parent); !problem.empty()) {
    throw Error(what + " " + folder.string() + ": folder " + parent.string() + " is not writable (" + problem + ")");
  }
}

void check_sink_settings(const SinkSettings& settings) {
  if (!settings.video.empty()) {
    const auto extension = lowercase(settings.video.extension().string());
    if (extension != ".mp4" && extension != ".mkv" && extension != ".avi") {
      throw Error("video output " + settings.video.string() + ": unsupported extension '" +
                  settings.video.extension().string() + "'; accepted: .mp4, .mkv, .avi");
    }
    check_output_file(settings.video, "video output");
  }
  if (!settings.json.empty()) check_output_file(settings.json, "JSON Lines output");
  if (!settings.mot.empty()) check_output_file(settings.mot, "MOT tracks output");
  if (!settings.events.empty()) check_output_file(settings.events, "events output");
  if (!settings.images.empty()) check_output_folder(settings.images, "image output folder");
  if (settings.display == DisplayMode::on && !display_available()) {
    throw Error(
        "display: on, but there is no display (DISPLAY and WAYLAND_DISPLAY are unset); accepted here: auto, off");
  }
}

std::vector<std::unique_ptr<Sink>> make_sinks(const SinkSettings& settings) {
  check_sink_settings(settings);
  std::vector<std::unique_ptr<Sink>> sinks;
  if (!settings.video.empty()) sinks.push_back(make_video_sink(settings.video, settings.style));
  if (!settings.images.empty()) sinks.push_back(make_image_folder_sink(settings.images, settings.style));
  if (!settings.mot.empty()) sinks.push_back(make_mot_sink(settings.mot));
  if (!settings.events.empty()) sinks.push_back(make_events_sink(settings.events));
  if (!settings.json.empty()) {
    JsonLinesOptions options;
    options.rotate_bytes = settings.json_rotate_bytes;
    options.rotate_keep = settings.json_rotate_keep;
    options.counters = settings.json_counters;
    sinks.push_back(make_jsonl_sink(settings.json, options));
  }
  const bool window =
      settings.display == DisplayMode::on || (settings.display == DisplayMode::automatic && display_available());
  if (window) sinks.push_back(make_window_sink(settings.window_title, settings.style));
  return sinks;
}

}  // namespace detflow
