// OutputCapture: what C code writes to file descriptors 1 and 2 during setup ends up in the
// log at the mapped level, never on standard output; detflow's own lines pass through.
#include "detflow/inference/output_capture.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "log_capture.h"
#include "shared_data.h"

namespace detflow {
namespace {

// spdlog's default logger into a string while it lives.
using LogToString = test::LogCapture;

// Points one descriptor at a file for the test's own inspection (what the terminal would
// have shown), restoring it afterwards.
class DescriptorToFile {
 public:
  DescriptorToFile(int descriptor, const std::filesystem::path& path) : descriptor_(descriptor), path_(path) {
    std::fflush(nullptr);
    std::cout.flush();
    saved_ = ::dup(descriptor_);
    const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(file, descriptor_);
    ::close(file);
  }
  ~DescriptorToFile() { restore(); }
  DescriptorToFile(const DescriptorToFile&) = delete;
  DescriptorToFile& operator=(const DescriptorToFile&) = delete;
  // Restores the descriptor and returns what was written to it meanwhile.
  std::string restore() {
    if (saved_ >= 0) {
      std::fflush(nullptr);
      std::cout.flush();
      ::dup2(saved_, descriptor_);
      ::close(saved_);
      saved_ = -1;
    }
    std::ifstream file(path_);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }

 private:
  int descriptor_;
  std::filesystem::path path_;
  int saved_ = -1;
};

void write_to_descriptor(int descriptor, const char* text) {
  ASSERT_EQ(::write(descriptor, text, std::strlen(text)), static_cast<ssize_t>(std::strlen(text)));
}

constexpr const char* pocl_build_log =
    "OpenCL program build log: dnn/dummy\nStatus -43: CL_INVALID_BUILD_OPTIONS\n-cl-no-subgroup-ifp\n"
    "Invalid build option: -cl-no-subgroup-ifp\n\n";
constexpr const char* opencv_error =
    "[ERROR:0@0.512] global onnx_importer.cpp:1054 handleNode DNN/ONNX: ERROR during processing node\n";

TEST(ClassifyCapturedOutput, BuildLogsAreDebugEvenWhenTheyMentionErrors) {
  const auto lines = classify_captured_output(pocl_build_log, false);
  ASSERT_EQ(lines.size(), 4u);
  for (const auto& line : lines) EXPECT_EQ(line.level, CapturedLevel::debug) << line.text;
  EXPECT_EQ(lines[3].text, "Invalid build option: -cl-no-subgroup-ifp");
}

TEST(ClassifyCapturedOutput, ErrorsWarnOnlyWhenTheOperationSucceeded) {
  ASSERT_EQ(classify_captured_output(opencv_error, false).size(), 1u);
  EXPECT_EQ(classify_captured_output(opencv_error, false)[0].level, CapturedLevel::warning);
  EXPECT_EQ(classify_captured_output(opencv_error, true)[0].level, CapturedLevel::debug);
  EXPECT_EQ(classify_captured_output("plain chatter\n", false)[0].level, CapturedLevel::debug);
}

TEST(ClassifyCapturedOutput, ABuildLogEndsAtTheNextLibraryLogLine) {
  const std::string text = std::string("OpenCL program build log: dnn/dummy\nInvalid build option\n") + opencv_error;
  const auto lines = classify_captured_output(text, false);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1].level, CapturedLevel::debug);
  EXPECT_EQ(lines[2].level, CapturedLevel::warning);
}

TEST(ClassifyCapturedOutput, DetflowLinesPassThrough) {
  const auto lines = classify_captured_output("detflow: warning: fell back to cpu\n", false);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, CapturedLevel::detflow);
}

class OutputCaptureTest : public ::testing::Test {
 protected:
  std::filesystem::path folder_ = test::temporary_directory("output-capture");
};

