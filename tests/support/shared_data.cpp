#include "shared_data.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <vector>

#include <unistd.h>

namespace detflow::test {

std::optional<std::filesystem::path> shared_dir() {
  std::filesystem::path candidate;
  if (const char* from_environment = std::getenv("DETFLOW_SHARED_DIR"); from_environment && *from_environment) {
    candidate = from_environment;
  } else {
    candidate = DETFLOW_DEFAULT_SHARED_DIR;
  }
  std::error_code error;
  if (std::filesystem::is_directory(candidate, error)) return candidate;
  return std::nullopt;
}

std::optional<std::filesystem::path> shared_file(const std::string& relative) {
  const auto directory = shared_dir();
  if (!directory) return std::nullopt;
  const auto file = *directory / relative;
  std::error_code error;
  if (!std::filesystem::exists(file, error)) return std::nullopt;
  return file;
}

std::string missing_shared_message(const std::string& relative) {
  return "needs ../shared/" + relative +
         " (real models and media beside the repository; set DETFLOW_SHARED_DIR to use another folder): skipped";
}

std::filesystem::path source_dir() { return DETFLOW_SOURCE_DIR; }

namespace {
// Removes the directories handed out by temporary_directory() when the process exits.
struct TemporaryDirectories {
  std::mutex mutex;
  std::vector<std::filesystem::path> paths;
  ~TemporaryDirectories() {
    if (std::getenv("DETFLOW_KEEP_TEST_FILES")) return;
    std::error_code error;
    for (const auto& path : paths) std::filesystem::remove_all(path, error);
  }
};
TemporaryDirectories& temporary_directories() {
  static TemporaryDirectories instance;
  return instance;
}
}  // namespace

std::filesystem::path temporary_directory(const std::string& prefix) {
  static std::atomic<int> counter{0};
  const auto path = std::filesystem::temp_directory_path() /
                    ("detflow-" + prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  auto& registry = temporary_directories();
  std::lock_guard lock(registry.mutex);
  registry.paths.push_back(path);
  return path;
}

}  // namespace detflow::test
