// cli_process.h — runs the built `detflow` executable as a child process for the CLI tests.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

namespace detflow::test {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // the terminating signal, 0 when it exited
  bool timed_out = false;
  std::string out;  // standard output
  std::string err;  // standard error
  std::vector<std::string> err_lines() const;
};

// A started child; stdout and stderr go to files in `work_folder`.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& arguments, const std::filesystem::path& work_folder);
  ~ChildProcess();  // kills the child if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void send(int signal_number) const;
  // Waits for the exit; on timeout kills the child and sets timed_out. The timeout is for a
  // native build; it is multiplied by 30 when detflow runs under the cross build's emulator.
  ProcessResult wait(std::chrono::seconds timeout);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::filesystem::path out_path_;
  std::filesystem::path err_path_;
};

// Runs `detflow` with `arguments` to completion in a fresh temporary folder (its cwd).
ProcessResult run_detflow(const std::vector<std::string>& arguments,
                          std::chrono::seconds timeout = std::chrono::seconds(120));

// The path of the executable under test.
std::string detflow_executable();

std::string read_text(const std::filesystem::path& path);
std::size_t count_lines(const std::filesystem::path& path);

}  // namespace detflow::test