TEST_F(OutputCaptureTest, CWritesToDescriptorOneLandInTheLogNotOnStandardOutput) {
  LogToString log;
  DescriptorToFile terminal_out(STDOUT_FILENO, folder_ / "stdout.txt");
  DescriptorToFile terminal_err(STDERR_FILENO, folder_ / "stderr.txt");
  {
    const OutputCapture capture("probing opencv:opencl");
    EXPECT_TRUE(capture.active());
    write_to_descriptor(STDOUT_FILENO, pocl_build_log);  // as PoCL does, from C
    std::printf("printf without a flush\n");             // stdio's buffer is flushed into the capture
    std::cerr << opencv_error;                           // as OpenCV's logger does
  }
  std::cout << "{\"document\": true}\n";
  const std::string out = terminal_out.restore();
  const std::string err = terminal_err.restore();
  EXPECT_EQ(out, "{\"document\": true}\n");  // only what the command promised
  EXPECT_EQ(err, "");
  const std::string logged = log.text();
  EXPECT_NE(logged.find("debug: probing opencv:opencl printed: OpenCL program build log: dnn/dummy"), std::string::npos)
      << logged;
  EXPECT_NE(logged.find("debug: probing opencv:opencl printed: Invalid build option: -cl-no-subgroup-ifp"),
            std::string::npos)
      << logged;
  EXPECT_NE(logged.find("debug: probing opencv:opencl printed: printf without a flush"), std::string::npos) << logged;
  EXPECT_NE(logged.find("warning: probing opencv:opencl printed: [ERROR:0@0.512] global onnx_importer.cpp"),
            std::string::npos)
      << logged;
}

TEST_F(OutputCaptureTest, AFailingOperationLogsItsErrorsAtDebugOnly) {
  LogToString log;
  DescriptorToFile terminal_err(STDERR_FILENO, folder_ / "stderr.txt");
  try {
    const OutputCapture capture("loading bad.onnx on opencv:cpu");
    write_to_descriptor(STDERR_FILENO, opencv_error);
    throw std::runtime_error("OpenCV cannot run bad.onnx");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(terminal_err.restore(), "");
  const std::string logged = log.text();
  EXPECT_NE(logged.find("debug: loading bad.onnx on opencv:cpu printed: [ERROR:"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("warning:"), std::string::npos) << logged;
}

TEST_F(OutputCaptureTest, NestedCapturesLetTheOuterOneCollectAndDetflowLinesReachStderr) {
  LogToString log;
  DescriptorToFile terminal_out(STDOUT_FILENO, folder_ / "stdout.txt");
  DescriptorToFile terminal_err(STDERR_FILENO, folder_ / "stderr.txt");
  {
    const OutputCapture outer("outer step");
    {
      const OutputCapture inner("inner step");
      EXPECT_FALSE(inner.active());
      write_to_descriptor(STDOUT_FILENO, "from the inner step\n");
    }
    write_to_descriptor(STDERR_FILENO, "detflow: warning: OpenCV target opencl unavailable\n");
  }
  EXPECT_EQ(terminal_out.restore(), "");
  EXPECT_EQ(terminal_err.restore(), "detflow: warning: OpenCV target opencl unavailable\n");
  const std::string logged = log.text();
  EXPECT_NE(logged.find("debug: outer step printed: from the inner step"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("inner step printed"), std::string::npos) << logged;
}

TEST_F(OutputCaptureTest, CapturesOnTwoThreadsTakeTurns) {
  LogToString log;
  DescriptorToFile terminal_out(STDOUT_FILENO, folder_ / "stdout.txt");
  const auto step = [](const char* name, const char* text) {
    const OutputCapture capture(name);
    for (int repeat = 0; repeat < 50; ++repeat) write_to_descriptor(STDOUT_FILENO, text);
  };
  std::thread first(step, "first", "one\n");
  std::thread second(step, "second", "two\n");
  first.join();
  second.join();
  EXPECT_EQ(terminal_out.restore(), "");
  std::istringstream lines(log.text());
  int first_count = 0, second_count = 0;
  for (std::string line; std::getline(lines, line);) {
    // Serialised: each capture holds only its own thread's lines.
    EXPECT_TRUE(line == "debug: first printed: one" || line == "debug: second printed: two") << line;
    first_count += line == "debug: first printed: one";
    second_count += line == "debug: second printed: two";
  }
  EXPECT_EQ(first_count, 50);
  EXPECT_EQ(second_count, 50);
}

}  // namespace
}  // namespace detflow
