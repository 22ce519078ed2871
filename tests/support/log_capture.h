// log_capture.h — routes spdlog's default logger into a string for the lifetime of a
// LogCapture, so tests can assert what was logged (and how often). Not thread-safe to
// create or destroy while other threads log; the sink itself is (ostream_sink_mt).
#pragma once

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>

namespace detflow::test {

class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_)), previous_(spdlog::default_logger()) {
    sink_->set_pattern("%l: %v");
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() const {
    sink_->flush();
    return stream_.str();
  }
  // Lines containing `part`.
  int count(const std::string& part) const {
    std::istringstream lines(text());
    int found = 0;
    for (std::string line; std::getline(lines, line);) found += line.find(part) != std::string::npos ? 1 : 0;
    return found;
  }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace detflow::test
