#include "detflow/bench/process_probe.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>

#include "detflow/error.h"

namespace detflow::bench {
namespace {

std::int64_t status_field_kb(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::size_t length = std::strlen(field);
  while (std::getline(status, line)) {
    if (line.compare(0, length, field) == 0 && line.size() > length && line[length] == ':') {
      return std::stoll(line.substr(length + 1));
    }
  }
  return 0;
}

// The child's message to the parent: one tag byte, then the payload.
constexpr char kResultTag = 'R';
constexpr char kSetupErrorTag = 'S';
constexpr char kFailureTag = 'F';

void write_all(int descriptor, const std::string& bytes) {
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t count = ::write(descriptor, bytes.data() + written, bytes.size() - written);
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0) return;  // the parent is gone; nobody is left to tell
    written += static_cast<std::size_t>(count);
  }
}

}  // namespace

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& value) {
    return static_cast<double>(value.tv_sec) + static_cast<double>(value.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double process_cpu_clock_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

std::int64_t resident_kb() { return status_field_kb("VmRSS"); }
std::int64_t peak_resident_kb() { return status_field_kb("VmHWM"); }

bool reset_peak_resident() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
  clear_refs.flush();
  return static_cast<bool>(clear_refs);
}

std::string run_in_child(const std::string& what, const std::function<std::string()>& work) {
  int channel[2];
  if (::pipe(channel) != 0) throw std::runtime_error(what + ": pipe failed: " + std::strerror(errno));
  // Buffered output would otherwise be written twice, once by each process.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(channel[0]);
    ::close(channel[1]);
    throw std::runtime_error(what + ": fork failed: " + std::strerror(errno));
  }
  if (child == 0) {
    ::close(channel[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // the parent died before prctl took effect
    // The child's results travel through the pipe; its standard output belongs to the
    // parent's table. Whatever a library prints there from C (OpenCL build logs) goes to
    // standard error instead.
    ::dup2(STDERR_FILENO, STDOUT_FILENO);
    std::string message;
    int status = 0;
    try {
      message = kResultTag + work();
    } catch (const Error& error) {
      message = std::string(1, kSetupErrorTag) + error.what();
      status = 2;
    } catch (const std::exception& error) {
      message = std::string(1, kFailureTag) + error.what();
      status = 1;
    }
    write_all(channel[1], message);
    ::close(channel[1]);
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    // No exit handlers or static destructors: they belong to the parent's state (thread
    // pools, loggers) that the child only inherited a copy of.
    ::_exit(status);
  }

  ::close(channel[1]);
  std::string message;
  char buffer[65536];
  while (true) {
    const ssize_t count = ::read(channel[0], buffer, sizeof buffer);
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0) break;
    message.append(buffer, static_cast<std::size_t>(count));
  }
  ::close(channel[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    throw std::runtime_error(what + ": the child process was killed by signal " + std::to_string(WTERMSIG(status)) +
                             " (" + strsignal(WTERMSIG(status)) + ")");
  }
  if (message.empty()) {
    throw std::runtime_error(what + ": the child process exited with status " + std::to_string(WEXITSTATUS(status)) +
                             " without a result");
  }
  const char tag = message.front();
  message.erase(0, 1);
  if (tag == kSetupErrorTag) throw Error(message);
  if (tag == kFailureTag) throw std::runtime_error(what + ": " + message);
  return message;
}

}  // namespace detflow::bench
