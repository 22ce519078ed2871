#include "cli_process.h"

#include <algorithm>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared_data.h"

extern char** environ;

namespace detflow::test {

std::vector<std::string> ProcessResult::err_lines() const {
  std::vector<std::string> lines;
  std::istringstream stream(err);
  for (std::string line; std::getline(stream, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string detflow_executable() { return DETFLOW_EXECUTABLE; }

std::string read_text(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::size_t count_lines(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::size_t lines = 0;
  for (std::string line; std::getline(file, line);) ++lines;
  return lines;
}

ChildProcess::ChildProcess(const std::vector<std::string>& arguments, const std::filesystem::path& work_folder)
    : out_path_(work_folder / "detflow.stdout"), err_path_(work_folder / "detflow.stderr") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addchdir_np(&actions, work_folder.c_str());
  // The child must get SIGINT/SIGTERM delivered normally whatever this process blocks.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigmask(&attributes, &no_signals);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGINT);
  sigaddset(&default_signals, SIGTERM);
  posix_spawnattr_setsigdefault(&attributes, &default_signals);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  // A cross build's tests run under the emulator, and so must the detflow they start: the
  // launcher is CMAKE_CROSSCOMPILING_EMULATOR ('|' between arguments), empty on a native build.
  std::vector<std::string> argv_storage;
  const std::string launcher = DETFLOW_EXECUTABLE_LAUNCHER;
  for (std::size_t start = 0; start < launcher.size();) {
    const std::size_t end = std::min(launcher.find('|', start), launcher.size());
    if (end > start) argv_storage.push_back(launcher.substr(start, end - start));
    start = end + 1;
  }
  argv_storage.push_back(detflow_executable());
  argv_storage.insert(argv_storage.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (auto& argument : argv_storage) argv.push_back(argument.data());
  argv.push_back(nullptr);
  // No display: the CLI must never try to open a window in tests.
  std::vector<std::string> environment_storage;
  for (char** variable = environ; *variable; ++variable) {
    const std::string entry = *variable;
    if (entry.rfind("DISPLAY=", 0) == 0 || entry.rfind("WAYLAND_DISPLAY=", 0) == 0) continue;
    environment_storage.push_back(entry);
  }
  std::vector<char*> environment;
  for (auto& entry : environment_storage) environment.push_back(entry.data());
  environment.push_back(nullptr);

  if (posix_spawn(&pid_, argv[0], &actions, &attributes, argv.data(), environment.data()) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void ChildProcess::send(int signal_number) const {
  if (pid_ > 0 && !reaped_) ::kill(pid_, signal_number);
}

ProcessResult ChildProcess::wait(std::chrono::seconds timeout) {
  ProcessResult result;
  if (pid_ <= 0) {
    result.err = "cannot start " + detflow_executable();
    return result;
  }
  // Under the emulator (a cross build's tests) detflow runs 20-50 times slower than natively.
  const bool emulated = std::string(DETFLOW_EXECUTABLE_LAUNCHER).size() > 0;
  const auto deadline = std::chrono::steady_clock::now() + (emulated ? 30 : 1) * timeout;
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    if (std::chrono::steady_clock::now() > deadline) {
      result.timed_out = true;
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  reaped_ = true;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  result.out = read_text(out_path_);
  result.err = read_text(err_path_);
  return result;
}

ProcessResult run_detflow(const std::vector<std::string>& arguments, std::chrono::seconds timeout) {
  ChildProcess child(arguments, temporary_directory("cli"));
  return child.wait(timeout);
}

}  // namespace detflow::test
