// shared_data.h — where the tests find ../shared (real models, media, references) and
// the project's own files.
//
// ../shared sits beside the repository on developer machines and in CI; a user's fresh
// clone has none. Tests that need it call DETFLOW_REQUIRE_SHARED("models/yolov8n.onnx")
// which skips the test with a message saying what is missing and how to provide it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace detflow::test {

// $DETFLOW_SHARED_DIR when set, else <repository>/../shared. nullopt when the folder is absent.
std::optional<std::filesystem::path> shared_dir();
// The file under shared_dir(), or nullopt when shared_dir() or the file is absent.
std::optional<std::filesystem::path> shared_file(const std::string& relative);
// The message a skipped test prints.
std::string missing_shared_message(const std::string& relative);
// The repository root (for configs/ and the like).
std::filesystem::path source_dir();
// A fresh, empty directory under the system temp dir, unique per call; removed at exit.
std::filesystem::path temporary_directory(const std::string& prefix);

}  // namespace detflow::test

// Declares `const std::filesystem::path variable` = shared file, or skips the test.
#define DETFLOW_SHARED_FILE(variable, relative)                                                \
  const auto variable##_optional = ::detflow::test::shared_file(relative);                     \
  if (!variable##_optional) GTEST_SKIP() << ::detflow::test::missing_shared_message(relative); \
  const std::filesystem::path variable = *variable##_optional
