// fuzz/fuzz_support.h — what the libFuzzer targets in fuzz/ share.
//
// Each target (fuzz/<name>_fuzzer.cpp) defines LLVMFuzzerTestOneInput and feeds the bytes to one
// detflow parser the way detflow itself calls it. A target catches exactly the exceptions its
// parser documents (a refusal is a correct answer to bad input); anything else escapes, and
// libFuzzer reports it as a crash, as it does for sanitizer findings, aborts and hangs.
// Not thread-safe: libFuzzer calls a target from one thread.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace detflow::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A file for parsers that only read paths: rewritten with every input, removed at exit. It
// lives in $TMPDIR (default /tmp) and is named after the process, so parallel fuzzers
// (-jobs, -workers) each have their own.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& suffix) {
    const char* folder = std::getenv("TMPDIR");
    path_ = std::filesystem::path(folder != nullptr && *folder != '\0' ? folder : "/tmp") /
            ("detflow-fuzz-" + std::to_string(::getpid()) + suffix);
  }
  ~ScratchFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Replaces the file's contents with bytes and returns its path.
  const std::filesystem::path& write(std::string_view bytes) {
    std::ofstream file(path_, std::ios::binary | std::ios::trunc);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    file.close();
    if (!file) {
      std::fprintf(stderr, "fuzz: cannot write the scratch file %s\n", path_.c_str());
      std::abort();
    }
    return path_;
  }

 private:
  std::filesystem::path path_;
};

// Stops the run with a message: a property the target checks does not hold. libFuzzer keeps
// the input as crash-<sha1>.
[[noreturn]] inline void property_violated(const std::string& what) {
  std::fprintf(stderr, "fuzz: property violated: %s\n", what.c_str());
  std::abort();
}

}  // namespace detflow::fuzz
